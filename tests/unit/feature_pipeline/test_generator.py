"""The synthetic generator: its feeds keep their contracts, and its fraud looks like fraud.

One small data set (about 50k transactions, well under a second) serves most tests.
"""

from __future__ import annotations

import gzip
import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from feature_pipeline.generate import SCENARIOS, GeneratedData, GeneratorConfig, generate
from feature_pipeline.generate.catalog import (
    CITY_LAT,
    CITY_LON,
    CITY_UTC_OFFSET_H,
    haversine_km,
)
from feature_pipeline.generate.labels import chargeback_delays
from feature_pipeline.generate.landing import jsonl_gz, landing_parts
from feature_pipeline.generate.sampling import fill_budget, hash_unit, sample_rows
from feature_pipeline.generate.transactions import enforce_travel_times
from fraud_platform.settings import S3Settings

TRANSACTION_COLUMNS = [
    "transaction_id",
    "card_id",
    "merchant_id",
    "amount",
    "currency",
    "merchant_category",
    "channel",
    "latitude",
    "longitude",
    "event_timestamp",
]
SMALL = GeneratorConfig(
    n_cards=1_500, n_merchants=300, start_date=date(2025, 3, 3), days=21, seed=11
)


@pytest.fixture(scope="module")
def data() -> GeneratedData:
    return generate(SMALL)


@pytest.fixture(scope="module")
def joined(data: GeneratedData) -> pd.DataFrame:
    """Transactions with their labels, sorted by card then time."""
    frame = data.transactions.merge(data.labels, on="transaction_id", validate="one_to_one")
    frame["card_id"] = frame["card_id"].astype(str)
    return frame.sort_values(["card_id", "event_timestamp"], kind="stable").reset_index(drop=True)


def _hours(delta: pd.Series) -> np.ndarray:
    return delta.dt.total_seconds().to_numpy() / 3_600


def _speeds_kmh(frame: pd.DataFrame) -> np.ndarray:
    """Implied speed between consecutive rows of the same card (rows sorted by card, time)."""
    same = frame["card_id"].to_numpy()[1:] == frame["card_id"].to_numpy()[:-1]
    lat, lon = frame["latitude"].to_numpy(), frame["longitude"].to_numpy()
    km = haversine_km(lat[:-1], lon[:-1], lat[1:], lon[1:])
    hours = _hours(frame["event_timestamp"].diff().iloc[1:])
    speed = np.where(km > 0, km / np.maximum(hours, 1e-9), 0.0)
    return speed[same]


def _average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve, step-wise (as sklearn computes it)."""
    order = np.argsort(-score, kind="stable")
    y, score = y[order], score[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(score)), y.size - 1]
    tp = np.cumsum(y)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall_step = np.diff(np.r_[0, tp]) / y.sum()
    return float(np.sum(precision * recall_step))


def _local_hour(frame: pd.DataFrame) -> np.ndarray:
    """Local hour at the nearest city of each transaction's location."""
    km = haversine_km(
        frame["latitude"].to_numpy()[:, None],
        frame["longitude"].to_numpy()[:, None],
        CITY_LAT[None, :],
        CITY_LON[None, :],
    )
    offset = CITY_UTC_OFFSET_H[km.argmin(axis=1)]
    return (frame["event_timestamp"].dt.hour.to_numpy() + offset) % 24


# --- Determinism and contracts -----------------------------------------------------------


def test_same_config_and_seed_give_identical_frames(data: GeneratedData) -> None:
    again = generate(SMALL)
    for name in ("cards", "merchants", "transactions", "labels"):
        pd.testing.assert_frame_equal(getattr(data, name), getattr(again, name))
    other = generate(SMALL.model_copy(update={"seed": 12}))
    assert not other.transactions["amount"].equals(data.transactions["amount"])


def test_population_does_not_depend_on_the_window(data: GeneratedData) -> None:
    next_window = generate(SMALL.model_copy(update={"start_date": date(2025, 3, 24), "days": 2}))
    pd.testing.assert_series_equal(next_window.cards["card_id"], data.cards["card_id"])
    pd.testing.assert_frame_equal(next_window.merchants, data.merchants)


