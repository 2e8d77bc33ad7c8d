"""The Polars window kernels on their own, without Spark: bounds, ties, entities, partitions."""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from feature_pipeline.features.windows import (
    MICROS,
    TS,
    before_instants,
    last_per_instant,
    run_partition,
    trailing,
)


def events() -> pl.DataFrame:
    seconds = [0, 60, 60, 120, 0, 30]
    return pl.DataFrame(
        {
            "card": ["a", "a", "a", "a", "b", "b"],
            TS: [s * MICROS for s in seconds],
            "amount": [1.0, 10.0, 100.0, 1000.0, 5.0, 7.0],
        }
    ).sort("card", TS)


def sums(frame: pl.DataFrame, seconds: int) -> list[float]:
    rolled = trailing(frame, "card", {seconds: [pl.col("amount").sum().alias("total")]})
    return rolled["total"].to_list()


def test_window_is_open_at_its_start_and_closed_at_t() -> None:
    # (t - 60 s, t]: the events exactly 60 s before are out, every event at t is in.
    assert sums(events(), 60) == [1.0, 110.0, 110.0, 1000.0, 5.0, 12.0]


def test_before_an_instant_is_closed_at_its_start_and_open_at_t() -> None:
    # [t - 60 s, t): at 60 s, the event at 0 s is in and both events at 60 s are out.
    frame = events()
    rows = before_instants(
        frame,
        frame.select("card", TS).unique(),
        "card",
        {60: [pl.col("amount").sum().alias("total")]},
    ).sort("card", TS)
    assert rows.rows() == [
        ("a", 0, 0.0),
        ("a", 60 * MICROS, 1.0),
        ("a", 120 * MICROS, 110.0),
        ("b", 0, 0.0),
        ("b", 30 * MICROS, 5.0),
    ]


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


def brute_force_sums(frame: pl.DataFrame, seconds: int) -> list[float]:
    """Each row's window sum by direct enumeration: (t - w, t] over the same entity."""
    rows = frame.rows(named=True)
    return [
        sum(
            o["amount"]
            for o in rows
            if o["card"] == r["card"] and r[TS] - seconds * MICROS < o[TS] <= r[TS]
        )
        for r in rows
    ]


def test_windows_do_not_depend_on_the_order_polars_returns_groups() -> None:
    # Numbers as text ("1" < "10" < "2" as strings: Polars' rolling returns them "1", "2",
    # "10"), UUIDs, mixed lengths, non-ASCII: the aggregates stay on their own rows.
    ids = [
        "1",
        "10",
        "2",
        "100",
        "550e8400-e29b-41d4-a716-446655440000",
        "Z",
        "a",
        "ab",
        "é",
        "日本",
        "carte-é",
        "",
    ]
    frame = pl.DataFrame(
        {
            "card": [card for card in ids for _ in range(3)],
            TS: [s * MICROS for _ in ids for s in (0, 30, 30)],
            "amount": [float(i) for i in range(3 * len(ids))],
        }
    ).sort("card", TS)
    assert sums(frame, 60) == brute_force_sums(frame, 60)
