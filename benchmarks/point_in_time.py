"""Benchmark: point-in-time joins at the 10M-transaction scale, checked row by row.

1. **Feature tables** of a month of 10M transactions, written straight to S3 in the
   silver layout and schema (``silver/<table>/event_date=<day>/part-00000.parquet``) by
   the generator below: one card row and one merchant row per transaction instant, one
   profile row per card, 166,667 cards and 8,333 merchants as the feature-pipeline
   benchmark draws them. Running the Spark pipeline at 10M takes about ten minutes of both
   cores, so the tables are generated; values are random (the join does not read them,
   the check compares them). 0.1% of the rows are written twice at the same event time,
   half with a later ``created``, half with the same one (full ties, the second copy's
   values differing), so the tie rule is exercised. Kept under ``bench-pit/`` and reused
   by later runs with the same parameters.
2. **Entity rows**: ``--rows`` transactions drawn from the last three weeks, through
   ``fraud_platform.point_in_time.historical_features`` (what training and batch scoring
   call) on the project's offline store, in a child process so that its peak RSS is the
   join's own.
3. **Reference**: Polars ``join_asof`` per view (``tolerance`` = the TTL), after keeping
   one row per key and event time by the documented tie rule; every stored feature of
   every row is compared (the on-demand features are Feast's transform of those values).
4. **Peer**: Feast's ``file`` offline store (Dask) on ``--file-rows`` of the same entity
   rows, one ``get_historical_features`` call, with a time limit.

    make bench-pit                                  # 1M rows (PIT_FILE_ROWS: file store)
    python -m benchmarks.point_in_time --rows 100000 --file-rows 10000

The last line is one JSON object: ``rows_in``, ``rows_out``, ``mismatches``, ``seconds``,
``peak_rss_gb`` of the project's store, and the rest of the figures. The data are
``benchmarks.point_in_time_tables``, the reference ``benchmarks.point_in_time_reference``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from benchmarks.point_in_time_reference import mismatches, reference
from benchmarks.point_in_time_tables import console, entity_transactions, generate

app = typer.Typer(add_completion=False, no_args_is_help=False)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".local" / "bench-pit"
SERVICE = "fraud_detection_v1"


def prefix(transactions: int, seed: int) -> str:
    """The S3 prefix of the tables of these parameters, reused by later runs."""
    return f"bench-pit/{transactions}-seed{seed}"


@app.command(hidden=True)
def join(store: str, rows: int, take: int, transactions: int, seed: int, out: Path) -> None:
    """Child process: one join of ``take`` of the ``rows`` entity rows (evenly spread),
    its result to ``out`` and its figures as JSON on stdout."""
    from fraud_platform import point_in_time
    from fraud_platform.feast_repo import open_store

    frame = entity_transactions(rows, transactions, seed)
    if take < rows:
        frame = frame.iloc[np.linspace(0, rows - 1, take).astype(int)]
    feast_store = open_store()
    started = time.perf_counter()
    if store == "asof":
        result = point_in_time.historical_features(feast_store, frame, SERVICE).frame
    else:  # Feast's file store as it is: one call, no rows filled back
        entity = point_in_time.entity_frame(frame)
        result = feast_store.get_historical_features(
            entity_df=entity,
            features=feast_store.get_feature_service(SERVICE),
            full_feature_names=True,
        ).to_df()
    seconds = time.perf_counter() - started
    result.to_parquet(out)
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "rows_out": len(result),
                "peak_rss_gb": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2
                ),
            }
        )
    )


def _child(
    store: str,
    rows: int,
    take: int,
    transactions: int,
    seed: int,
    env: dict[str, str],
    timeout: float,
) -> tuple[dict[str, Any] | None, Path]:
    """One join in a child process (its peak RSS is the join's own): its figures, or None
    if it ran out of ``timeout``, and the Parquet file of its result."""
    out = WORK / f"{store}-{take}.parquet"
    out.unlink(missing_ok=True)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.point_in_time",
                "join",
                store,
                str(rows),
                str(take),
                str(transactions),
                str(seed),
                str(out),
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None, out
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"the {store} join failed:\n{error.stderr[-3000:]}") from error
    return json.loads(done.stdout.strip().splitlines()[-1]), out


def _file_repo() -> Path:
    """A copy of the Feast repo whose offline store is Feast's ``file`` store."""
    import re

    repo = WORK / "file-repo"
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(
        ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("__pycache__", "data")
    )
    config = repo / "feature_store.yaml"
    config.write_text(
        re.sub(r"offline_store:\n(  .*\n)+", "offline_store:\n  type: file\n", config.read_text())
    )
    return repo


@app.command()
def run(
    rows: Annotated[
        int, typer.Option(help="Entity rows joined by the project's store.")
    ] = 1_000_000,
    file_rows: Annotated[
        int, typer.Option(help="Entity rows for Feast's file store (0: skip it).")
    ] = 100_000,
    file_timeout: Annotated[int, typer.Option(help="Seconds the file store may take.")] = 900,
    transactions: Annotated[
        int, typer.Option(help="Transactions the tables describe.")
    ] = 10_000_000,
    seed: int = 7,
) -> None:
    """Generate (or reuse) the tables, join, check against the reference, compare."""
    from feature_pipeline.feature_store import apply_definitions

    WORK.mkdir(parents=True, exist_ok=True)
    os.environ["FRAUD_S3_PREFIX"] = prefix(transactions, seed)
    os.environ["FEAST_REGISTRY_PATH"] = f"sqlite:///{WORK / 'registry.db'}"
    os.environ.pop("FEAST_REPO_PATH", None)
    with console.status("feature tables (generated once, then reused)"):
        tables = generate(transactions, seed)
    apply_definitions()
    figures: dict[str, Any] = {
        "tables": tables,
        "cores": os.cpu_count(),
        "load_1m": round(os.getloadavg()[0], 2),
    }
    with console.status(f"project store (DuckDB ASOF): {rows:,} entity rows"):
        ours, out = _child("asof", rows, rows, transactions, seed, dict(os.environ), 3_600)
    result = pd.read_parquet(out)
    with console.status("Polars join_asof reference"):
        started = time.perf_counter()
        entity = entity_transactions(rows, transactions, seed)
        entity["event_timestamp"] = entity["transaction_timestamp"] - timedelta(microseconds=1)
        expected = reference(entity)
        figures["reference_s"] = round(time.perf_counter() - started, 2)
    bad, per_feature = mismatches(result, expected)
    lost = rows - int(result["transaction_id"].isin(entity["transaction_id"]).sum())
    figures["asof"] = {
        "rows_in": rows,
        **ours,
        "lost": lost,
        "mismatches": bad,
        "mismatches_per_feature": per_feature,
        "features_compared": len([c for c in expected if "__" in c]),
        "rows_per_s": round(rows / ours["seconds"]),
    }
    if file_rows:
        _file_store(figures, rows, file_rows, file_timeout, transactions, seed, expected)
    _print(figures)
    headline = ("rows_in", "rows_out", "lost", "mismatches", "seconds", "peak_rss_gb", "rows_per_s")
    print(json.dumps({key: figures["asof"][key] for key in headline} | {"figures": figures}))


def _file_store(
    figures: dict[str, Any],
    rows: int,
    file_rows: int,
    file_timeout: int,
    transactions: int,
    seed: int,
    expected: pd.DataFrame,
) -> None:
    """Feast's file store on ``file_rows`` of the entity rows, checked against the
    reference; its figures (or its time-out) into ``figures``."""
    env = {**os.environ, "FEAST_REPO_PATH": str(_file_repo())}
    with console.status(f"Feast file store (Dask): {file_rows:,} entity rows"):
        theirs, out = _child("file", rows, file_rows, transactions, seed, env, file_timeout)
    if theirs is None:
        figures["file"] = {"rows_in": file_rows, "timed_out_s": file_timeout}
        return
    got = pd.read_parquet(out)
    bad_file, _ = mismatches(got, expected)
    figures["file"] = {
        "rows_in": file_rows,
        **theirs,
        "lost": file_rows - got["transaction_id"].nunique(),
        "mismatches": bad_file,
        "rows_per_s": round(file_rows / theirs["seconds"]),
    }
    figures["asof_vs_file_rows_per_s"] = round(
        figures["asof"]["rows_per_s"] / figures["file"]["rows_per_s"], 1
    )


def _print(figures: dict[str, Any]) -> None:
    """Rows, mismatches, time and memory of each store, as a table."""
    table = Table(
        "store", "rows in", "rows out", "lost", "mismatches", "seconds", "rows/s", "peak RSS GB"
    )
    for name in ("asof", "file"):
        f = figures.get(name)
        if f is None:
            continue
        if "timed_out_s" in f:
            table.add_row(
                name, f"{f['rows_in']:,}", "-", "-", "-", f"> {f['timed_out_s']}", "-", "-"
            )
            continue
        table.add_row(
            name,
            f"{f['rows_in']:,}",
            f"{f['rows_out']:,}",
            str(f["lost"]),
            str(f["mismatches"]),
            f"{f['seconds']:.1f}",
            f"{f['rows_per_s']:,}",
            f"{f['peak_rss_gb']:.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    app()
