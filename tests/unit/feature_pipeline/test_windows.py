"""The Polars window kernels on their own, without Spark: bounds, ties, entities, partitions."""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from feature_pipeline.features.windows import MICROS, TS, last_per_instant, run_partition, trailing


def events() -> pl.DataFrame:
    seconds = [0, 60, 60, 120, 0, 30]
    return pl.DataFrame({
        "card": ["a", "a", "a", "a", "b", "b"],
        TS: [s * MICROS for s in seconds],
        "amount": [1.0, 10.0, 100.0, 1000.0, 5.0, 7.0],
    }).sort("card", TS)


def sums(frame: pl.DataFrame, seconds: int) -> list[float]:
    rolled = trailing(frame, "card", {seconds: [pl.col("amount").sum().alias("total")]})
    return rolled["total"].to_list()


def test_window_is_open_at_its_start_and_closed_at_t() -> None:
    # (t - 60 s, t]: the events exactly 60 s before are out, every event at t is in.
    assert sums(events(), 60) == [1.0, 110.0, 110.0, 1000.0, 5.0, 12.0]


def test_windows_never_cross_entities() -> None:
    # Card b's first event at 0 s sees nothing of card a's events at 0 s.
    assert sums(events(), 3600)[4] == 5.0


def test_one_row_per_instant_keeps_the_last() -> None:
    frame = events().with_columns(pl.Series("n", range(6)))
    assert frame.filter(last_per_instant("card"))["n"].to_list() == [0, 2, 3, 4, 5]


def test_a_partition_keeps_the_run_rows_half_open_in_its_schema() -> None:
    schema = pa.schema([("card", pa.string()), (TS, pa.int64())])
    assert list(run_partition(iter([]), lambda f: f, schema, 0, 60 * MICROS)) == []
    batches = events().to_arrow().to_batches()
    out = pa.Table.from_batches(
        list(run_partition(iter(batches), lambda f: f, schema, 0, 60 * MICROS))
    )
    assert out.schema == schema
    assert out[TS].to_pylist() == [0, 0, 30 * MICROS]
