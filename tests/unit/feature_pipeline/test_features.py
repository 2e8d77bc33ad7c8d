"""Feature tables on tiny hand-built frames, against hand-computed values.

Each case pins a rule of docs/features.md: window ends (open at t - w, closed at t), ties
at the same instant, a card's first transaction, and labels that arrive after t.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from feature_pipeline.features import (
    card_profile_features,
    card_transaction_features,
    merchant_risk_features,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CREATED = datetime(2026, 3, 9, tzinfo=UTC)
WHOLE = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def at(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


def transactions(spark, rows):
    schema = ("transaction_id string, card_id string, merchant_id string, amount double, "
              "latitude double, longitude double, event_timestamp timestamp")
    return spark.createDataFrame(rows, schema)


def by_time(frame) -> dict[datetime, dict]:
    return {r["event_timestamp"].replace(tzinfo=UTC): r.asDict() for r in frame.collect()}


@pytest.fixture(scope="module")
def card_rows(spark):
    txns = transactions(spark, [
        ("tx1", "c1", "m1", 10.0, 0.0, 0.0, at()),
        ("tx2", "c1", "m2", 20.0, 0.0, 0.5, at(minutes=5)),
        ("tx3", "c1", "m1", 30.0, 0.0, 1.0, at(minutes=5)),   # same instant as tx2
        ("tx4", "c1", "m3", 5.0, 0.0, 1.0, at(minutes=15)),   # exactly 10 min after tx2/tx3
        ("tx5", "c1", "m1", 1.0, None, None, at(hours=1, minutes=5)),  # exactly 1 h after
        ("tx6", "c2", "m1", 99.0, 10.0, 10.0, at(minutes=5)),  # another card
    ])
    return by_time(card_transaction_features(txns, *WHOLE, CREATED).where("card_id = 'c1'"))


def test_first_transaction_has_no_previous(card_rows) -> None:
    first = card_rows[at()]
    assert first["txn_count_10m"] == 1 and first["amount_sum_30d"] == 10.0
    assert first["seconds_since_prev_txn"] is None
    assert first["distance_from_prev_km"] is None and first["speed_from_prev_kmh"] is None


def test_simultaneous_transactions_give_one_row_counting_both(card_rows) -> None:
    row = card_rows[at(minutes=5)]
    assert len(card_rows) == 4  # tx2 and tx3 share one row
    assert (row["txn_count_10m"], row["amount_sum_10m"], row["amount_max_10m"]) == (3, 60.0, 30.0)
    assert row["amount_mean_10m"] == 20.0
    # The "last" of simultaneous transactions is the greatest id: tx3.
    assert (row["last_amount"], row["last_longitude"]) == (30.0, 1.0)
    assert row["last_txn_timestamp"] == int(at(minutes=5).timestamp())


def test_step_from_previous_transaction(card_rows) -> None:
    row = card_rows[at(minutes=5)]
    assert row["seconds_since_prev_txn"] == 300.0
    # One degree of longitude on the equator.
    assert row["distance_from_prev_km"] == pytest.approx(111.195, abs=0.001)
    assert row["speed_from_prev_kmh"] == pytest.approx(111.195 * 12, abs=0.01)


def test_window_is_open_at_its_start(card_rows) -> None:
    # tx4 is exactly 10 minutes after tx2/tx3: they fall out of its 10-minute window.
    row = card_rows[at(minutes=15)]
    assert (row["txn_count_10m"], row["amount_sum_10m"]) == (1, 5.0)
    assert (row["txn_count_1h"], row["amount_sum_1h"]) == (4, 65.0)
    assert row["distinct_merchants_24h"] == 3
    assert row["distance_from_prev_km"] == 0.0


def test_one_hour_window_and_missing_location(card_rows) -> None:
    row = card_rows[at(hours=1, minutes=5)]
    # (10:05, 11:05]: tx4 and tx5 only.
    assert (row["txn_count_1h"], row["amount_sum_1h"], row["amount_max_1h"]) == (2, 6.0, 5.0)
    assert (row["txn_count_24h"], row["amount_sum_24h"]) == (5, 66.0)
    assert row["seconds_since_prev_txn"] == 3000.0
    assert row["distance_from_prev_km"] is None and row["speed_from_prev_kmh"] is None


def test_rows_are_limited_to_the_window_but_use_history(spark) -> None:
    txns = transactions(spark, [
        ("a", "c1", "m1", 10.0, 0.0, 0.0, at(days=-3)),
        ("b", "c1", "m1", 15.0, 0.0, 0.0, at()),
    ])
    rows = card_transaction_features(txns, at(hours=-1), at(hours=1), CREATED).collect()
    assert len(rows) == 1
    assert (rows[0]["txn_count_7d"], rows[0]["amount_sum_7d"]) == (2, 25.0)
    assert rows[0]["seconds_since_prev_txn"] == 3 * 86_400
    assert rows[0]["created"].replace(tzinfo=UTC) == CREATED
    assert rows[0]["event_date"] == "2026-03-02"


def test_card_profile_is_valid_from_the_issue_date(spark) -> None:
    cards = spark.createDataFrame(
        [("c1", "a1", date(2024, 5, 17), 2500.0, 48.85, 2.35)],
        "card_id string, account_id string, issue_date date, credit_limit double, "
        "home_latitude double, home_longitude double",
    )
    row = card_profile_features(cards, CREATED).first()
    assert row["event_timestamp"].replace(tzinfo=UTC) == datetime(2024, 5, 17, tzinfo=UTC)
    assert row["issue_timestamp"] == int(datetime(2024, 5, 17, tzinfo=UTC).timestamp())
    assert (row["credit_limit"], row["home_latitude"], row["home_longitude"]) == (2500.0, 48.85,
                                                                                  2.35)


@pytest.fixture(scope="module")
def merchant_inputs(spark):
    txns = transactions(spark, [
        ("tx1", "c1", "m1", 10.0, 0.0, 0.0, at()),
        ("tx2", "c2", "m1", 10.0, 0.0, 0.0, at(days=1)),
        ("tx3", "c3", "m1", 10.0, 0.0, 0.0, at(days=3)),
        ("tx4", "c4", "m1", 10.0, 0.0, 0.0, at(days=3)),   # same instant as tx3
        ("tx5", "c5", "m2", 10.0, 0.0, 0.0, at(days=3)),   # another merchant
    ])
    labels = spark.createDataFrame(
        [
            ("tx1", 1, at(days=2)),             # fraud at m1, known two days later
            ("tx2", 0, at(days=8)),
            ("tx3", 1, at(days=10)),            # known only after every row: never counts
            ("tx5", 1, at(days=3)),             # fraud at m2, known at its own instant
        ],
        "transaction_id string, is_fraud int, label_timestamp timestamp",
    )
    return txns, labels


def merchant_rows(spark, merchant_inputs, merchant: str, delay=timedelta(0)):
    txns, labels = merchant_inputs
    frame = merchant_risk_features(txns, labels, *WHOLE, CREATED, delay)
    return by_time(frame.where(f"merchant_id = '{merchant}'"))


def test_labels_known_after_t_do_not_count(spark, merchant_inputs) -> None:
    rows = merchant_rows(spark, merchant_inputs, "m1")
    assert len(rows) == 3
    day1 = rows[at(days=1)]
    # (day0 10:00, day1 10:00]: tx1 is exactly one day before and falls out of 1d.
    assert (day1["txn_count_1d"], day1["txn_count_7d"]) == (1, 2)
    assert (day1["fraud_count_7d"], day1["fraud_rate_7d"]) == (0, 0.0)
    day3 = rows[at(days=3)]
    assert (day3["txn_count_1d"], day3["txn_count_7d"], day3["txn_count_30d"]) == (2, 4, 4)
    # tx1's label (day 2 10:00) is exactly one day before: out of 1d, in 7d; tx3's is future.
    assert (day3["fraud_count_1d"], day3["fraud_count_7d"]) == (0, 1)
    assert day3["fraud_rate_7d"] == 0.25
    assert rows[at()]["fraud_rate_30d"] == 0.0


def test_label_at_the_same_instant_counts(spark, merchant_inputs) -> None:
    row = merchant_rows(spark, merchant_inputs, "m2")[at(days=3)]
    assert (row["txn_count_1d"], row["fraud_count_1d"], row["fraud_rate_1d"]) == (1, 1, 1.0)


def test_extra_label_delay_postpones_labels(spark, merchant_inputs) -> None:
    rows = merchant_rows(spark, merchant_inputs, "m1", delay=timedelta(days=1))
    day3 = rows[at(days=3)]
    # tx1's label now counts from day 3 10:00, exactly t: inside (t - 1d, t].
    assert (day3["fraud_count_1d"], day3["fraud_count_7d"]) == (1, 1)
    assert merchant_rows(spark, merchant_inputs, "m2", delay=timedelta(days=1))[at(days=3)][
        "fraud_count_1d"
    ] == 0
