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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

MICROS = 1_000_000
TS = "_ts_us"
"""The ordering column of every window: the event's instant in microseconds since the epoch."""

Kernel = Callable[["Iterator[pa.RecordBatch]"], "Iterator[pa.RecordBatch]"]


def micros(column: str = "event_timestamp") -> Column:
    """A timestamp as microseconds since the epoch: an exact, integer window key."""
    from pyspark.sql import functions as F

    return F.unix_micros(F.col(column))


def epoch_micros(instant: datetime) -> int:
    """An aware instant in microseconds since the epoch, exactly (no float rounding)."""
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def by_entity(frame: DataFrame, key: str, kernel: Kernel, schema: pa.Schema) -> DataFrame:
    """``kernel`` over partitions of ``frame`` that each hold every row of their ``key``s.

    Args:
        frame: Input rows (Arrow-convertible columns).
        key: The entity column; all its rows meet in one partition.
        kernel: Arrow batches of one partition in, result batches of ``schema`` out.
        schema: The kernel's output schema (Arrow; Spark's is derived from it).
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    partitions = int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    return frame.repartition(partitions, key).mapInArrow(kernel, from_arrow_schema(schema))


def partition_frame(batches: Iterator[pa.RecordBatch]) -> pl.DataFrame | None:
    """One Spark partition's Arrow batches as a Polars frame; None when it is empty."""
    import polars as pl
    import pyarrow as pa

    collected = list(batches)
    if not collected:
        return None
    return pl.from_arrow(pa.Table.from_batches(collected))  # type: ignore[return-value]


def as_batches(frame: pl.DataFrame, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """A kernel's result as Arrow batches of exactly ``schema`` (Spark checks the types)."""
    yield from frame.select(schema.names).to_arrow().cast(schema).to_batches()


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


def in_range(start_us: int, end_us: int) -> pl.Expr:
    """``start <= TS < end``: the rows a run produces."""
    import polars as pl

    return pl.col(TS).is_between(start_us, end_us, closed="left")