def test_transactions_have_the_documented_columns_and_no_fraud_columns(data: GeneratedData) -> None:
    tx = data.transactions
    assert list(tx.columns) == TRANSACTION_COLUMNS
    assert set(tx["currency"].unique()) == {"EUR"}
    assert set(tx["channel"].unique()) == {"card_present", "online"}
    assert str(tx["event_timestamp"].dt.tz) == "UTC"
    assert list(data.labels.columns) == [
        "transaction_id",
        "is_fraud",
        "label_timestamp",
        "fraud_scenario",
    ]
    assert tx["card_id"].astype(str).str.fullmatch(r"c\d{6}").all()
    assert tx["merchant_id"].astype(str).str.fullmatch(r"m\d{5}").all()
    assert set(tx["card_id"].astype(str)) <= set(data.cards["card_id"])
    assert set(tx["merchant_id"].astype(str)) <= set(data.merchants["merchant_id"])


def test_reference_data(data: GeneratedData) -> None:
    cards, merchants = data.cards, data.merchants
    assert cards["card_id"].is_unique and merchants["merchant_id"].is_unique
    assert (cards["issue_date"] < SMALL.start_date).all()
    assert (cards["credit_limit"] >= 500).all()
    # Homes cluster around the cities: every home within 60 km of a city centre.
    km = haversine_km(
        cards["home_latitude"].to_numpy()[:, None],
        cards["home_longitude"].to_numpy()[:, None],
        CITY_LAT,
        CITY_LON,
    )
    assert km.min(axis=1).max() < 60
    assert 0.05 < merchants["is_online"].mean() < 0.3
    assert {
        "grocery",
        "restaurant",
        "fuel",
        "travel",
        "electronics",
        "jewelry",
        "online_retail",
    } <= set(merchants["merchant_category"])


def test_ids_unique_and_timestamps_sorted_within_the_window(data: GeneratedData) -> None:
    tx = data.transactions
    assert tx["transaction_id"].is_unique
    assert tx["event_timestamp"].is_monotonic_increasing
    assert tx["event_timestamp"].min() >= pd.Timestamp(SMALL.start)
    assert tx["event_timestamp"].max() < pd.Timestamp(SMALL.end)
    # The id starts with the event date, so reruns of a window reproduce the same ids.
    day = tx["event_timestamp"].dt.strftime("%Y%m%d")
    assert (tx["transaction_id"].str.slice(2, 10) == day).all()


def test_amounts_are_positive_with_two_decimals(data: GeneratedData) -> None:
    amount = data.transactions["amount"].to_numpy()
    assert (amount > 0).all()
    assert np.abs(amount * 100 - np.round(amount * 100)).max() < 1e-6


def test_volume_follows_the_target() -> None:
    config = GeneratorConfig(n_cards=500, n_merchants=200, days=7, n_transactions=20_000)
    assert abs(len(generate(config).transactions) - 20_000) < 100


def test_config_rejects_impossible_settings() -> None:
    with pytest.raises(ValidationError):
        GeneratorConfig(n_merchants=50)
    with pytest.raises(ValidationError):
        GeneratorConfig(fraud_rate=0.5)
    with pytest.raises(ValidationError):
        GeneratorConfig(scenario_weights={"card_testing": 0.0})
    with pytest.raises(ValidationError):
        GeneratorConfig(scenario_weights={"phishing": 1.0})
    with pytest.raises(ValidationError, match="per card per day"):
        GeneratorConfig(n_cards=20, days=2, n_transactions=100_000)


# --- Labels ------------------------------------------------------------------------------


def test_fraud_rate_is_near_the_configured_one(data: GeneratedData) -> None:
    assert data.labels["is_fraud"].mean() == pytest.approx(SMALL.fraud_rate, abs=0.0007)
    rare = GeneratorConfig(n_cards=1_000, n_merchants=200, days=14, fraud_rate=0.002)
    assert generate(rare).labels["is_fraud"].mean() == pytest.approx(0.002, abs=0.0005)


