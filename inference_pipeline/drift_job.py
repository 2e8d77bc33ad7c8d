"""The daily drift report: read a scored day and the champion's reference, compare them
(:mod:`inference_pipeline.drift`), write the report to S3 and MLflow, push its figures.

The reference is the champion's training window (from the version's metadata), its
vectors rebuilt by the same point-in-time join that built the training set, sampled to
``FRAUD_DRIFT_REFERENCE_ROWS`` and scored by the champion; it is cached on S3 per version
(``monitoring/reference/<model>/<version>.parquet``), so it is built once per model.
"""

from __future__ import annotations

import io
import logging
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraud_platform import point_in_time
from fraud_platform.s3 import s3_client
from fraud_platform.settings import MLflowSettings, S3Settings
from inference_pipeline.drift import SCORE, DriftResult, DriftSettings, add_label_metrics, compare

log = logging.getLogger(__name__)
MONITORING = "monitoring"


class DriftAlert(RuntimeError):
    """A day crossed a threshold of the drift report (its report is written)."""


def _read_parquet(s3: S3Settings, key: str) -> pd.DataFrame | None:
    import pyarrow.parquet as pq
    from botocore.exceptions import ClientError

    try:
        body = s3_client(s3).get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    return pq.read_table(io.BytesIO(body)).to_pandas()


