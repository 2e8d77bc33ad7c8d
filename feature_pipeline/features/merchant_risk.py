"""Per-merchant volume and fraud rate from delayed labels, without leaking future labels.

At a merchant transaction at t, the state before it (docs/features.md), for each window w:
- ``txn_count_w``: the merchant's transactions with timestamps in ``[t - w, t)``;
- ``fraud_count_w``: frauds at the merchant whose label became known (plus an optional
  extra delay) in ``[t - w, t)``: a label known at or after t never counts at t;
- ``fraud_rate_w``: ``fraud_count_w / txn_count_w`` (unrounded), 0 without transactions.
The row is stored at ``t - 1 µs``, where the point-in-time join of the transaction finds it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from feature_pipeline.features.windows import MICROS, TS, before_instants, by_entity, micros
from fraud_platform.windows import MERCHANT_WINDOWS

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

LOOKBACK_SECONDS = max(MERCHANT_WINDOWS.values())


def _window_schema() -> pa.Schema:
    import pyarrow as pa

    fields = [("merchant_id", pa.string()), (TS, pa.int64())]
    for name in MERCHANT_WINDOWS:
        fields += [(f"txn_count_{name}", pa.int64()), (f"fraud_count_{name}", pa.int64())]
    return pa.schema(fields)


def merchant_windows(frame: pl.DataFrame) -> pl.DataFrame:
    """Transaction and known-fraud counts before each merchant transaction instant of a
    partition, whose rows are transaction events and label events."""
    import polars as pl

    aggregations = {
        seconds: [
            pl.col("_txn").sum().alias(f"txn_count_{name}"),
            pl.col("_fraud").sum().alias(f"fraud_count_{name}"),
        ]
        for name, seconds in MERCHANT_WINDOWS.items()
    }
    instants = frame.filter(pl.col("_txn") == 1).select("merchant_id", TS).unique()
    return before_instants(frame, instants, "merchant_id", aggregations)


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
    fraud_events = _fraud_events(labels, labelled_transactions or transactions, delay_us)
    stats = by_entity(
        txn_events.unionByName(fraud_events),
        "merchant_id",
        merchant_windows,
        _window_schema(),
        start,
        end,
    )
    return stats.select(
        "merchant_id",
        F.timestamp_micros(F.col(TS) - 1).alias("event_timestamp"),
        F.lit(created).alias("created"),
        *_window_columns(),
        F.date_format(F.timestamp_micros(TS), "yyyy-MM-dd").alias("event_date"),
    )


def _fraud_events(labels: DataFrame, labelled: DataFrame, delay_us: int) -> DataFrame:
    """One event per fraud label, at the merchant of its transaction, at the instant the
    label became known plus the extra delay."""
    from pyspark.sql import functions as F

    return (
        labels.where(F.col("is_fraud") == 1)
        .join(labelled.select("transaction_id", "merchant_id"), "transaction_id")
        .select(
            "merchant_id",
            (micros("label_timestamp") + F.lit(delay_us)).alias(TS),
            F.lit(0).alias("_txn"),
            F.lit(1).alias("_fraud"),
        )
    )


def _window_columns() -> list[Column]:
    """Transaction count, fraud count and fraud rate of each window (0 without
    transactions)."""
    from pyspark.sql import functions as F

    columns = []
    for name in MERCHANT_WINDOWS:
        txns, frauds = F.col(f"txn_count_{name}"), F.col(f"fraud_count_{name}")
        columns += [
            txns,
            frauds,
            F.coalesce(F.try_divide(frauds, txns), F.lit(0.0)).alias(f"fraud_rate_{name}"),
        ]
    return columns
