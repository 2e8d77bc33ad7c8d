"""Trailing time windows per entity: Spark partitions by entity, Polars aggregates each partition.

Why not Spark's window functions: a sliding range frame (``rangeBetween(-w, 0)``) is
re-aggregated over its whole buffer whenever a row leaves it, so a row costs as much as
the events in its window. A merchant's 30 days hold thousands of events, and the tables'
eleven frames made windowing most of the pipeline's time. Polars' rolling aggregations
add and remove each event once. Spark still reads, shuffles (every row of an entity into
one partition), rounds, joins and writes; ``mapInArrow`` hands each partition to Polars as
Arrow batches, without a per-row Python call.

A window at ``t`` covers the entity's events with timestamps in ``(t - w, t]``, to the
microsecond: closed at ``t``, so every event at the same instant counts (windows are
defined by time, not by row position), and open at ``t - w``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

MICROS = 1_000_000
TS = "_ts_us"
"""The ordering column of every window: the event's instant in microseconds since the epoch."""

EntityKernel = Callable[["pl.DataFrame"], "pl.DataFrame"]
"""Every row of some entities in, sorted or not; one result row per output instant out."""


def micros(column: str = "event_timestamp") -> Column:
    """A timestamp as microseconds since the epoch: an exact, integer window key."""
    from pyspark.sql import functions as F

    return F.unix_micros(F.col(column))


def by_entity(frame: DataFrame, key: str, kernel: EntityKernel, schema: pa.Schema,
              start: datetime, end: datetime) -> DataFrame:
    """``kernel`` over partitions of ``frame`` that each hold every row of their ``key``s,
    keeping the result rows with ``start <= TS < end``.

    Args:
        frame: Input rows (Arrow-convertible columns), with ``TS``.
        key: The entity column; all its rows meet in one partition.
        kernel: A Polars function of one partition's rows.
        schema: The kernel's output columns (Arrow; Spark's schema is derived from it).
        start: First instant of the rows kept (aware).
        end: Instant after the last row kept (aware).
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    run = partial(run_partition, kernel=kernel, schema=schema,
                  start_us=_epoch_micros(start), end_us=_epoch_micros(end))
    partitions = int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    return frame.repartition(partitions, key).mapInArrow(run, from_arrow_schema(schema))


def run_partition(batches: Iterator[pa.RecordBatch], kernel: EntityKernel, schema: pa.Schema,
                  start_us: int, end_us: int) -> Iterator[pa.RecordBatch]:
    """One Spark partition's Arrow batches through ``kernel``, as batches of exactly
    ``schema`` (Spark checks the types); an empty partition gives none."""
    import polars as pl
    import pyarrow as pa

    collected = list(batches)
    if not collected:
        return
    rows = kernel(pl.from_arrow(pa.Table.from_batches(collected)))  # type: ignore[arg-type]
    kept = rows.filter(pl.col(TS).is_between(start_us, end_us, closed="left"))
    yield from kept.select(schema.names).to_arrow().cast(schema).to_batches()


def _epoch_micros(instant: datetime) -> int:
    """An aware instant in microseconds since the epoch, exactly (no float rounding)."""
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def trailing(frame: pl.DataFrame, key: str, aggregations: dict[int, list[pl.Expr]]
             ) -> pl.DataFrame:
    """``frame`` with, for each window of ``seconds``, its aggregations over ``(t - w, t]``.

    Args:
        frame: Sorted by ``key`` then ``TS``.
        key: The entity column; windows never cross entities.
        aggregations: Window length in seconds -> aliased aggregations of that window.

    Returns:
        ``frame`` with the aggregated columns added, row for row.
    """
    added = []
    for seconds, expressions in aggregations.items():
        rolled = frame.rolling(
            index_column=TS, period=f"{seconds * MICROS}i", closed="right", group_by=key
        ).agg(expressions)
        # Rolling keeps a sorted frame's row order; the columns are added by position.
        if not (rolled[key].equals(frame[key]) and rolled[TS].equals(frame[TS])):
            raise RuntimeError(f"rolling over {key} reordered the rows")
        added.extend(rolled.drop(key, TS).get_columns())
    return frame.with_columns(added)


def last_per_instant(key: str) -> pl.Expr:
    """True on the last row of each ``(key, TS)`` in a frame sorted by them."""
    import polars as pl

    later = (pl.col(key) != pl.col(key).shift(-1)) | (pl.col(TS) != pl.col(TS).shift(-1))
    return later.fill_null(True)
