"""The served-feature log's buffer: one row per scored transaction, every column as long as
the others (a feature a new model brings starts with nulls), and a record's cost that
does not grow with what is already buffered."""

from __future__ import annotations

import asyncio
import tracemalloc
from datetime import UTC, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from inference_pipeline.feature_log import CONVERT_ROWS, FeatureLog, FeatureLogSettings, to_table
from inference_pipeline.online_features import OnlineFeatures
from inference_pipeline.schemas import Transaction

NEVER = {"FRAUD_FEATURE_LOG": True, "FRAUD_FEATURE_LOG_ROWS": 10**9}


def model(version: str, features: tuple[str, ...]) -> SimpleNamespace:
    """What ``record`` reads of a served model: its version and its service's features."""
    return SimpleNamespace(
        ref=SimpleNamespace(version=version), plan=SimpleNamespace(feature_names=features)
    )


def batch(first: int, rows: int, features: tuple[str, ...]) -> tuple[list, OnlineFeatures]:
    transactions = [
        Transaction(
            transaction_id=f"t{i}",
            card_id="c1",
            merchant_id="m1",
            amount=float(i),
            timestamp=datetime(2026, 12, 1, tzinfo=UTC),
        )
        for i in range(first, first + rows)
    ]
    values = {name: [float(i) for i in range(first, first + rows)] for name in features}
    return transactions, OnlineFeatures(values=values, event_times={})


def test_rows_line_up_and_a_new_feature_starts_with_nulls() -> None:
    async def scenario() -> dict:
        log = FeatureLog(FeatureLogSettings(**NEVER, FRAUD_FEATURE_LOG_SECONDS=3600))
        old, new = ("v__a",), ("v__a", "v__b")
        log.record(model("1", old), *batch(0, 2, old), np.array([0.1, 0.2]))
        log.record(model("2", new), *batch(2, 1, new), np.array([0.3]))
        log.record(model("1", old), *batch(3, 1, old), np.array([0.4]))
        return log._columns

    columns = asyncio.run(scenario())
    assert columns["transaction_id"] == ["t0", "t1", "t2", "t3"]
    assert columns["model_version"] == ["1", "1", "2", "1"]
    assert columns["fraud_probability"] == [0.1, 0.2, 0.3, 0.4]
    assert columns["v__a"] == [0.0, 1.0, 2.0, 3.0]
    assert columns["v__b"] == [None, None, 2.0, None]


def test_a_record_allocates_no_more_with_a_full_buffer() -> None:
    """The nulls of a new feature were once built on every call, for every feature, as
    long as the buffer: 50,000 buffered rows made each score allocate megabytes."""
    features = tuple(f"v__f{i}" for i in range(40))
    one = batch(0, 1, features)

    async def peak_of_one_record(buffered: int) -> int:
        log = FeatureLog(FeatureLogSettings(**NEVER, FRAUD_FEATURE_LOG_SECONDS=3600))
        log.record(model("1", features), *batch(0, buffered, features), np.zeros(buffered))
        # The columns grow by an eighth when full (once in thousands of records): past it.
        log.record(model("1", features), *one, np.zeros(1))
        tracemalloc.start()
        log.record(model("1", features), *one, np.zeros(1))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, full = asyncio.run(peak_of_one_record(10)), asyncio.run(peak_of_one_record(50_000))
    assert full < 64 * 1024, f"one record allocated {full:,} bytes with 50,000 rows buffered"
    assert full < 4 * small + 16 * 1024


def test_the_table_is_converted_slice_by_slice_as_whole() -> None:
    """Slices whose values are all null (Arrow's null type) promote to the column's type."""
    rows = 2 * CONVERT_ROWS + 7
    at = datetime(2026, 12, 1, tzinfo=UTC)
    columns = {
        "transaction_id": [f"t{i}" for i in range(rows)],
        "transaction_timestamp": [at] * rows,
        "count": [None] * CONVERT_ROWS + list(range(rows - CONVERT_ROWS)),
        "rate": [0.5] * CONVERT_ROWS + [None] * (rows - CONVERT_ROWS),
        "never": [None] * rows,
    }
    table = to_table(columns)
    assert table.equals(pa.table(columns))
    assert table.column("transaction_id").num_chunks == 3  # converted in slices
    assert to_table({}).num_columns == 0


def test_slices_arrow_cannot_unify_are_converted_whole() -> None:
    """Instants of two time zones in two slices: one conversion, as ``pa.table`` does."""
    paris = datetime(2026, 12, 1, 10, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    at = [datetime(2026, 12, 1, tzinfo=UTC)] * CONVERT_ROWS + [paris]
    assert to_table({"transaction_timestamp": at}).equals(pa.table({"transaction_timestamp": at}))
