"""Per-card velocity and amount statistics, and the card's last two transactions, before
each transaction.

For a card with a transaction at t, the row describes the state before t (docs/features.md):
each window w covers the card's transactions with timestamps in ``[t - w, t)``, so the
transaction at t and any other at the same instant are out; the last transaction is the
latest before t (the greatest ``transaction_id`` among simultaneous ones), the previous one
the latest at an earlier instant, both within the last 30 days. The row is stored at
``t - 1 µs``, where Feast's point-in-time join of the entity row (also at ``t - 1 µs``,
``fraud_platform.point_in_time``) finds it. Several transactions at one instant give one row.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from feature_pipeline.features.geo import haversine_km
from feature_pipeline.features.windows import (
    MICROS,
    TS,
    before_instants,
    by_entity,
    last_per_instant,
    micros,
)
from fraud_platform.event_features import DISTINCT_MERCHANTS_WINDOW, HISTORY_SECONDS
from fraud_platform.windows import CARD_WINDOWS as WINDOWS

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

LOOKBACK_SECONDS = max(WINDOWS.values())
"""History a window's first day needs: compute over ``[start - 30 days, end]``."""
_STEP = (
    "_last_ts_us",
    "_last_latitude",
    "_last_longitude",
    "_last_amount",
    "_prev_ts_us",
    "_prev_latitude",
    "_prev_longitude",
)


def _window_schema() -> pa.Schema:
    """What the Polars kernel returns: raw window statistics and the last two instants."""
    import pyarrow as pa

    fields = [("card_id", pa.string()), (TS, pa.int64())]
    for name in WINDOWS:
        fields += [
            (f"txn_count_{name}", pa.int64()),
            (f"_sum_{name}", pa.float64()),
            (f"amount_max_{name}", pa.float64()),
        ]
    fields += [("distinct_merchants_24h", pa.int32())]
    fields += [(c, pa.int64() if c.endswith("_us") else pa.float64()) for c in _STEP]
    return pa.schema(fields)


def card_windows(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per card instant of a partition (every transaction of its cards): the
    windows' raw statistics before it and the card's last two transactions before it."""
    import polars as pl

    # The last of simultaneous transactions is the one with the greatest id.
    events = frame.sort("card_id", TS, "transaction_id").with_columns(pl.lit(1).alias("_txn"))
    aggregations: dict[int, list[pl.Expr]] = {
        seconds: [
            pl.col("_txn").sum().alias(f"txn_count_{name}"),
            pl.col("amount").sum().alias(f"_sum_{name}"),
            pl.col("amount").max().alias(f"amount_max_{name}"),
        ]
        for name, seconds in WINDOWS.items()
    }
    aggregations.setdefault(DISTINCT_MERCHANTS_WINDOW, []).append(
        pl.col("merchant_id").drop_nulls().n_unique().alias("distinct_merchants_24h")
    )
    instants = events.select("card_id", TS).unique(maintain_order=True)
    rows = before_instants(events, instants, "card_id", aggregations)
    same_card = pl.col("card_id") == pl.col("card_id").shift(1)
    lasts = (
        events.filter(last_per_instant("card_id"))
        .select(
            "card_id",
            pl.col(TS).alias("_last_ts_us"),
            *(pl.col(c).alias(f"_last_{c}") for c in ("latitude", "longitude", "amount")),
            *(
                pl.when(same_card).then(pl.col(c).shift(1)).alias(f"_prev_{c.lstrip('_')}")
                for c in (TS, "latitude", "longitude")
            ),
        )
        .sort("_last_ts_us")
    )
    # The latest instant strictly before t and at or after t - 30 days.
    history = HISTORY_SECONDS * MICROS
    probes = rows.select("card_id", TS, (pl.col(TS) - 1).alias("_at")).sort("_at")
    steps = probes.join_asof(
        lasts,
        left_on="_at",
        right_on="_last_ts_us",
        by="card_id",
        strategy="backward",
        tolerance=history - 1,
        check_sortedness=False,
    )  # both sorted by instant above
    old_prev = pl.col("_prev_ts_us") < pl.col(TS) - history
    steps = steps.with_columns(
        pl.when(old_prev).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("_prev_ts_us", "_prev_latitude", "_prev_longitude")
    )
    return rows.join(steps.select("card_id", TS, *_STEP), on=["card_id", TS], how="left")


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
        One row per card transaction instant t, at ``t - 1 µs``: the window statistics,
        distinct merchants in 24 hours, the last transaction and the step to it from the
        one before, all before t.
    """
    from pyspark.sql import functions as F

    events = transactions.select(
        "transaction_id",
        "card_id",
        "merchant_id",
        "amount",
        "latitude",
        "longitude",
        micros().alias(TS),
    )
    stats = by_entity(events, "card_id", card_windows, _window_schema(), start, end)

    seconds_since = (F.col("_last_ts_us") - F.col("_prev_ts_us")) / 1e6
    distance = haversine_km(
        F.col("_prev_latitude"),
        F.col("_prev_longitude"),
        F.col("_last_latitude"),
        F.col("_last_longitude"),
    )
    # Stored one microsecond before its transaction: the state before it.
    event_timestamp = F.timestamp_micros(F.col(TS) - 1)
    return stats.select(
        "card_id",
        event_timestamp.alias("event_timestamp"),
        F.lit(created).alias("created"),
        *_window_columns(),
        "distinct_merchants_24h",
        seconds_since.alias("seconds_since_prev_txn"),
        distance.alias("distance_from_prev_km"),
        F.try_divide(distance, seconds_since / 3600).alias("speed_from_prev_kmh"),
        F.col("_last_latitude").alias("last_latitude"),
        F.col("_last_longitude").alias("last_longitude"),
        F.col("_last_amount").alias("last_amount"),
        # The instant of the last transaction as a value: serving needs it to compute the
        # time since the card's last transaction (Feast does not return event timestamps).
        F.unix_seconds(F.timestamp_micros("_last_ts_us")).alias("last_txn_timestamp"),
        # The partition of the transaction the row is for (its timestamp is 1 µs earlier).
        F.date_format(F.timestamp_micros(TS), "yyyy-MM-dd").alias("event_date"),
    )


def _window_columns() -> list[Column]:
    """Count, sum, mean and max of each window, from the window statistics.

    The sum is rounded to cents (which hides the order of additions) and the mean is that
    sum over the count, unrounded: serving computes the same doubles
    (fraud_platform.event_features).
    """
    from pyspark.sql import functions as F

    columns = []
    for name in WINDOWS:
        count, total = F.col(f"txn_count_{name}"), F.round(F.col(f"_sum_{name}"), 2)
        columns += [
            count.alias(f"txn_count_{name}"),
            total.alias(f"amount_sum_{name}"),
            F.try_divide(total, count).alias(f"amount_mean_{name}"),
            F.col(f"amount_max_{name}"),
        ]
    return columns
