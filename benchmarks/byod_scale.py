"""Benchmark: ingest and features of one window of a large external source.

A mapped source of ROWS transactions over DAYS days (default 2M over six months,
``benchmarks.external_source``) is written twice: one pandas Parquet file (nanosecond
timestamps, row groups of 100k rows, sorted by time as exports usually are) and a folder
partitioned by day (``TX_DATE=yyyy-mm-dd``). After an unmeasured warm-up (the JVM's first
jobs are slow), the feature pipeline ingests and computes the last WINDOW days:

- ``partitions``: the folder with ``prune_by: TX_DATE`` (Spark lists only the window's
  folders): a source that holds only the window, the peer the others are compared with;
- ``row_groups``: the file with ``prune_by: TX_DATETIME`` (Parquet statistics skip the row
  groups outside the window);
- ``whole_file``: the file without ``prune_by`` (every row read, classified and counted);
- ``row_groups_wide``: the file with ``prune_by`` over a window WIDE times as long, so that
  the cost of a window row can be told apart from the fixed cost of a run.

Prints per run and step the seconds, rows read, rows read per second of ingest and the
peak memory of the driver, the JVM and its Python workers; the sizes; the ratio of
pruned to unpruned; the last line is one JSON object.

    make bench-byod                                   # 2M rows, 180 days, a 7-day window
    python -m benchmarks.byod_scale --rows 200000 --days 60 --window 7
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from benchmarks import external_source as ext

console = Console(stderr=True)
app = typer.Typer(add_completion=False)


def _write(frame: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """The source as one file and as a folder of day partitions."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    file = folder / "transactions.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), file, row_group_size=100_000)
    days = frame.assign(TX_DATE=frame["TX_DATETIME"].dt.strftime("%Y-%m-%d"))
    ds.write_dataset(
        pa.Table.from_pandas(days, preserve_index=False),
        folder / "by_day",
        format="parquet",
        partitioning=["TX_DATE"],
        partitioning_flavor="hive",
    )
    return {"file": file, "folder": folder / "by_day"}


def _mapping(folder: Path, name: str, path: Path, prune_by: str | None) -> Path:
    body = ext.mapping(path, {"format": "parquet"})
    if prune_by:
        body["prune_by"] = prune_by
    target = folder / f"{name}.json"
    target.write_text(json.dumps(body))
    return target


def _size(path: Path) -> int:
    return (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*.parquet"))
    )


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants (the JVM and the Python workers it forks)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def _reset_peaks(pids: list[int]) -> None:
    """Reset the kernel's peak resident size of each process (``clear_refs`` 5)."""
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            continue


def _peak_mb(pids: list[int]) -> dict[str, float]:
    """Peak resident MB since the last reset: the JVM, and its Python workers summed."""
    peaks = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kb = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")), 0
        )
        peaks.append(kb / 1024)
    return {"jvm": round(peaks[0]) if peaks else 0, "python_workers": round(sum(peaks[1:]))}


def _run(spark: Any, mapping: Path, first: date, last: date) -> dict[str, Any]:
    """Ingest and compute ``[first, last]`` from ``mapping`` under a fresh S3 prefix
    (removed afterwards)."""
    from feature_pipeline import pipeline
    from fraud_platform.s3 import delete_prefix
    from fraud_platform.settings import S3Settings

    jvm = spark.sparkContext._gateway.proc.pid
    _reset_peaks(_process_tree(jvm))
    os.environ["FRAUD_S3_PREFIX"] = f"bench-byod/{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    ingested = pipeline.ingest(first, last, source=mapping, spark=spark)["feeds"]
    ingest_s = time.perf_counter() - started
    computed = pipeline.compute(first, last, spark=spark)
    total_s = time.perf_counter() - started
    s3 = S3Settings()
    delete_prefix(s3.key() + "/", s3)
    read = ingested["transactions"]["read"]
    return {
        "days": (last - first).days + 1,
        "read": read,
        "bronze": ingested["transactions"]["bronze"],
        "ingest_s": round(ingest_s, 1),
        "features_s": round(total_s - ingest_s, 1),
        "total_s": round(total_s, 1),
        "read_rows_per_ingest_s": round(read / ingest_s),
        "feature_rows": computed["rows"]["card_transaction_features"],
        "peak_mb": _peak_mb(_process_tree(jvm)),
    }


