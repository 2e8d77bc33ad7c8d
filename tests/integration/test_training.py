"""The training pipeline against the real stack: S3 feature tables, the Feast registry,
MLflow with artifacts on S3.

Leakage guard, no labelled row lost, the model against the amount rule, the champion
gate in both directions, and artifacts on S3 rather than ``./mlruns``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.integration.training_fixtures import (
    TEST_END,
    TEST_START,
    TRAIN_END,
    TRAIN_START,
    VALIDATION_DAYS,
    TrainingEnv,
    training_environment,
    use_training_prefix,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def training_env(stack_env, spark, tmp_path_factory) -> Iterator[TrainingEnv]:
    yield from training_environment(stack_env, spark, tmp_path_factory)


@pytest.fixture(autouse=True)
def _training_prefix(training_env: TrainingEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    use_training_prefix(training_env, monkeypatch)


@pytest.fixture(scope="module")
def prepared(training_env: TrainingEnv):
    """The split's point-in-time training set, built once for the module."""
    from training_pipeline import pipeline
    from training_pipeline.evaluate import TimeSplit

    split = TimeSplit.from_days(TRAIN_START, TRAIN_END, TEST_START, TEST_END, VALIDATION_DAYS)
    return pipeline.prepare(split, s3=training_env.s3())


def test_no_labelled_row_is_lost(prepared) -> None:
    from fraud_platform.settings import S3Settings
    from training_pipeline import pipeline

    labelled = pipeline.labelled_for(prepared.split, s3=S3Settings())
    frame = prepared.training_set.frame
    counts = prepared.training_set.counts
    assert len(frame) == len(labelled) == counts["labelled"]
    assert frame["transaction_id"].is_unique
    assert set(frame["transaction_id"]) == set(labelled["transaction_id"])
    # The window starts with the data: a card's first transaction sees the empty state (no
    # earlier transaction, so no step from one); it comes back with the profile and merchant
    # risk serving would have ...
    first = frame[frame["card_transaction_features__txn_count_30d"] == 0]
    assert len(first) > 0
    assert first["card_transaction_features__seconds_since_prev_txn"].isna().all()
    assert first["card_profile_features__credit_limit"].notna().any()
    # ... and the request-time features computed from what was found (card age).
    assert first["transaction_request_features__card_age_days"].notna().any()
    # Every feature of the service is a column, in the service's order.
    assert prepared.training_set.features == [
        c for c in frame.columns if c in set(prepared.training_set.features)
    ]


def test_training_rows_only_carry_labels_known_at_the_cutoff(prepared) -> None:
    training = pd.concat([prepared.frames.fit, prepared.frames.validation])
    assert (training["label_timestamp"] <= pd.Timestamp(prepared.split.label_cutoff)).all()
    assert (
        prepared.frames.test["transaction_timestamp"] >= pd.Timestamp(prepared.split.test_start)
    ).all()
    assert training["transaction_timestamp"].max() < pd.Timestamp(prepared.split.train_end)


