"""Trailing time windows shared by the feature tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, WindowSpec

MICROS = 1_000_000


def micros(column: str = "event_timestamp") -> Column:
    """A timestamp as microseconds since the epoch: an exact ordering key for range frames."""
    from pyspark.sql import functions as F

    return F.unix_micros(F.col(column))


def trailing(partition: str, seconds: int, order: str = "_ts_us") -> WindowSpec:
    """Rows of the same ``partition`` with timestamps in ``(t - seconds, t]``.

    The frame is inclusive at t: every event at the same instant belongs to it (ties count
    together), and exclusive at ``t - seconds``.
    """
    from pyspark.sql import Window

    return (
        Window.partitionBy(partition)
        .orderBy(order)
        .rangeBetween(-(seconds * MICROS - 1), Window.currentRow)
    )

