"""Online/offline consistency: logged served vectors against the point-in-time vectors.

The served vectors of a day (``inference_pipeline.feature_log``) are joined by
``transaction_id`` with the vectors ``get_historical_features`` gives the same transactions
from the offline store (``fraud_platform.point_in_time``, as training builds them), and the
share of rows and of values that differ is reported per feature. Run it once the day's
transactions and labels are in bronze and its feature tables are computed (the
``consistency`` DAG does, on every update of the feature tables):

    inference-pipeline consistency --date 2026-12-04

Each day's result is written to ``monitoring/consistency/date=<day>/result.json`` and its
equal share pushed as a gauge; a day below the bar (every vector equal, by default) fails
the run after its result is written, so the pipeline-failure alert pages.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraud_platform.layout import CARD_TRANSACTION_FEATURES, MERCHANT_RISK_FEATURES
from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings
from inference_pipeline.feature_log import log_prefix

log = logging.getLogger(__name__)

TOLERANCE = 1e-9
"""Relative and absolute: two values closer than this are equal (both missing is equal)."""


def read_logged(prefix: str, s3: S3Settings | None = None) -> pd.DataFrame:
    """Every logged vector under a key prefix; one row per transaction (the first)."""
    import pyarrow.dataset as ds

    from fraud_platform.s3 import arrow_filesystem

    s3 = s3 or S3Settings()
    dataset = ds.dataset(f"{s3.bucket}/{prefix}", filesystem=arrow_filesystem(s3), format="parquet")
    frame = dataset.to_table().to_pandas()
    frame["transaction_timestamp"] = pd.to_datetime(frame["transaction_timestamp"], utc=True)
    return frame.drop_duplicates("transaction_id", keep="first").reset_index(drop=True)


def differs(online: np.ndarray, offline: np.ndarray) -> np.ndarray:
    """Element-wise: the values differ (both missing counts as equal)."""
    both_missing = np.isnan(online) & np.isnan(offline)
    close = np.isclose(online, offline, rtol=TOLERANCE, atol=TOLERANCE)
    return ~(both_missing | close)


def offline_vectors(served: pd.DataFrame, service: str) -> pd.DataFrame:
    """The point-in-time vectors of the served transactions, in the order of ``served``."""
    from fraud_platform.feast_repo import open_store
    from fraud_platform.point_in_time import historical_features, read_transactions

    start = served["transaction_timestamp"].min().floor("D").to_pydatetime()
    end = served["transaction_timestamp"].max().floor("D").to_pydatetime() + timedelta(days=1)
    transactions = read_transactions(start, end)
    rows = transactions[transactions["transaction_id"].isin(served["transaction_id"])]
    rows = rows.rename(columns={"event_timestamp": "transaction_timestamp"})
    frame = historical_features(open_store(), rows, service).frame
    return served[["transaction_id"]].merge(frame, on="transaction_id", how="left")


def compare(served: pd.DataFrame, offline: pd.DataFrame, features: list[str]) -> dict[str, Any]:
    """Shares of served rows (and per feature, of values) that differ from offline."""
    online_values = served[features].to_numpy(dtype=np.float64)
    offline_values = offline[features].to_numpy(dtype=np.float64)
    diff = differs(online_values, offline_values)
    per_feature = {
        name.split("__", 1)[-1]: float(share)
        for name, share in zip(features, diff.mean(axis=0), strict=True)
    }
    return {
        "served": len(served),
        "found_offline": int(offline["transaction_id"].notna().sum()),
        "equal_share": float(1 - diff.any(axis=1).mean()) if len(served) else None,
        "differing_per_feature": dict(sorted(per_feature.items(), key=lambda kv: -kv[1])),
        "first_differences": [
            {
                "transaction_id": served["transaction_id"].iloc[row],
                "feature": features[col],
                "served": online_values[row, col],
                "offline": offline_values[row, col],
            }
            for row, col in np.argwhere(diff)[:10]
        ],
        "to_repair": keys_to_repair(served, features, diff),
    }


def keys_to_repair(
    served: pd.DataFrame, features: list[str], diff: np.ndarray
) -> dict[str, list[str]]:
    """The cards and merchants whose event state gave a differing value (the arguments of
    ``feature-pipeline repair-events``)."""
    out: dict[str, list[str]] = {}
    views = ((CARD_TRANSACTION_FEATURES, "card_id"), (MERCHANT_RISK_FEATURES, "merchant_id"))
    for view, key in views:
        columns = [i for i, name in enumerate(features) if name.startswith(f"{view}__")]
        if not columns or key not in served:
            out[key] = []
            continue
        rows = diff[:, columns].any(axis=1)
        out[key] = sorted({str(v) for v in served[key].to_numpy()[rows]})
    return out


def run(day: date, run_id: str = "", service: str | None = None) -> dict[str, Any]:
    """Compare a day's logged vectors (of one run, if named) with the offline ones."""
    from fraud_platform.point_in_time import feature_names

    served = read_logged(log_prefix(S3Settings(), day.isoformat(), run_id))
    if service is None:
        from fraud_platform.model_registry import CHAMPION, alias_version, load_version
        from inference_pipeline.settings import ModelSettings

        settings = ModelSettings()
        version = alias_version(settings.name, CHAMPION)
        if version is None:
            raise ValueError(f"model {settings.name} has no {CHAMPION} version")
        _, metadata = load_version(settings.name, version)
        service = metadata["feature_service"]
    from fraud_platform.feast_repo import open_store

    features = feature_names(open_store().get_feature_service(service))
    features = [f for f in features if f in served.columns]
    result = compare(served, offline_vectors(served, service), features)
    result.update(day=day.isoformat(), run=run_id, feature_service=service)
    return result