def test_features_describe_the_state_before_the_transaction(prepared) -> None:
    frame = prepared.training_set.frame
    with_row = frame[frame["card_transaction_features__last_txn_timestamp"].notna()]
    # The joined card row is the previous transaction's: strictly earlier.
    last = with_row["card_transaction_features__last_txn_timestamp"]
    at = (with_row["transaction_timestamp"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    assert (last < at).all()
    # Request-time elapsed time is measured from it, as online.
    elapsed = with_row["transaction_request_features__seconds_since_last_txn"]
    assert np.allclose(elapsed, at - last)


@pytest.fixture(scope="module")
def fitted(prepared):
    from training_pipeline import pipeline

    return pipeline.fit_and_evaluate(prepared.frames, prepared.features)


def test_the_model_beats_the_amount_rule(fitted) -> None:
    from training_pipeline import pipeline

    model = fitted["test_metrics"][pipeline.MODEL]
    rule = fitted["test_metrics"][pipeline.BASELINE]
    assert model["average_precision"] > max(2 * rule["average_precision"], 0.3)
    assert model["roc_auc"] > rule["roc_auc"] + 0.05
    assert model["recall_at_0.01_fpr"] > rule["recall_at_0.01_fpr"]
    # Thresholds are ordered and were chosen on validation.
    thresholds = fitted["thresholds"]
    assert 0 <= thresholds.review <= thresholds.decline


def _weak_model(prepared):
    """A one-tree stump: registered to have a champion that a real model beats."""
    from training_pipeline import pipeline
    from training_pipeline.train import XGBConfig

    config = XGBConfig(num_boost_round=1, max_depth=1, early_stopping_rounds=1)
    return pipeline.fit_and_evaluate(prepared.frames, prepared.features, config), config


def test_champion_gate_both_ways_and_artifacts_on_s3(
    prepared, training_env, tmp_path, monkeypatch
) -> None:
    from fraud_platform.s3 import s3_client
    from fraud_platform.settings import S3Settings
    from training_pipeline import pipeline, registry

    monkeypatch.chdir(tmp_path)
    name = training_env.env["FRAUD_MODEL_NAME"]
    weak, weak_config = _weak_model(prepared)

    first = pipeline.register_model(prepared, weak, config=weak_config)
    assert first["decision"] == registry.CHAMPION and first["reason"] == "no champion yet"

    # A real model beats the stump: champion moves (and is re-scored on the same rows).
    # The whole run, reusing the module's training set of the same split.
    result = pipeline.run(
        TRAIN_START,
        TRAIN_END,
        TEST_START,
        TEST_END,
        validation_days=VALIDATION_DAYS,
        prepared=prepared,
    )
    moved = result["mlflow"]
    assert moved["decision"] == registry.CHAMPION
    assert moved["champion_average_precision"] == pytest.approx(
        weak["test_metrics"][pipeline.MODEL]["average_precision"], abs=1e-6
    )
    assert registry.alias_version(name, registry.CHAMPION) == moved["version"]
    assert registry.alias_version(name, registry.PREVIOUS_CHAMPION) == first["version"]

    # The stump again: it does not beat the champion, it becomes the challenger.
    again = pipeline.register_model(prepared, weak, config=weak_config)
    assert again["decision"] == registry.CHALLENGER
    assert registry.alias_version(name, registry.CHAMPION) == moved["version"]
    assert registry.alias_version(name, registry.CHALLENGER) == again["version"]

    # The run's metadata is JSON-safe and names what serving needs.
    assert result["counts"]["labelled"] >= result["counts"]["all_features_missing"]
    assert set(result["metrics"]) == {pipeline.MODEL, pipeline.BASELINE}
    assert result["counts"]["test_labels_mature"] is True
    assert (result["version"], result["alias"], result["champion_version"]) == (
        moved["version"],
        registry.CHAMPION,
        moved["version"],
    )

    # Artifacts: on S3 under <prefix>/mlflow, nothing in ./mlruns.
    s3 = S3Settings()
    assert moved["artifact_uri"].startswith(s3.uri("mlflow") + "/")
    assert not (tmp_path / "mlruns").exists() and not Path("mlruns").exists()
    listing = s3_client(s3).list_objects_v2(Bucket=s3.bucket, Prefix=s3.key("mlflow") + "/")
    keys = [obj["Key"] for obj in listing.get("Contents", [])]
    assert any(k.endswith("/model_metadata.json") for k in keys)
    assert any(k.endswith("/plots/pr_curve.png") for k in keys)
    assert any(k.endswith("/MLmodel") for k in keys)

    booster, metadata = registry.load_version(name, moved["version"])
    assert metadata["feature_service"] == "fraud_detection_v1"
    assert metadata["features"] == prepared.features
    assert metadata["thresholds"]["review"] <= metadata["thresholds"]["decline"]
    assert booster.num_features() == len(prepared.features)


def test_a_label_known_after_t_changes_no_feature_at_t(prepared, spark) -> None:
    """Plant a fraud label for a transaction X at t, known at t + 1 s (just after t),
    recompute the features of X's day, and compare X's training row before and after:
    unchanged. The merchant's later transaction Z, whose state includes the label, does
    change: the guard would catch a leak."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from feature_pipeline.compute import compute_features
    from fraud_platform.feast_repo import open_store
    from fraud_platform.s3 import arrow_filesystem
    from fraud_platform.settings import S3Settings
    from training_pipeline import dataset

    s3 = S3Settings()
    store = open_store()
    frame = prepared.training_set.frame
    # X, then the merchant's next instant t1 and the one after, Z at t2, on X's day;
    # X genuine and alone at its instant.
    candidates = frame[frame["is_fraud"] == 0].sort_values(["merchant_id", "transaction_timestamp"])
    chosen = None
    for _, rows in candidates.groupby("merchant_id"):
        times = rows["transaction_timestamp"].to_numpy()
        for i in range(len(rows) - 2):
            t, t1, t2 = times[i], times[i + 1], times[i + 2]
            same_day = pd.Timestamp(t).date() == pd.Timestamp(t2).date()
            if (
                same_day
                and t + np.timedelta64(1, "s") <= t1 < t2
                and (t1 - t) < np.timedelta64(12, "h")
            ):
                chosen = rows.iloc[[i, i + 2]]
                break
        if chosen is not None:
            break
    assert chosen is not None, "no merchant with three transactions in a day"
    x, z = chosen.iloc[0], chosen.iloc[1]
    rows = frame[frame["transaction_id"].isin([x["transaction_id"], z["transaction_id"]])]
    labelled = rows.drop(columns=prepared.training_set.features)
    before = dataset.historical_features(store, labelled).frame.set_index("transaction_id")

    t = pd.Timestamp(x["transaction_timestamp"])
    labels_path = s3.uri("bronze", "labels").removeprefix("s3://")
    schema = ds.dataset(
        labels_path, filesystem=arrow_filesystem(s3), format="parquet", partitioning="hive"
    ).schema
    known_at = t + timedelta(seconds=1)
    planted = {
        "transaction_id": x["transaction_id"],
        "is_fraud": 1,
        "label_timestamp": known_at.to_pydatetime(),
        "fraud_scenario": "planted",
        "source_file": "planted-by-test",
        "ingested_at": pd.Timestamp.now(tz="UTC").to_pydatetime(),
    }
    columns = [f for f in schema if f.name != "label_date"]
    table = pa.table({f.name: pa.array([planted.get(f.name)], type=f.type) for f in columns})
    pq.write_table(
        table,
        f"{labels_path}/label_date={known_at.date()}/planted.parquet",
        filesystem=arrow_filesystem(s3),
    )
    compute_features(spark, t.date(), t.date(), s3)

    after = dataset.historical_features(store, labelled).frame.set_index("transaction_id")
    features = prepared.training_set.features
    pd.testing.assert_series_equal(
        before.loc[x["transaction_id"], features], after.loc[x["transaction_id"], features]
    )
    fraud_count = next(
        name
        for name in features
        if name.startswith("merchant_risk_features__") and name.endswith("fraud_count_30d")
    )
    assert after.loc[z["transaction_id"], fraud_count] == (
        before.loc[z["transaction_id"], fraud_count] + 1
    )
    # And the training labels: at a cutoff before the planted label, X is unlabelled
    # (its genuine label comes with the settlement window); from it on, X is fraud.
    before_label = dataset.read_labels(t.to_pydatetime(), since=t.date(), s3=s3)
    assert x["transaction_id"] not in set(before_label["transaction_id"])
    from_label = dataset.read_labels(known_at.to_pydatetime(), since=t.date(), s3=s3)
    assert from_label.set_index("transaction_id").loc[x["transaction_id"], "is_fraud"] == 1


def test_batch_scoring_scores_every_transaction_of_a_day(
    prepared, fitted, training_env, monkeypatch
) -> None:
    """``inference-pipeline batch`` on the real stack: one prediction per transaction of
    the day, simultaneous transactions of a card included (none lost in the join)."""
    import uuid
    from datetime import UTC, datetime

    from fraud_platform import point_in_time
    from inference_pipeline.batch import read_predictions, score_day
    from training_pipeline import pipeline, registry

    monkeypatch.setenv("FRAUD_MODEL_NAME", f"fraud-detector-batch-{uuid.uuid4().hex[:6]}")
    assert pipeline.register_model(prepared, fitted)["decision"] == registry.CHAMPION
    s3 = training_env.s3()
    start = datetime(TEST_START.year, TEST_START.month, TEST_START.day, tzinfo=UTC)
    day = point_in_time.read_transactions(start, start + timedelta(days=1), s3)

    summary = score_day(TEST_START, s3=s3)

    assert summary["rows"] == len(day) > 0
    predictions = read_predictions(TEST_START, s3)
    assert sorted(predictions["transaction_id"]) == sorted(day["transaction_id"])
    assert predictions["fraud_probability"].between(0, 1).all()
    # The join is point in time: the card row used is strictly before the transaction.
    used = predictions.dropna(subset=["card_features_event_timestamp"])
    assert (used["card_features_event_timestamp"] < used["transaction_timestamp"]).all()
