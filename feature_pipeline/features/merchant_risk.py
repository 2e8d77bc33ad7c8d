"""Per-merchant volume and fraud rate from delayed labels, without leaking future labels.

At a merchant transaction at t, for each window w:
- ``txn_count_w``: the merchant's transactions with timestamps in ``(t - w, t]``;
- ``fraud_count_w``: frauds at the merchant whose label became known (plus an optional
  extra delay) in ``(t - w, t]``: a label known after t never counts at t;
- ``fraud_rate_w``: ``fraud_count_w / txn_count_w``, 0 without history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from feature_pipeline.features.windows import (
    MICROS,
    TS,
    by_entity,
    last_per_instant,
    micros,
    trailing,
)

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    from pyspark.sql import DataFrame

MERCHANT_WINDOWS: dict[str, int] = {"1d": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
LOOKBACK_SECONDS = max(MERCHANT_WINDOWS.values())


def _window_schema() -> pa.Schema:
    import pyarrow as pa

    fields = [("merchant_id", pa.string()), (TS, pa.int64())]
    for name in MERCHANT_WINDOWS:
        fields += [(f"txn_count_{name}", pa.int64()), (f"fraud_count_{name}", pa.int64())]
    return pa.schema(fields)


def merchant_windows(frame: pl.DataFrame) -> pl.DataFrame:
    """Transaction and known-fraud counts at each merchant instant of a partition, whose
    rows are transaction events and label events."""
    import polars as pl

    frame = frame.sort("merchant_id", TS, "_txn")
    aggregations = {
        seconds: [pl.col("_txn").sum().alias(f"txn_count_{name}"),
                  pl.col("_fraud").sum().alias(f"fraud_count_{name}")]
        for name, seconds in MERCHANT_WINDOWS.items()
    }
    return (
        trailing(frame, "merchant_id", aggregations)
        .filter(pl.col("_txn") == 1)
        .filter(last_per_instant("merchant_id"))
    )


def merchant_risk_features(
    transactions: DataFrame,
    labels: DataFrame,
    start: datetime,
    end: datetime,
    created: datetime,
    extra_label_delay: timedelta = timedelta(0),
    labelled_transactions: DataFrame | None = None,
) -> DataFrame:
    """Feature rows for merchant transactions with ``start <= event_timestamp < end``.

    Args:
        transactions: Bronze transactions covering ``[start - 30 days, end)``.
        labels: Bronze labels known before ``end``.
        start: First instant whose rows are produced.
        end: Instant after the last produced row.
        created: The run's timestamp.
        extra_label_delay: Added to each label's time before it may count.
        labelled_transactions: Where to find each label's merchant (``transaction_id``,
            ``merchant_id``): labels arrive weeks late, so this reaches further back than
            ``transactions``. Defaults to ``transactions``.
    """
    from pyspark.sql import functions as F

    delay_us = int(extra_label_delay.total_seconds() * MICROS)
    txn_events = transactions.select(
        "merchant_id",
        micros("event_timestamp").alias(TS),
        F.lit(1).alias("_txn"),
        F.lit(0).alias("_fraud"),
    )
    fraud_events = (
        labels.where(F.col("is_fraud") == 1)
        .join(
            (labelled_transactions or transactions).select("transaction_id", "merchant_id"),
            "transaction_id",
        )
        .select(
            "merchant_id",
            (micros("label_timestamp") + F.lit(delay_us)).alias(TS),
            F.lit(0).alias("_txn"),
            F.lit(1).alias("_fraud"),
        )
    )
    stats = by_entity(txn_events.unionByName(fraud_events), "merchant_id", merchant_windows,
                      _window_schema(), start, end)
    columns = []
    for name in MERCHANT_WINDOWS:
        txns, frauds = F.col(f"txn_count_{name}"), F.col(f"fraud_count_{name}")
        columns += [
            txns,
            frauds,
            F.coalesce(F.round(F.try_divide(frauds, txns), 6), F.lit(0.0)).alias(
                f"fraud_rate_{name}"
            ),
        ]
    ts = F.timestamp_micros(TS)
    return stats.select(
        "merchant_id",
        ts.alias("event_timestamp"),
        F.lit(created).alias("created"),
        *columns,
        F.date_format(ts, "yyyy-MM-dd").alias("event_date"),
    )
