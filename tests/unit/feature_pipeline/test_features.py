"""Feature tables on tiny hand-built frames, against hand-computed values.

Each case pins a rule of docs/features.md: a row is the state before its transaction
(events in [t - w, t), stored at t - 1 µs), ties at the same instant never see each other,
a card's first transaction sees an empty state, and labels count only once known before t.
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
    schema = (
        "transaction_id string, card_id string, merchant_id string, amount double, "
        "latitude double, longitude double, event_timestamp timestamp"
    )
    return spark.createDataFrame(rows, schema)


def by_time(frame) -> dict[datetime, dict]:
    """Rows by the instant of the transaction they are for (stored 1 µs before it)."""
    return {
        r["event_timestamp"].replace(tzinfo=UTC) + timedelta(microseconds=1): r.asDict()
        for r in frame.collect()
    }


@pytest.fixture(scope="module")
def card_rows(spark):
    txns = transactions(
        spark,
        [
            ("tx1", "c1", "m1", 10.0, 0.0, 0.0, at()),
            ("tx2", "c1", "m2", 20.0, 0.0, 0.5, at(minutes=5)),
            ("tx3", "c1", "m1", 30.0, 0.0, 1.0, at(minutes=5)),  # same instant as tx2
            ("tx4", "c1", "m3", 5.0, 0.0, 1.0, at(minutes=15)),  # exactly 10 min after tx2/tx3
            ("tx5", "c1", "m1", 1.0, None, None, at(hours=1, minutes=5)),  # exactly 1 h after
            ("tx6", "c2", "m1", 99.0, 10.0, 10.0, at(minutes=5)),  # another card
        ],
    )
    return by_time(card_transaction_features(txns, *WHOLE, CREATED).where("card_id = 'c1'"))


def test_first_transaction_sees_an_empty_state(card_rows) -> None:
    first = card_rows[at()]
    assert (first["txn_count_10m"], first["amount_sum_30d"]) == (0, 0.0)
    assert first["amount_mean_30d"] is None and first["amount_max_30d"] is None
    assert first["last_amount"] is None and first["last_txn_timestamp"] is None
    assert first["seconds_since_prev_txn"] is None
    assert first["distance_from_prev_km"] is None and first["speed_from_prev_kmh"] is None


def test_simultaneous_transactions_give_one_row_seeing_neither(card_rows) -> None:
    row = card_rows[at(minutes=5)]
    assert len(card_rows) == 4  # tx2 and tx3 share one row
    # Before 10:05: tx1 only, whatever else happens at 10:05.
    assert (row["txn_count_10m"], row["amount_sum_10m"], row["amount_max_10m"]) == (1, 10.0, 10.0)
    assert (row["last_amount"], row["last_longitude"]) == (10.0, 0.0)
    assert row["last_txn_timestamp"] == int(at().timestamp())
    assert row["seconds_since_prev_txn"] is None


def test_window_is_closed_at_its_start(card_rows) -> None:
    # tx2/tx3 are exactly 10 minutes before tx4: [t - 10 min, t) holds them.
    row = card_rows[at(minutes=15)]
    assert (row["txn_count_10m"], row["amount_sum_10m"], row["amount_max_10m"]) == (2, 50.0, 30.0)
    assert row["amount_mean_10m"] == 25.0
    assert (row["txn_count_1h"], row["amount_sum_1h"]) == (3, 60.0)
    assert row["distinct_merchants_24h"] == 2


def test_last_transaction_and_step_before_it(card_rows) -> None:
    row = card_rows[at(minutes=15)]
    # The last of simultaneous transactions is the greatest id: tx3; the one before, tx1.
    assert (row["last_amount"], row["last_longitude"]) == (30.0, 1.0)
    assert row["seconds_since_prev_txn"] == 300.0
    # One degree of longitude on the equator.
    assert row["distance_from_prev_km"] == pytest.approx(111.195, abs=0.001)
    assert row["speed_from_prev_kmh"] == pytest.approx(111.195 * 12, abs=0.01)


def test_one_hour_window_and_missing_location(card_rows) -> None:
    row = card_rows[at(hours=1, minutes=5)]
    # [10:05, 11:05): tx2, tx3 and tx4; nothing in the last 10 minutes.
    assert (row["txn_count_1h"], row["amount_sum_1h"], row["amount_max_1h"]) == (3, 55.0, 30.0)
    assert (row["txn_count_10m"], row["amount_sum_10m"], row["amount_mean_10m"]) == (0, 0.0, None)
    assert (row["txn_count_24h"], row["amount_sum_24h"]) == (4, 65.0)
    assert (row["seconds_since_prev_txn"], row["distance_from_prev_km"]) == (600.0, 0.0)


def test_rows_are_limited_to_the_window_but_use_history(spark) -> None:
    txns = transactions(
        spark,
        [
            ("a", "c1", "m1", 10.0, 0.0, 0.0, at(days=-3)),
            ("b", "c1", "m1", 15.0, 0.0, 0.0, at()),
        ],
    )
    rows = card_transaction_features(txns, at(hours=-1), at(hours=1), CREATED).collect()
    assert len(rows) == 1
    assert (rows[0]["txn_count_7d"], rows[0]["amount_sum_7d"]) == (1, 10.0)
    assert rows[0]["last_txn_timestamp"] == int(at(days=-3).timestamp())
    assert rows[0]["event_timestamp"].replace(tzinfo=UTC) == at(microseconds=-1)
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
    assert (row["credit_limit"], row["home_latitude"], row["home_longitude"]) == (
        2500.0,
        48.85,
        2.35,
    )


@pytest.fixture(scope="module")
def merchant_inputs(spark):
    txns = transactions(
        spark,
        [
            ("tx1", "c1", "m1", 10.0, 0.0, 0.0, at()),
            ("tx2", "c2", "m1", 10.0, 0.0, 0.0, at(days=1)),
            ("tx3", "c3", "m1", 10.0, 0.0, 0.0, at(days=3)),
            ("tx4", "c4", "m1", 10.0, 0.0, 0.0, at(days=3)),  # same instant as tx3
            ("tx5", "c5", "m2", 10.0, 0.0, 0.0, at(days=3)),  # another merchant
        ],
    )
    labels = spark.createDataFrame(
        [
            ("tx1", 1, at(days=2)),  # fraud at m1, known two days later
            ("tx2", 0, at(days=8)),
            ("tx3", 1, at(days=10)),  # known only after every row: never counts
            ("tx5", 1, at(days=3)),  # fraud at m2, known at its own instant
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
    # [day0 10:00, day1 10:00): tx1, exactly one day before, is in 1d.
    assert (day1["txn_count_1d"], day1["txn_count_7d"]) == (1, 1)
    assert (day1["fraud_count_7d"], day1["fraud_rate_7d"]) == (0, 0.0)
    day3 = rows[at(days=3)]
    # tx3 and tx4 are at day 3 itself: not before it.
    assert (day3["txn_count_1d"], day3["txn_count_7d"], day3["txn_count_30d"]) == (0, 2, 2)
    # tx1's label (day 2 10:00) is exactly one day before: in 1d and 7d; tx3's is future.
    assert (day3["fraud_count_1d"], day3["fraud_count_7d"]) == (1, 1)
    assert (day3["fraud_rate_1d"], day3["fraud_rate_7d"]) == (0.0, 0.5)
    assert rows[at()]["fraud_rate_30d"] == 0.0


def test_label_at_the_same_instant_is_not_known_yet(spark, merchant_inputs) -> None:
    row = merchant_rows(spark, merchant_inputs, "m2")[at(days=3)]
    assert (row["txn_count_1d"], row["fraud_count_1d"], row["fraud_rate_1d"]) == (0, 0, 0.0)


def test_extra_label_delay_postpones_labels(spark, merchant_inputs) -> None:
    rows = merchant_rows(spark, merchant_inputs, "m1", delay=timedelta(days=1))
    # tx1's label now counts from day 3 10:00, exactly t: not before t.
    assert (rows[at(days=3)]["fraud_count_1d"], rows[at(days=3)]["fraud_count_7d"]) == (0, 0)