def test_every_scenario_is_present_and_only_on_frauds(data: GeneratedData) -> None:
    labels = data.labels
    counts = labels["fraud_scenario"].value_counts()
    assert all(counts[s] >= 20 for s in SCENARIOS)
    assert labels.loc[labels["is_fraud"] == 0, "fraud_scenario"].isna().all()
    assert labels.loc[labels["is_fraud"] == 1, "fraud_scenario"].notna().all()


def test_one_label_per_transaction_known_after_the_event(
    joined: pd.DataFrame, data: GeneratedData
) -> None:
    assert len(data.labels) == len(data.transactions)
    assert data.labels["transaction_id"].is_unique
    delay = joined["label_timestamp"] - joined["event_timestamp"]
    assert (delay > pd.Timedelta(0)).all()
    genuine = joined["is_fraud"] == 0
    assert (delay[genuine] == pd.Timedelta(days=SMALL.settlement_window_days)).all()
    fraud_days = delay[~genuine].dt.total_seconds() / 86_400
    assert fraud_days.min() >= 1 / 24 and fraud_days.max() <= SMALL.chargeback_max_days


def test_chargeback_delays_have_a_three_day_median_and_a_late_tail() -> None:
    days = chargeback_delays(np.random.default_rng(0), 200_000, SMALL) / 86_400
    assert np.median(days) == pytest.approx(3.0, rel=0.05)
    assert (days > 14).mean() == pytest.approx(0.10, abs=0.015)


# --- Realism -----------------------------------------------------------------------------


def test_genuine_card_present_moves_are_physically_possible(
    data: GeneratedData, joined: pd.DataFrame
) -> None:
    genuine_cp = joined[(joined["is_fraud"] == 0) & (joined["channel"] == "card_present")]
    assert _speeds_kmh(genuine_cp).max() <= 900
    # ...and yet cards do travel: some genuine card-present payments are far from home.
    homes = data.cards.astype({"card_id": str}).set_index("card_id").loc[genuine_cp["card_id"]]
    km = haversine_km(
        homes["home_latitude"].to_numpy(),
        homes["home_longitude"].to_numpy(),
        genuine_cp["latitude"].to_numpy(),
        genuine_cp["longitude"].to_numpy(),
    )
    assert 0.01 < (km > 300).mean() < 0.15


def test_few_purchases_at_night(joined: pd.DataFrame) -> None:
    genuine = joined[joined["is_fraud"] == 0]
    night = (_local_hour(genuine) < 6).mean()
    assert night < 0.08
    takeover = joined[joined["fraud_scenario"] == "account_takeover"]
    assert (_local_hour(takeover) < 6).mean() > 0.4


def test_card_testing_is_a_burst_of_small_online_amounts_then_escalation(
    joined: pd.DataFrame,
) -> None:
    testing = joined[joined["fraud_scenario"] == "card_testing"]
    assert (testing["channel"] == "online").all()
    for _, rows in testing.groupby("card_id"):
        small = rows[rows["amount"] <= 5]
        assert len(small) >= 1 and (small["amount"] >= 0.5).all()
        assert small["event_timestamp"].max() - small["event_timestamp"].min() <= pd.Timedelta(
            minutes=15
        )
        big = rows[rows["amount"] > 5]
        assert (big["event_timestamp"] > small["event_timestamp"].max()).all()
        assert big["amount"].is_monotonic_increasing


def test_impossible_travel_implies_more_than_1000_kmh(joined: pd.DataFrame) -> None:
    card_present = joined[joined["channel"] == "card_present"]
    speeds = []
    for card, rows in joined[joined["fraud_scenario"] == "impossible_travel"].groupby("card_id"):
        first = rows.iloc[0]
        before = card_present[
            (card_present["card_id"] == card)
            & (card_present["is_fraud"] == 0)
            & (card_present["event_timestamp"] < first["event_timestamp"])
        ]
        prev = before.iloc[-1]
        km = haversine_km(
            prev["latitude"], prev["longitude"], first["latitude"], first["longitude"]
        )
        hours = (first["event_timestamp"] - prev["event_timestamp"]).total_seconds() / 3_600
        speeds.append(km / hours)
        assert first["channel"] == "card_present"
    assert len(speeds) >= 10
    assert min(speeds) > 1_000


