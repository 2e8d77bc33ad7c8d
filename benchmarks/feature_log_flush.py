"""Benchmark: how long the scoring API's event loop stalls while the served-feature log
builds a flush's Arrow table in its writer thread, the whole buffer in one conversion
(``pyarrow.table``) against :func:`inference_pipeline.feature_log.to_table`'s slices.

The buffer is a minute of scores at 1,000 a second (``--rows``): the columns
``FeatureLog.record`` buffers, with 48 features (a tenth of the values missing). While a
thread converts it, the loop sleeps 0.5 ms at a time and records how late each wake-up
is: the delay a request arriving then would wait. Each way runs ``--repeats`` times,
alternating, with the buffer out of the garbage collector's sight; prints the
conversion's wall time and rows/s, the lag's p50/p99/max, the process's peak memory, and
ends with one JSON line.

    python -m benchmarks.feature_log_flush
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import typer

from inference_pipeline.feature_log import to_table

TICK_S = 0.0005


def buffer(rows: int, features: int = 48, seed: int = 3) -> dict[str, list[Any]]:
    """The columns ``FeatureLog.record`` buffers: ids, instant, model version, probability
    and the service's features (a third of them counts, the rest doubles; a tenth of the
    values missing)."""
    rng = random.Random(seed)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    columns: dict[str, list[Any]] = {
        "transaction_id": [f"t{i:08d}" for i in range(rows)],
        "card_id": [f"c{rng.randrange(100_000):07d}" for _ in range(rows)],
        "merchant_id": [f"m{rng.randrange(5_000):05d}" for _ in range(rows)],
        "transaction_timestamp": [at] * rows,
        "model_version": ["3"] * rows,
        "fraud_probability": [rng.random() for _ in range(rows)],
    }
    for i in range(features):
        value = (lambda: rng.randrange(100)) if i % 3 == 0 else rng.random
        columns[f"view__f{i}"] = [value() if rng.random() > 0.1 else None for _ in range(rows)]
    return columns


async def lag_during(convert: Callable[[dict[str, list[Any]]], Any], columns: dict) -> dict:
    """The conversion in a thread; the loop's wake-up delays meanwhile."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    done = loop.run_in_executor(None, convert, columns)
    lags = []
    while not done.done():
        tick = time.perf_counter()
        await asyncio.sleep(TICK_S)
        lags.append((time.perf_counter() - tick - TICK_S) * 1e3)
    await done
    seconds = time.perf_counter() - started
    rows = len(columns["transaction_id"])
    return {
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "wakeups": len(lags),
        "lag_p50_ms": round(float(np.percentile(lags, 50)), 2),
        "lag_p99_ms": round(float(np.percentile(lags, 99)), 2),
        "lag_max_ms": round(max(lags), 2),
    }


def main(
    rows: Annotated[int, typer.Option(min=1_000, help="Buffered rows.")] = 60_000,
    repeats: Annotated[int, typer.Option(min=1)] = 3,
) -> None:
    columns = buffer(rows)
    # Out of the collector's sight, so that the two conversions are compared alone: a full
    # collection traversing the buffer's three million references stalls the loop either
    # way (some 20 ms here). The API does not freeze its buffer: it pays those pauses too.
    gc.collect()
    gc.freeze()
    ways = {"whole": pa.table, "sliced": to_table}
    asyncio.run(lag_during(to_table, columns))  # warm-up: imports, the thread pool
    runs: dict[str, list[dict]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, convert in ways.items():
            runs[name].append(asyncio.run(lag_during(convert, columns)))
            print(f"{name:6s} {runs[name][-1]}", flush=True)
    worst = {name: max(r["lag_max_ms"] for r in results) for name, results in runs.items()}
    figures = {
        "rows": rows,
        "columns": len(columns),
        "runs": runs,
        "worst_lag_ms": worst,
        "worst_lag_ratio_whole_to_sliced": round(worst["whole"] / worst["sliced"], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(
        f"worst loop stall: whole {worst['whole']} ms, sliced {worst['sliced']} ms "
        f"({figures['worst_lag_ratio_whole_to_sliced']}x)"
    )
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    typer.run(main)
