"""Trailing time windows per entity: Spark partitions by entity, Polars aggregates each partition.

Why not Spark's window functions: a sliding range frame (``rangeBetween(-w, 0)``) is
re-aggregated over its whole buffer whenever a row leaves it, so a row costs as much as
the events in its window. A merchant's 30 days hold thousands of events, and the tables'
eleven frames made windowing most of the pipeline's time. Polars' rolling aggregations
add and remove each event once. Spark still reads, shuffles (every row of an entity into
one partition), rounds, joins and writes; ``mapInArrow`` hands each partition to Polars as
Arrow batches, without a per-row Python call.

:func:`trailing` gives, at a row at ``u``, the entity's events with timestamps in
``(u - w, u]``, to the microsecond. :func:`before_instants` asks it at ``u = t - 1 µs`` for
each transaction instant ``t``: the events in ``[t - w, t)``, the state *before* the
transaction, which is what serving sees (docs/features.md, "One semantics").
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
PROBE = "_probe"
"""Marks the rows :func:`before_instants` adds to ask the windows at an instant."""

EntityKernel = Callable[["pl.DataFrame"], "pl.DataFrame"]
"""Every row of some entities in, sorted or not; one result row per output instant out."""


def micros(column: str = "event_timestamp") -> Column:
    """A timestamp as microseconds since the epoch: an exact, integer window key."""
    from pyspark.sql import functions as F

    return F.unix_micros(F.col(column))


def by_entity(
    frame: DataFrame,
    key: str,
    kernel: EntityKernel,
    schema: pa.Schema,
    start: datetime,
    end: datetime,
) -> DataFrame:
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

    run = partial(
        run_partition,
        kernel=kernel,
        schema=schema,
        start_us=_epoch_micros(start),
        end_us=_epoch_micros(end),
    )
    partitions = frame.sparkSession.conf.get("spark.sql.shuffle.partitions")
    if partitions is None:
        raise ValueError("spark.sql.shuffle.partitions is not set")
    return frame.repartition(int(partitions), key).mapInArrow(run, from_arrow_schema(schema))


def run_partition(
    batches: Iterator[pa.RecordBatch],
    kernel: EntityKernel,
    schema: pa.Schema,
    start_us: int,
    end_us: int,
) -> Iterator[pa.RecordBatch]:
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


def trailing(frame: pl.DataFrame, key: str, aggregations: dict[int, list[pl.Expr]]) -> pl.DataFrame:
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
        # Rolling keeps each group's rows in order but returns the groups in an order of
        # its own (ids "1", "10", "2" come back "1", "2", "10"). A stable sort by the same
        # keys puts them back in the frame's order: rows of one (key, instant) share their
        # window (closed at t), so their aggregates are equal and any order among them is
        # the same. The columns are then added by position.
        rolled = rolled.sort(key, TS, maintain_order=True)
        if not (rolled[key].equals(frame[key]) and rolled[TS].equals(frame[TS])):
            raise RuntimeError(f"rolling over {key} reordered the rows")
        added.extend(rolled.drop(key, TS).get_columns())
    return frame.with_columns(added)


def last_per_instant(key: str) -> pl.Expr:
    """True on the last row of each ``(key, TS)`` in a frame sorted by them."""
    import polars as pl

    later = (pl.col(key) != pl.col(key).shift(-1)) | (pl.col(TS) != pl.col(TS).shift(-1))
    return later.fill_null(True)


def before_instants(
    events: pl.DataFrame, instants: pl.DataFrame, key: str, aggregations: dict[int, list[pl.Expr]]
) -> pl.DataFrame:
    """At each ``(key, TS)`` of ``instants``, the aggregations over the key's ``events``
    with timestamps in ``[TS - w, TS)``: strictly before, so simultaneous events never see
    each other.

    A probe row is added at ``TS - 1 µs`` per instant, with nulls in every event column, and
    the windows are rolled over events and probes together: ``(TS - 1 µs - w, TS - 1 µs]``
    is ``[TS - w, TS)`` on integer microseconds. The aggregations must skip nulls (sums,
    counts of a column that is null on probes), so probes never count.

    Returns:
        One row per instant: ``key``, ``TS`` (the instant itself) and the aggregations.
    """
    import polars as pl

    probes = instants.select(key, (pl.col(TS) - 1).alias(TS), pl.lit(True).alias(PROBE))
    frame = pl.concat(
        [events.with_columns(pl.lit(False).alias(PROBE)), probes], how="diagonal_relaxed"
    ).sort(key, TS)
    rolled = trailing(frame, key, aggregations).filter(pl.col(PROBE))
    names = [e.meta.output_name() for exprs in aggregations.values() for e in exprs]
    return rolled.select(key, (pl.col(TS) + 1).alias(TS), *names)