def _put(s3: S3Settings, key: str, body: bytes) -> None:
    s3_client(s3).put_object(Bucket=s3.bucket, Key=key, Body=body)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def reference(
    model_name: str, version: str, settings: DriftSettings, s3: S3Settings
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The champion's reference vectors and scores, and the version's metadata."""
    from fraud_platform.feast_repo import open_store
    from fraud_platform.model_registry import load_version

    booster, metadata = load_version(model_name, version)
    key = s3.key(MONITORING, "reference", model_name, f"{version}.parquet")
    cached = _read_parquet(s3, key)
    if cached is not None:
        return cached, metadata
    windows = metadata["windows"]
    start = datetime.fromisoformat(windows["train_start"]).astimezone(UTC)
    end = datetime.fromisoformat(windows["train_end"]).astimezone(UTC)
    transactions = point_in_time.read_transactions(start, end, s3)
    if len(transactions) > settings.reference_rows:
        transactions = transactions.sample(settings.reference_rows, random_state=0)
    rows = transactions.rename(columns={"event_timestamp": point_in_time.REQUEST_TIMESTAMP})
    frame = point_in_time.historical_features(open_store(), rows, metadata["feature_service"]).frame
    vectors = frame[metadata["features"]].reset_index(drop=True)
    vectors[SCORE] = np.asarray(
        booster.inplace_predict(vectors.astype("float32")), dtype=np.float64
    )
    _put(s3, key, _parquet(vectors))
    log.info(
        "reference of %s v%s: %d rows of %s..%s",
        model_name,
        version,
        len(vectors),
        start.date(),
        end.date(),
    )
    return vectors, metadata


def served_day(day: date, s3: S3Settings) -> pd.DataFrame:
    """The day's scored vectors: batch scoring's predictions (any frame with the model's
    features, ``fraud_probability``, ``model_version`` and ``transaction_id`` will do)."""
    from inference_pipeline.batch import predictions_key

    frame = _read_parquet(s3, predictions_key(day, s3))
    if frame is None:
        raise FileNotFoundError(f"no predictions for {day}: run batch scoring first")
    return frame


def _labels(day: date, s3: S3Settings) -> pd.DataFrame:
    """Labels known so far for transactions of ``day`` (labels come days later; none yet:
    an empty frame)."""
    columns = ["transaction_id", "is_fraud", "label_timestamp"]
    try:
        frame = point_in_time.bronze_table(
            s3, "labels", "label_date", day, None, columns
        ).to_pandas()
    except FileNotFoundError:
        return pd.DataFrame(columns=columns)
    return frame.sort_values("label_timestamp").drop_duplicates("transaction_id", keep="last")


def report_day(
    day: date, settings: DriftSettings | None = None, s3: S3Settings | None = None
) -> dict[str, Any]:
    """Compare one scored day with its model's reference; write and log the report."""
    settings = settings or DriftSettings()
    s3 = s3 or S3Settings()
    current = served_day(day, s3)
    model_name = str(current["model_name"].iloc[0])
    version = str(current["model_version"].iloc[0])
    baseline, metadata = reference(model_name, version, settings, s3)
    features = [f for f in metadata["features"] if f in current]
    result, snapshot = compare(baseline, current, features, settings)
    add_label_metrics(
        result, current, _labels(day, s3), float(metadata["thresholds"]["review"]), settings
    )
    prefix = s3.key(MONITORING, "drift", f"event_date={day.isoformat()}")
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "drift_report.html"
        snapshot.save_html(str(html))
        table = pd.DataFrame(
            [
                {
                    "day": day.isoformat(),
                    "model_name": model_name,
                    "model_version": version,
                    **result.metrics_row(),
                }
            ]
        )
        _put(s3, f"{prefix}/drift_report.html", html.read_bytes())
        _put(s3, f"{prefix}/metrics.parquet", _parquet(table))
        _log_to_mlflow(day, model_name, version, result, html, table, settings, s3)
    _push(day, result)
    summary = {
        "day": day.isoformat(),
        "model_version": version,
        "rows": result.rows,
        "drifted_features": result.drifted_features,
        "score_drift": result.score_drift,
        "average_precision": result.average_precision,
        "recall_at_review": result.recall_at_review,
        "alerts": result.alerts,
        "report": f"s3://{s3.bucket}/{prefix}/",
    }
    (log.warning if result.alerts else log.info)("drift report of %s: %s", day, summary)
    return summary


def _log_to_mlflow(
    day: date,
    model_name: str,
    version: str,
    result: DriftResult,
    html: Path,
    table: pd.DataFrame,
    settings: DriftSettings,
    s3: S3Settings,
) -> None:
    """One run per day in the monitoring experiment, tagged with the model version."""
    import mlflow

    from fraud_platform.model_registry import client

    mlflow_settings = MLflowSettings()
    tracking = client(mlflow_settings)
    experiment = tracking.get_experiment_by_name(settings.experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else tracking.create_experiment(
            settings.experiment, artifact_location=mlflow_settings.artifact_location(s3)
        )
    )
    numbers = {
        k: float(v)
        for k, v in table.iloc[0].items()
        if isinstance(v, int | float | np.number) and np.isfinite(v)
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"drift-{day}"):
        mlflow.set_tags(
            {
                "model_name": model_name,
                "model_version": version,
                "day": day.isoformat(),
                "flagged": str(bool(result.alerts)),
            }
        )
        mlflow.log_metrics(numbers)
        mlflow.log_artifact(str(html))
        mlflow.log_table(table, "drift_metrics.json")


def _push(day: date, result: DriftResult) -> None:
    from fraud_platform.run_metrics import push_gauges

    push_gauges(
        "drift_report",
        "report_days",
        {"day": day.isoformat()},
        {
            "fraud_drift_share_drifted_features": result.drifted_share,
            "fraud_drift_missing_share": max(result.missing_share.values(), default=0.0),
            "fraud_drift_score_psi": result.score_drift
            if result.score_drift is not None
            else float("nan"),
        },
    )


def report_days(days: list[date]) -> list[dict[str, Any]]:
    """Report every day, then raise :class:`DriftAlert` if any day was flagged."""
    summaries = [report_day(day) for day in days]
    flagged = [s for s in summaries if s["alerts"]]
    if flagged:
        raise DriftAlert("; ".join(f"{s['day']}: {' | '.join(s['alerts'])}" for s in flagged))
    return summaries