class ConsistencyAlert(RuntimeError):
    """Served vectors of a day differ from the offline ones (its result is written)."""


def _logged(s3: S3Settings, prefix: str) -> bool:
    """Whether anything was logged under ``prefix`` (a day the API did not serve is empty)."""
    listing = s3_client(s3).list_objects_v2(Bucket=s3.bucket, Prefix=f"{prefix}/", MaxKeys=1)
    return listing.get("KeyCount", 0) > 0


def report_day(day: date, service: str | None = None) -> dict[str, Any]:
    """Compare one day of the API's log, write the result to S3 and push its gauges.

    A day with nothing logged is reported as such (``served`` 0, no share), not failed:
    the API may not have served that day, or not with ``FRAUD_FEATURE_LOG`` on.
    """
    from fraud_platform.run_metrics import push_gauges

    s3 = S3Settings()
    if _logged(s3, log_prefix(s3, day.isoformat())):
        result = run(day, service=service)
    else:
        result = {"day": day.isoformat(), "served": 0, "equal_share": None}
    key = s3.key("monitoring", "consistency", f"date={day.isoformat()}", "result.json")
    body = json.dumps(result, default=str).encode()
    s3_client(s3).put_object(Bucket=s3.bucket, Key=key, Body=body)
    share = result["equal_share"]
    push_gauges(
        "consistency",
        "report_days",
        {"day": day.isoformat()},
        {
            "fraud_consistency_served_vectors": float(result["served"]),
            "fraud_consistency_equal_share": float("nan") if share is None else share,
        },
    )
    return result


def report_days(
    days: list[date], min_equal_share: float = 1.0, service: str | None = None
) -> list[dict[str, Any]]:
    """Report every day, then raise :class:`ConsistencyAlert` for those below the bar
    (the feature service is the champion's, unless named)."""
    results = [report_day(day, service) for day in days]
    low = [
        r for r in results if r["equal_share"] is not None and r["equal_share"] < min_equal_share
    ]
    if low:
        raise ConsistencyAlert(
            "; ".join(
                f"{r['day']}: {r['equal_share']:.6f} of {r['served']} vectors equal, most "
                f"differing: {next(iter(r['differing_per_feature']), '-')}"
                for r in low
            )
        )
    return results