def test_compromised_merchant_victims_paid_there_before_the_fraud(
    data: GeneratedData, joined: pd.DataFrame
) -> None:
    compromised = set(data.compromised_merchants)
    assert 1 <= len(compromised) <= 10
    visits = joined[joined["merchant_id"].astype(str).isin(compromised) & (joined["is_fraud"] == 0)]
    first_visit = visits.groupby("card_id")["event_timestamp"].min()
    fraud = joined[joined["fraud_scenario"] == "compromised_merchant"]
    first_fraud = fraud.groupby("card_id")["event_timestamp"].min()
    assert first_fraud.index.isin(first_visit.index).all()
    assert (first_fraud > first_visit.loc[first_fraud.index]).all()


def test_account_takeover_spends_much_more_online_in_risky_categories(joined: pd.DataFrame) -> None:
    takeover = joined[joined["fraud_scenario"] == "account_takeover"]
    assert (takeover["channel"] == "online").all()
    assert set(takeover["merchant_category"].astype(str)) <= {
        "electronics",
        "jewelry",
        "online_retail",
        "travel",
    }
    usual = joined[joined["is_fraud"] == 0].groupby("card_id")["amount"].median()
    ratio = takeover["amount"].to_numpy() / usual.loc[takeover["card_id"]].to_numpy()
    assert np.median(ratio) > 3


def test_an_amount_threshold_is_a_poor_detector(joined: pd.DataFrame) -> None:
    y = joined["is_fraud"].to_numpy()
    amount = joined["amount"].to_numpy()
    assert _average_precision(y, amount) < 0.3
    # No threshold reaches both decent precision and recall.
    for threshold in (5, 50, 200, 500, 1_000, 2_000):
        flagged = amount >= threshold
        precision = y[flagged].mean() if flagged.any() else 0.0
        recall = y[flagged].sum() / y.sum()
        assert precision < 0.5 or recall < 0.2


def test_average_precision_helper_matches_a_hand_computed_case() -> None:
    y = np.array([1, 0, 1, 0])
    score = np.array([0.9, 0.8, 0.7, 0.1])
    assert _average_precision(y, score) == pytest.approx((1.0 + 2 / 3) / 2)


# --- Building blocks ---------------------------------------------------------------------


def test_sample_rows_draws_from_each_rows_distribution() -> None:
    cdf = np.array([[0.0, 1.0, 1.0], [0.5, 0.5, 1.0]])
    rows = np.array([0, 0, 1, 1, 1])
    u = np.array([0.0, 0.99, 0.1, 0.49, 0.5])
    assert sample_rows(cdf, rows, u).tolist() == [1, 1, 0, 0, 2]


def test_hash_unit_is_stable_and_uniform() -> None:
    a = hash_unit(np.arange(100_000), 3, 7)
    assert np.array_equal(a, hash_unit(np.arange(100_000), 3, 7))
    assert a.min() >= 0 and a.max() < 1 and abs(a.mean() - 0.5) < 0.01


def test_fill_budget_cuts_the_last_event() -> None:
    assert fill_budget(np.array([3, 4, 5, 6]), 10).tolist() == [3, 4, 3]
    assert fill_budget(np.array([3, 4]), 7).tolist() == [3, 4]


def test_enforce_travel_times_delays_unreachable_rows_only() -> None:
    card = np.array([0, 0, 0, 1])
    t = np.array([0, 60, 100_000, 0])
    lat = np.array([51.5, 48.85, 48.85, 40.0])  # London, then Paris a minute later
    lon = np.array([-0.12, 2.35, 2.35, -74.0])
    fixed = enforce_travel_times(card, t, lat, lon)
    km = haversine_km(51.5, -0.12, 48.85, 2.35)
    assert fixed[1] >= km / 800 * 3_600 and fixed[0] == 0
    assert fixed[2] == 100_000 and fixed[3] == 0


