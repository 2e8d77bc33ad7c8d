"""The drift report end to end on the real S3 server and a real MLflow registry: a scored
day is read from predictions/, compared with the champion's (cached) reference, and the
HTML report, the metrics table and an MLflow run tagged with the version are written; a
day with planted drift fails the job after its report is written."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraud_platform import model_registry
from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings
from inference_pipeline.batch import predictions_key
from inference_pipeline.drift import SCORE
from tests.unit.inference_pipeline.test_drift import FEATURES, _day

pytestmark = pytest.mark.integration
ORDINARY, PLANTED = date(2026, 3, 2), date(2026, 3, 3)


def _put_parquet(s3: S3Settings, key: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    s3_client(s3).put_object(Bucket=s3.bucket, Key=key, Body=buffer.getvalue())


@pytest.fixture
def champion(stack_env, tmp_path, monkeypatch) -> tuple[str, str]:
    """A small XGBoost model registered as champion in a private MLflow store, with the
    metadata serving and the drift report read (features, thresholds, windows)."""
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb

    name = "drift-test-model"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("FRAUD_DRIFT_EXPERIMENT", "drift-test")
    # Tracking and registry both on this store (an earlier test may have moved the registry).
    model_registry.client()
    train = _day(3000, seed=7)
    labels = (train[SCORE] > train[SCORE].quantile(0.9)).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(train[FEATURES].astype("float32"), label=labels),
        10,
    )
    metadata = {
        "features": FEATURES,
        "feature_service": "fraud_detection_v1",
        "thresholds": {"review": 0.5, "decline": 0.9},
        "windows": {
            "train_start": "2026-02-01T00:00:00+00:00",
            "train_end": "2026-02-15T00:00:00+00:00",
        },
    }
    experiment = mlflow.create_experiment(
        "drift-test-models", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.xgboost.log_model(
            booster, name="model", registered_model_name=name, metadata=metadata, model_format="ubj"
        )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)
    s3 = S3Settings()
    reference = _day(5000, seed=1)[FEATURES]
    reference[SCORE] = booster.inplace_predict(reference.astype("float32"))
    _put_parquet(s3, s3.key("monitoring", "reference", name, f"{version}.parquet"), reference)

    def scored(day: pd.DataFrame) -> pd.DataFrame:
        day = day[["transaction_id", *FEATURES]].copy()
        day[SCORE] = booster.inplace_predict(day[FEATURES].astype("float32"))
        return day.assign(model_name=name, model_version=version)

    ordinary = scored(_day(2000, seed=2))
    planted = _day(2000, seed=3)
    for column in ("amount_mean_30d", "amount_max_30d", "last_amount"):
        planted[column] *= 3
    planted["distance_from_home_km"] = np.nan
    _put_parquet(s3, predictions_key(ORDINARY, s3), ordinary)
    _put_parquet(s3, predictions_key(PLANTED, s3), scored(planted))
    # Labels of the ordinary day have arrived: the highest scores were frauds.
    frauds = ordinary.nlargest(60, SCORE)["transaction_id"]
    _put_parquet(
        s3,
        s3.key("bronze", "labels", f"label_date={ORDINARY}", "part-0.parquet"),
        pd.DataFrame(
            {
                "transaction_id": ordinary["transaction_id"],
                "is_fraud": ordinary["transaction_id"].isin(frauds).astype(int),
                "label_timestamp": datetime(2026, 3, 9, tzinfo=UTC),
            }
        ),
    )
    return name, version


def test_an_ordinary_day_passes_and_a_drifted_day_fails_after_its_report(champion) -> None:
    import mlflow

    from inference_pipeline.drift_job import DriftAlert, report_days

    name, version = champion
    s3 = S3Settings()
    [summary] = report_days([ORDINARY])
    assert summary["alerts"] == [] and summary["model_version"] == version
    assert summary["rows"] == 2000 and summary["average_precision"] > 0.5
    assert summary["recall_at_review"] is not None
    with pytest.raises(DriftAlert, match=r"2026-03-03: 43% of features drifted"):
        report_days([ORDINARY, PLANTED])
    client = s3_client(s3)
    for day in (ORDINARY, PLANTED):
        prefix = s3.key("monitoring", "drift", f"event_date={day}")
        html = client.get_object(Bucket=s3.bucket, Key=f"{prefix}/drift_report.html")
        assert html["ContentLength"] > 10_000
        table = pq.read_table(
            io.BytesIO(
                client.get_object(Bucket=s3.bucket, Key=f"{prefix}/metrics.parquet")["Body"].read()
            )
        ).to_pandas()
        assert table["model_version"].tolist() == [version]
        assert bool(table["alerts"].iloc[0]) is (day == PLANTED)
    runs = mlflow.search_runs(
        experiment_names=["drift-test"], filter_string=f"tags.model_version = '{version}'"
    )
    assert sorted(runs["tags.day"]) == ["2026-03-02", "2026-03-02", "2026-03-03"]
    assert set(runs["tags.flagged"]) == {"False", "True"}
