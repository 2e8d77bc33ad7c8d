"""The online side's arithmetic from window statistics to feature values, by hand."""

from __future__ import annotations

import pytest

from fraud_platform.event_features import CARD_WINDOWS, card_values, merchant_values


def card_reply(count: int, total: bytes | None, peak: bytes | None, tail: list) -> list:
    return [v for _ in CARD_WINDOWS for v in (count, total, peak)] + tail


def test_empty_card_state_gives_zero_counts_and_null_values() -> None:
    values = card_values(card_reply(0, b"0", None, [0, None, None, None, None, None, None, None]))
    assert values["txn_count_30d"] == 0 and values["amount_sum_30d"] == 0.0
    assert values["amount_mean_30d"] is None and values["amount_max_30d"] is None
    assert values["last_txn_timestamp"] is None and values["seconds_since_prev_txn"] is None
    assert values["distance_from_prev_km"] is None and values["speed_from_prev_kmh"] is None


def test_sum_is_rounded_to_cents_and_the_mean_is_that_sum_over_the_count() -> None:
    # A sum carrying float noise (1.0 + 1.005 + 1.01 added in some order).
    values = card_values(
        card_reply(
            3,
            b"3.0150000000000001",
            b"1.01",
            [2, 1_780_000_060_500_000, b"1.01", b"0", b"1", 1_780_000_000_000_000, b"0", b"0"],
        )
    )
    assert values["amount_sum_10m"] == 3.02
    assert values["amount_mean_10m"] == values["amount_sum_10m"] / 3
    assert values["last_txn_timestamp"] == 1_780_000_060  # floor of the microseconds
    assert values["seconds_since_prev_txn"] == 60.5
    assert values["distance_from_prev_km"] == pytest.approx(111.195, abs=1e-3)
    assert values["speed_from_prev_kmh"] == values["distance_from_prev_km"] / (60.5 / 3600)


def test_merchant_rate_is_zero_without_transactions_and_may_exceed_one() -> None:
    values = merchant_values([0, 2, 1, 2, 4, 1])
    assert (values["txn_count_1d"], values["fraud_count_1d"], values["fraud_rate_1d"]) == (
        0,
        2,
        0.0,
    )
    assert values["fraud_rate_7d"] == 2.0 and values["fraud_rate_30d"] == 0.25