# --- Landing format ----------------------------------------------------------------------


def test_landing_parts_partition_by_event_and_label_date(data: GeneratedData) -> None:
    parts = landing_parts(data, S3Settings(bucket="b", prefix="env"))
    keys = [p.key for p in parts]
    assert "env/landing/reference/cards/part-00000.jsonl.gz" in keys
    assert "env/landing/reference/merchants/part-00000.jsonl.gz" in keys
    tx_keys = [k for k in keys if "/transactions/" in k]
    assert tx_keys == [
        f"env/landing/transactions/event_date={SMALL.start_date + timedelta(d)}/part-00000.jsonl.gz"
        for d in range(SMALL.days)
    ]
    label_parts = [p for p in parts if p.feed == "labels"]
    assert all(p.key.endswith("/part-20250303-20250323.jsonl.gz") for p in label_parts)
    assert sum(p.table.num_rows for p in label_parts) == len(data.labels)
    for part in label_parts:
        day = part.key.split("label_date=")[1][:10]
        stamps = part.table.column("label_timestamp").to_pandas()
        assert (stamps.dt.strftime("%Y-%m-%d") == day).all()


def test_jsonl_gz_round_trips_values_with_utc_z_timestamps_and_nulls(data: GeneratedData) -> None:
    parts = landing_parts(data, S3Settings(bucket="b"))
    tx_part = next(p for p in parts if p.feed == "transactions")
    rows = [json.loads(line) for line in gzip.decompress(jsonl_gz(tx_part.table)).splitlines()]
    expected = tx_part.table.to_pandas()
    assert len(rows) == len(expected) and list(rows[0]) == TRANSACTION_COLUMNS
    assert [r["amount"] for r in rows] == expected["amount"].tolist()
    assert [r["transaction_id"] for r in rows] == expected["transaction_id"].tolist()
    stamps = expected["event_timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
    assert [r["event_timestamp"] for r in rows] == stamps
    label_part = max((p for p in parts if p.feed == "labels"), key=lambda p: p.table.num_rows)
    labels = [json.loads(line) for line in gzip.decompress(jsonl_gz(label_part.table)).splitlines()]
    assert {r["fraud_scenario"] for r in labels if r["is_fraud"] == 0} == {None}
    cards = [json.loads(line) for line in gzip.decompress(jsonl_gz(parts[0].table)).splitlines()]
    assert cards[0]["issue_date"] == data.cards["issue_date"].iloc[0].isoformat()


def test_jsonl_escapes_strings_and_writes_nulls() -> None:
    table = pa.table(
        {
            "s": pa.array(['say "hi"', None, "back\\slash"]),
            "plain": pa.array(["a", "b", "c"]),
            "d": pa.array(["x", None, "y"]).dictionary_encode(),
            "f": pa.array([1.5, float("nan"), 2.0]),
            "b": pa.array([True, False, None]),
            "i": pa.array([1, None, 3], type=pa.int8()),
            "ts": pa.array([0, 86_399, None], type=pa.timestamp("s", tz="UTC")),
            "day": pa.array([date(2025, 1, 2), None, date(2025, 1, 3)]),
        }
    )
    rows = [json.loads(line) for line in gzip.decompress(jsonl_gz(table)).splitlines()]
    assert rows == [
        {
            "s": 'say "hi"',
            "plain": "a",
            "d": "x",
            "f": 1.5,
            "b": True,
            "i": 1,
            "ts": "1970-01-01T00:00:00Z",
            "day": "2025-01-02",
        },
        {
            "s": None,
            "plain": "b",
            "d": None,
            "f": None,
            "b": False,
            "i": None,
            "ts": "1970-01-01T23:59:59Z",
            "day": None,
        },
        {
            "s": "back\\slash",
            "plain": "c",
            "d": "y",
            "f": 2.0,
            "b": None,
            "i": 3,
            "ts": None,
            "day": "2025-01-03",
        },
    ]
