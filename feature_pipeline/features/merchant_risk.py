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

from feature_pipeline.features.windows import MICROS, trailing

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

MERCHANT_WINDOWS: dict[str, int] = {"1d": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
LOOKBACK_SECONDS = max(MERCHANT_WINDOWS.values())


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
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    delay_us = int(extra_label_delay.total_seconds() * MICROS)
    txn_events = transactions.select(
        "merchant_id",
        F.unix_micros("event_timestamp").alias("_ts_us"),
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
            (F.unix_micros("label_timestamp") + F.lit(delay_us)).alias("_ts_us"),
            F.lit(0).alias("_txn"),
            F.lit(1).alias("_fraud"),
        )
    )
    events = txn_events.unionByName(fraud_events)
    columns = []
    for name, seconds in MERCHANT_WINDOWS.items():
        frame = trailing("merchant_id", seconds)
        txns = F.sum("_txn").over(frame)
        frauds = F.sum("_fraud").over(frame)
        columns += [
            txns.alias(f"txn_count_{name}"),
            frauds.alias(f"fraud_count_{name}"),
            F.coalesce(F.round(F.try_divide(frauds, txns), 6), F.lit(0.0)).alias(
                f"fraud_rate_{name}"
            ),
        ]
    windowed = events.select("*", *columns).where("_txn = 1")
    one_per_instant = Window.partitionBy("merchant_id", "_ts_us").orderBy("_ts_us")
    ts = F.timestamp_micros("_ts_us")
    return (
        windowed.withColumn("_n", F.row_number().over(one_per_instant))
        .where("_n = 1")
        .where((ts >= F.lit(start)) & (ts < F.lit(end)))
        .select(
            "merchant_id",
            ts.alias("event_timestamp"),
            F.lit(created).alias("created"),
            *[c for name in MERCHANT_WINDOWS for c in (
                f"txn_count_{name}", f"fraud_count_{name}", f"fraud_rate_{name}"
            )],
            F.date_format(ts, "yyyy-MM-dd").alias("event_date"),
        )
    )
