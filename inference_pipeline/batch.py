"""Batch scoring: a day's transactions from the offline store, scored by the champion.

The features are the point-in-time features training uses (each transaction against the
state before it, ``fraud_platform.point_in_time``), so a batch score is what the online
API would have answered had its features been perfectly fresh. The predictions of a day
are one Parquet object, ``predictions/event_date=<day>/predictions.parquet``, written with
a single PUT: readers see the old file or the new one, and a rerun replaces the day.
"""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraud_platform import point_in_time
from fraud_platform.decision import decide_all
from fraud_platform.feast_repo import open_store
from fraud_platform.model_registry import alias_version, load_version
from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings
from inference_pipeline.model import ModelUnavailableError
from inference_pipeline.settings import ModelSettings

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
FILE_NAME = "predictions.parquet"


def predictions_key(day: date, s3: S3Settings | None = None) -> str:
    """The object key of a day's predictions."""
    return (s3 or S3Settings()).key(PREDICTIONS, f"event_date={day.isoformat()}", FILE_NAME)


def score_day(
    day: date, s3: S3Settings | None = None, models: ModelSettings | None = None
) -> dict[str, Any]:
    """Score every bronze transaction of ``day`` and publish the predictions.

    Returns:
        ``{"day", "rows", "model_version", "declined", "reviewed", "key", "seconds"}``;
        ``rows`` 0 (and nothing written) when the day has no transactions.

    Raises:
        ModelUnavailableError: no version has the served alias.
    """
    started = time.perf_counter()
    s3 = s3 or S3Settings()
    models = models or ModelSettings()
    version = alias_version(models.name, models.alias)
    if version is None:
        raise ModelUnavailableError(
            f"no version of {models.name!r} has the alias "
            f"{models.alias!r}: train and register a model first"
        )
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    transactions = point_in_time.read_transactions(start, start + timedelta(days=1), s3)
    key = predictions_key(day, s3)
    summary: dict[str, Any] = {
        "day": day.isoformat(),
        "rows": len(transactions),
        "model_version": version,
        "key": key,
    }
    if transactions.empty:
        log.warning("no transactions on %s: nothing scored", day)
        return {
            **summary,
            "declined": 0,
            "reviewed": 0,
            "seconds": round(time.perf_counter() - started, 1),
        }
    predictions, feature_counts = score_transactions(transactions, models, version)
    publish(predictions, key, s3)
    counts = predictions["decision"].value_counts()
    summary.update(
        declined=int(counts.get("decline", 0)),
        reviewed=int(counts.get("review", 0)),
        feature_counts=feature_counts,
        seconds=round(time.perf_counter() - started, 1),
    )
    log.info("batch scores of %s: %s", day, summary)
    return summary


def score_transactions(
    transactions: pd.DataFrame, models: ModelSettings, version: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The predictions of ``version`` for ``transactions``, from their point-in-time
    features, and the feature join's counts.

    The scored vectors are kept beside the predictions: the drift report compares them
    with the training set.
    """
    booster, metadata = load_version(models.name, version)
    booster.set_param({"nthread": 2})
    rows = transactions.rename(columns={"event_timestamp": point_in_time.REQUEST_TIMESTAMP})
    features = point_in_time.historical_features(open_store(), rows, metadata["feature_service"])
    frame = features.frame
    probabilities = np.asarray(
        booster.inplace_predict(frame[metadata["features"]].astype("float32")), dtype=np.float64
    )
    thresholds = metadata["thresholds"]
    predictions = predictions_frame(
        frame,
        probabilities,
        models.name,
        version,
        float(thresholds["review"]),
        float(thresholds["decline"]),
    )
    vectors = frame[metadata["features"]].reset_index(drop=True)
    return pd.concat([predictions, vectors], axis=1), features.counts


def predictions_frame(
    frame: pd.DataFrame,
    probabilities: np.ndarray,
    model_name: str,
    version: str,
    review: float,
    decline: float,
) -> pd.DataFrame:
    """One prediction per transaction, with the model and the features' times.

    ``features_as_of`` is the instant of the point-in-time join (just before the
    transaction); ``card_features_event_timestamp`` the event time of the card row used
    (the card's previous transaction), null for a card's first transaction.
    """
    at = pd.to_datetime(frame[point_in_time.REQUEST_TIMESTAMP], utc=True)
    last = frame.get("card_transaction_features__last_txn_timestamp")
    card_rows = (
        pd.to_datetime(last, unit="s", utc=True)
        if last is not None
        else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    )
    return pd.DataFrame(
        {
            "transaction_id": frame[point_in_time.ROW_ID].to_numpy(),
            "card_id": frame["card_id"].to_numpy(),
            "merchant_id": frame["merchant_id"].to_numpy(),
            "transaction_timestamp": at.to_numpy(),
            "fraud_probability": probabilities,
            "decision": decide_all(probabilities, review, decline),
            "model_name": model_name,
            "model_version": version,
            "features_as_of": (at - point_in_time.ENTITY_OFFSET).to_numpy(),
            "card_features_event_timestamp": card_rows.to_numpy(),
            "scored_at": pd.Timestamp.now(tz="UTC"),
        }
    )


def publish(predictions: pd.DataFrame, key: str, s3: S3Settings) -> None:
    """Write the predictions as one object in one PUT (atomic on S3 and MinIO)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(
        pa.Table.from_pandas(predictions, preserve_index=False),
        buffer,
        compression="zstd",
        coerce_timestamps="us",
        allow_truncated_timestamps=True,
    )
    s3_client(s3).put_object(Bucket=s3.bucket, Key=key, Body=buffer.getvalue())
    log.info("published %d predictions to s3://%s/%s", len(predictions), s3.bucket, key)


def read_predictions(day: date, s3: S3Settings | None = None) -> pd.DataFrame:
    """A day's published predictions."""
    import pyarrow.parquet as pq

    s3 = s3 or S3Settings()
    body = s3_client(s3).get_object(Bucket=s3.bucket, Key=predictions_key(day, s3))["Body"]
    return pq.read_table(io.BytesIO(body.read())).to_pandas()