def _summary(results: dict[str, dict[str, Any]], rows: int) -> dict[str, Any]:
    """What the runs say: pruned against unpruned and against a window-only source, the
    wide window against the narrow one, and what each row outside the window costs to
    read when nothing is pruned."""
    narrow, wide = results["row_groups"], results["row_groups_wide"]
    whole = results["whole_file"]
    return {
        "pruned_over_unpruned": {
            "total": round(narrow["total_s"] / whole["total_s"], 2),
            "ingest": round(narrow["ingest_s"] / whole["ingest_s"], 2),
        },
        "pruned_over_window_only": round(narrow["total_s"] / results["partitions"]["total_s"], 2),
        "wide_over_narrow": {
            "window_rows": round(wide["bronze"] / narrow["bronze"], 2),
            "seconds": round(wide["total_s"] / narrow["total_s"], 2),
        },
        "unpruned_extra_ingest_s_per_1m_rows_outside": round(
            1e6 * (whole["ingest_s"] - narrow["ingest_s"]) / (rows - narrow["read"]), 1
        ),
    }


@app.command()
def results_table(results: dict[str, dict], title: str) -> Table:
    """One row per run: rows read and kept, seconds per step, read rate and peak memory."""
    table = Table(title=title)
    columns = (
        "run",
        "days",
        "rows read",
        "window rows",
        "ingest s",
        "features s",
        "total s",
        "read rows/s ingest",
        "JVM MB",
        "workers MB",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(
            name,
            str(r["days"]),
            f"{r['read']:,}",
            f"{r['bronze']:,}",
            str(r["ingest_s"]),
            str(r["features_s"]),
            str(r["total_s"]),
            f"{r['read_rows_per_ingest_s']:,}",
            str(r["peak_mb"]["jvm"]),
            str(r["peak_mb"]["python_workers"]),
        )
    return table


def main(
    rows: Annotated[int, typer.Option(min=10_000, help="Transactions in the source.")] = 2_000_000,
    days: Annotated[int, typer.Option(min=14, help="Days the source spans.")] = 180,
    window: Annotated[int, typer.Option(min=1, help="Days ingested and computed.")] = 7,
    wide: Annotated[int, typer.Option(min=2, help="The wide window, in windows.")] = 4,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"])] = datetime(2026, 1, 1),
) -> None:
    """Ingest + features of the last WINDOW days of a large source, four ways."""
    from fraud_platform.spark import build_spark_session

    if window * wide > days:
        raise typer.BadParameter(f"the wide window ({window * wide} days) exceeds --days {days}")
    first_day = start.date()
    last = first_day + timedelta(days=days - 1)
    first = last - timedelta(days=window - 1)
    began = time.perf_counter()
    frame = ext.simulate(rows, days, first_day)
    console.print(f"simulated {rows:,} rows over {days} days in {time.perf_counter() - began:.1f}s")
    spark = build_spark_session("bench-byod")
    with tempfile.TemporaryDirectory(prefix="bench-byod-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        paths = _write(frame, folder)
        console.print(f"wrote the file and the folder in {time.perf_counter() - began:.1f}s")
        del frame
        sizes = {name: _size(path) for name, path in paths.items()}
        by_day = _mapping(folder, "partitions", paths["folder"], "TX_DATE")
        pruned = _mapping(folder, "row_groups", paths["file"], "TX_DATETIME")
        plans = {
            "partitions": (by_day, first),
            "row_groups": (pruned, first),
            "whole_file": (_mapping(folder, "whole_file", paths["file"], None), first),
            "row_groups_wide": (pruned, last - timedelta(days=window * wide - 1)),
        }
        warmup = _run(spark, by_day, last, last)
        console.print(f"warm-up (1 day, not compared): {warmup['total_s']}s")
        results = {}
        for name, (mapping, since) in plans.items():
            results[name] = _run(spark, mapping, since, last)
            console.print(f"{name}: {json.dumps(results[name])}")
    spark.stop()
    console.print(results_table(results, f"{rows:,} rows over {days} days; window {first}..{last}"))
    header = {"rows": rows, "days": days, "window_days": window}
    report(header, (first, last), results, warmup, sizes)


def report(
    header: dict[str, int],
    window: tuple[date, date],
    results: dict[str, dict],
    warmup: dict,
    sizes: dict[str, int],
) -> None:
    """The sizes and ratios, then the whole result as one JSON line."""
    summary = _summary(results, header["rows"])
    driver_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(
        f"sizes: file {sizes['file'] / 1e6:.1f} MB, folder {sizes['folder'] / 1e6:.1f} MB; "
        f"driver peak {driver_mb:.0f} MB (the simulated frame included)"
    )
    console.print(summary)
    result = {
        **header,
        "window": [day.isoformat() for day in window],
        "runs": results,
        "warmup": warmup,
        "summary": summary,
        "bytes": sizes,
        "driver_peak_mb": round(driver_mb),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    app()
