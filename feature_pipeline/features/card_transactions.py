"""Per-card velocity and amount statistics, and the previous transaction, at each transaction.

For a card with a transaction at t, the row at t covers the card's transactions with
timestamps in ``(t - w, t]`` for each window w: the transaction at t itself and any other at
the same instant are included. Several transactions at one instant give one row.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from feature_pipeline.features.geo import haversine_km
from feature_pipeline.features.windows import micros, trailing

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

WINDOWS: dict[str, int] = {
    "10m": 10 * 60,
    "1h": 60 * 60,
    "24h": 24 * 60 * 60,
    "7d": 7 * 24 * 60 * 60,
    "30d": 30 * 24 * 60 * 60,
}
LOOKBACK_SECONDS = max(WINDOWS.values())
"""History a window's first day needs: compute over ``[start - 30 days, end]``."""


def card_transaction_features(
    transactions: DataFrame, start: datetime, end: datetime, created: datetime
) -> DataFrame:
    """Feature rows for the card transactions with ``start <= event_timestamp < end``.

    Args:
        transactions: Bronze transactions covering at least ``[start - 30 days, end)``.
        start: First instant whose rows are produced.
        end: Instant after the last produced row.
        created: The run's timestamp, stored as ``created`` (Feast's tie-breaker).

    Returns:
        One row per (card_id, event_timestamp) with the window statistics, distinct
        merchants in 24 hours, and the step from the card's previous transaction.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    events = transactions.select(
        "transaction_id", "card_id", "merchant_id", "amount", "latitude", "longitude",
        "event_timestamp",
    ).withColumn("_ts_us", micros())
    aggregates = []
    for name, seconds in WINDOWS.items():
        frame = trailing("card_id", seconds)
        count = F.count("*").over(frame)
        total = F.sum("amount").over(frame)
        aggregates += [
            count.alias(f"txn_count_{name}"),
            F.round(total, 2).alias(f"amount_sum_{name}"),
            F.round(total / count, 2).alias(f"amount_mean_{name}"),
            F.max("amount").over(frame).alias(f"amount_max_{name}"),
        ]
    aggregates.append(
        F.size(F.collect_set("merchant_id").over(trailing("card_id", WINDOWS["24h"]))).alias(
            "distinct_merchants_24h"
        )
    )
    windowed = events.select("*", *aggregates)

    # One row per instant: of simultaneous transactions the one with the greatest id is
    # the "last", whose amount and place the row reports.
    same_instant = Window.partitionBy("card_id", "_ts_us").orderBy(F.col("transaction_id").desc())
    per_instant = (
        windowed.withColumn("_n", F.row_number().over(same_instant)).where("_n = 1").drop("_n")
    )
    previous = Window.partitionBy("card_id").orderBy("_ts_us")
    prev_ts = F.lag("_ts_us").over(previous)
    prev_lat = F.lag("latitude").over(previous)
    prev_lon = F.lag("longitude").over(previous)
    seconds_since = (F.col("_ts_us") - prev_ts) / 1e6
    distance = haversine_km(prev_lat, prev_lon, F.col("latitude"), F.col("longitude"))
    stepped = per_instant.select(
        "*",
        seconds_since.alias("seconds_since_prev_txn"),
        F.round(distance, 3).alias("distance_from_prev_km"),
        F.round(F.try_divide(distance, seconds_since / 3600), 3).alias("speed_from_prev_kmh"),
    )
    window_cols = [c for name in WINDOWS for c in (
        f"txn_count_{name}", f"amount_sum_{name}", f"amount_mean_{name}", f"amount_max_{name}"
    )]
    return stepped.where(
        (F.col("event_timestamp") >= F.lit(start)) & (F.col("event_timestamp") < F.lit(end))
    ).select(
        "card_id",
        "event_timestamp",
        F.lit(created).alias("created"),
        *window_cols,
        "distinct_merchants_24h",
        "seconds_since_prev_txn",
        "distance_from_prev_km",
        "speed_from_prev_kmh",
        F.col("latitude").alias("last_latitude"),
        F.col("longitude").alias("last_longitude"),
        F.col("amount").alias("last_amount"),
        # The instant of the row's transaction as a value: serving needs it to compute the
        # time since the card's last transaction (Feast does not return event timestamps).
        F.unix_seconds("event_timestamp").alias("last_txn_timestamp"),
        F.date_format("event_timestamp", "yyyy-MM-dd").alias("event_date"),
    )
