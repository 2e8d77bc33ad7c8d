"""Benchmark: build the point-in-time training set for N labelled transactions, then train.

Reads the labelled transactions of a window from bronze (the data must already be there,
with its feature tables and ``feast apply`` done for the environment; see the README),
joins the feature service ``fraud_detection_v1`` with ``get_historical_features`` exactly
as the training pipeline does (entity rows 1 µs before each transaction, every row kept),
then trains the XGBoost model on it (80% fit, the last 20% by time for early stopping).
When the window holds fewer labelled transactions than ``--rows``, rows are drawn again
with replacement, each copy moved by a random offset of up to an hour, so the join has
``--rows`` distinct entity rows over the same feature tables; ``resampled`` says so.

    python benchmarks/training_set.py --rows 100000 --start 2026-09-10 --end 2026-10-08

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)


def resample(labelled: pd.DataFrame, rows: int, seed: int = 7) -> pd.DataFrame:
    """``rows`` labelled rows: all of them, then copies moved by up to an hour."""
    if rows <= len(labelled):
        return (
            labelled.sample(n=rows, random_state=seed)
            .sort_values("transaction_timestamp", kind="mergesort")
            .reset_index(drop=True)
        )
    rng = np.random.default_rng(seed)
    extra = labelled.iloc[rng.integers(0, len(labelled), rows - len(labelled))].copy()
    offset = pd.to_timedelta(rng.integers(-3_600, 3_600, len(extra)), unit="s")
    extra["transaction_timestamp"] = extra["transaction_timestamp"] + offset
    extra["transaction_id"] = [f"{tid}#{i}" for i, tid in enumerate(extra["transaction_id"])]
    return (
        pd.concat([labelled, extra], ignore_index=True)
        .sort_values("transaction_timestamp", kind="mergesort")
        .reset_index(drop=True)
    )


def main(
    rows: Annotated[
        int, typer.Option(help="Labelled transactions in the training set.")
    ] = 1_000_000,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"])] = datetime(2026, 9, 3),
    end: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="Last day, included.")
    ] = datetime(2026, 10, 8),
    train_model: Annotated[bool, typer.Option("--train/--no-train")] = True,
) -> None:
    logging.basicConfig(level=logging.WARNING)
    from fraud_platform.feast_repo import open_store
    from training_pipeline import dataset
    from training_pipeline.settings import TrainingSettings

    window = (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC) + timedelta(days=1))
    figures: dict[str, Any] = {
        "rows": rows,
        "window": [w.isoformat() for w in window],
        "cores": os.cpu_count(),
        "feature_service": TrainingSettings().feature_service,
    }
    seconds: dict[str, float] = {}
    with console.status("reading labelled transactions from bronze"):
        t = time.perf_counter()
        labelled = dataset.labelled_transactions(*window, labels_known_at=None)
        seconds["read_bronze"] = time.perf_counter() - t
    if labelled.empty:
        raise typer.BadParameter(
            f"no labelled transactions in bronze from {start:%Y-%m-%d} to {end:%Y-%m-%d}: "
            "ingest those days first (make demo, make bench-features), or pass the days "
            "that were with --start and --end"
        )
    figures["labelled_in_window"] = len(labelled)
    figures["resampled"] = rows > len(labelled)
    labelled = resample(labelled, rows)
    store = open_store()
    with console.status(f"point-in-time join of {rows:,} rows (get_historical_features)"):
        t = time.perf_counter()
        training_set = dataset.historical_features(store, labelled)
        seconds["training_set"] = time.perf_counter() - t
    frame = training_set.frame
    figures["counts"] = training_set.counts
    figures["features"] = len(training_set.features)
    fit_rows = train_on(frame, training_set.features, figures, seconds) if train_model else 0
    figures["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    figures["rows_per_s"] = {
        "training_set": round(rows / seconds["training_set"]),
        **({"train": round(fit_rows / seconds["train"])} if train_model else {}),
    }
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    report(figures)
    print(json.dumps(figures))


def train_on(
    frame: pd.DataFrame,
    service_features: list[str],
    figures: dict[str, Any],
    seconds: dict[str, float],
) -> int:
    """Train XGBoost on the set's first 80% by time (the rest for early stopping), timed
    into ``seconds``, its figures into ``figures``; the rows it fitted on."""
    from training_pipeline import train

    features = train.model_features(service_features)
    cut = frame["transaction_timestamp"].quantile(0.8)
    fit = frame[frame["transaction_timestamp"] < cut]
    validation = frame[frame["transaction_timestamp"] >= cut]
    with console.status(f"training XGBoost on {len(fit):,} rows"):
        t = time.perf_counter()
        _, info = train.train_xgboost(fit, validation, features)
        seconds["train"] = time.perf_counter() - t
    figures["training"] = {
        k: info[k] for k in ("trees", "train_rows", "train_frauds", "best_validation_aucpr")
    }
    return len(fit)


def report(figures: dict[str, Any]) -> None:
    """Seconds and rows/s per stage, as a table."""
    table = Table("stage", "seconds", "rows/s")
    for stage, value in figures["seconds"].items():
        rate = figures["rows_per_s"].get(stage)
        table.add_row(stage, f"{value:,.1f}", f"{rate:,}" if rate else "-")
    Console().print(table)


if __name__ == "__main__":
    typer.run(main)
