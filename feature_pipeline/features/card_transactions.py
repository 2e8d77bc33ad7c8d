"""Per-card velocity and amount statistics, and the previous transaction, at each transaction.

For a card with a transaction at t, the row at t covers the card's transactions with
timestamps in ``(t - w, t]`` for each window w: the transaction at t itself and any other at
the same instant are included. Several transactions at one instant give one row.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from feature_pipeline.features.geo import haversine_km
from feature_pipeline.features.windows import TS, by_entity, last_per_instant, micros, trailing

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
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


def _window_schema() -> pa.Schema:
    """What the Polars kernel returns: raw window statistics and the previous instant."""
    import pyarrow as pa

    fields = [("card_id", pa.string()), (TS, pa.int64())]
    for name in WINDOWS:
        fields += [(f"txn_count_{name}", pa.int64()), (f"_sum_{name}", pa.float64()),
                   (f"amount_max_{name}", pa.float64())]
    fields += [("distinct_merchants_24h", pa.int32()), ("_prev_ts_us", pa.int64()),
               ("_prev_latitude", pa.float64()), ("_prev_longitude", pa.float64()),
               ("latitude", pa.float64()), ("longitude", pa.float64()), ("amount", pa.float64())]
    return pa.schema(fields)


def card_windows(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per card instant of a partition (every transaction of its cards): the
    windows' raw statistics and the previous instant."""
    import polars as pl

    # The last of simultaneous transactions is the one with the greatest id.
    frame = frame.sort("card_id", TS, "transaction_id")
    aggregations: dict[int, list[pl.Expr]] = {
        seconds: [
            pl.len().alias(f"txn_count_{name}"),
            pl.col("amount").sum().alias(f"_sum_{name}"),
            pl.col("amount").max().alias(f"amount_max_{name}"),
        ]
        for name, seconds in WINDOWS.items()
    }
    aggregations[WINDOWS["24h"]].append(
        pl.col("merchant_id").drop_nulls().n_unique().alias("distinct_merchants_24h")
    )
    rows = trailing(frame, "card_id", aggregations).filter(last_per_instant("card_id"))
    same_card = pl.col("card_id") == pl.col("card_id").shift(1)
    return rows.with_columns(
        pl.when(same_card).then(pl.col(column).shift(1)).alias(f"_prev_{column.lstrip('_')}")
        for column in (TS, "latitude", "longitude")
    )


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
    from pyspark.sql import functions as F

    events = transactions.select(
        "transaction_id", "card_id", "merchant_id", "amount", "latitude", "longitude",
        micros().alias(TS),
    )
    stats = by_entity(events, "card_id", card_windows, _window_schema(), start, end)

    seconds_since = (F.col(TS) - F.col("_prev_ts_us")) / 1e6
    distance = haversine_km(F.col("_prev_latitude"), F.col("_prev_longitude"),
                            F.col("latitude"), F.col("longitude"))
    event_timestamp = F.timestamp_micros(TS)
    window_cols = []
    for name in WINDOWS:
        count, total = F.col(f"txn_count_{name}"), F.col(f"_sum_{name}")
        window_cols += [
            count.alias(f"txn_count_{name}"),
            F.round(total, 2).alias(f"amount_sum_{name}"),
            F.round(total / count, 2).alias(f"amount_mean_{name}"),
            F.col(f"amount_max_{name}"),
        ]
    return stats.select(
        "card_id",
        event_timestamp.alias("event_timestamp"),
        F.lit(created).alias("created"),
        *window_cols,
        "distinct_merchants_24h",
        seconds_since.alias("seconds_since_prev_txn"),
        F.round(distance, 3).alias("distance_from_prev_km"),
        F.round(F.try_divide(distance, seconds_since / 3600), 3).alias("speed_from_prev_kmh"),
        F.col("latitude").alias("last_latitude"),
        F.col("longitude").alias("last_longitude"),
        F.col("amount").alias("last_amount"),
        # The instant of the row's transaction as a value: serving needs it to compute the
        # time since the card's last transaction (Feast does not return event timestamps).
        F.unix_seconds(event_timestamp).alias("last_txn_timestamp"),
        F.date_format(event_timestamp, "yyyy-MM-dd").alias("event_date"),
    )
