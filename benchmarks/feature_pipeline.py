"""Benchmark: landing -> bronze -> feature tables, with a single-node reference in Polars.

Generates N transactions (default 1M) into landing/ on the configured S3 store, runs the
feature pipeline (ingest with quarantine and gates, compute with gates) with Spark, then
computes the same per-card windows with Polars' rolling aggregations from the bronze table
and cross-checks a sample of values. Prints rows/s per stage and in total; the last line
is one JSON object with every figure.

    make bench-features                      # 1M transactions
    python -m benchmarks.feature_pipeline --rows 10000000

Needs the local stack's environment (``make up``; the Makefile target sources it).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from datetime import date, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fraud_platform.windows import CARD_WINDOWS as WINDOWS

console = Console(stderr=True)


def polars_card_windows(s3_uri: str, storage_options: dict[str, str]) -> tuple[Any, float]:
    """The card window statistics before every bronze transaction, with Polars.

    ``rolling(period, closed="left")`` at a transaction's instant ``t`` is the window
    ``[t - period, t)``, and the row is keyed at ``t - 1 µs``: the same definition and
    placement as the Spark feature table (docs/features.md, "One semantics").
    """
    import polars as pl

    started = time.perf_counter()
    frame = (
        pl.scan_parquet(
            f"{s3_uri}/**/*.parquet", storage_options=storage_options, hive_partitioning=True
        )
        .select("card_id", "event_timestamp", "amount")
        .sort("card_id", "event_timestamp")
        .collect()
    )
    aggregates = []
    for name, seconds in WINDOWS.items():
        rolled = frame.rolling(
            index_column="event_timestamp", period=f"{seconds}s", closed="left", group_by="card_id"
        ).agg(
            pl.len().alias(f"txn_count_{name}"),
            pl.col("amount").sum().round(2).alias(f"amount_sum_{name}"),
            pl.col("amount").max().alias(f"amount_max_{name}"),
        )
        aggregates.append(rolled.unique(["card_id", "event_timestamp"], keep="first"))
    result = aggregates[0]
    for extra in aggregates[1:]:
        result = result.join(extra, on=["card_id", "event_timestamp"])
    result = result.with_columns(pl.col("event_timestamp") - pl.duration(microseconds=1))
    return result, time.perf_counter() - started


def stage_seconds(ingested: dict[str, Any], computed: dict[str, Any]) -> dict[str, float]:
    """Where the Spark time went, from the runs' own metadata: seconds per ingested feed,
    for the compute step, and per Great Expectations gate (part of those)."""
    seconds = {f"ingest.{name}": feed["duration_s"] for name, feed in ingested["feeds"].items()}
    seconds["compute"] = computed["duration_s"]
    for step in (ingested["feeds"].values(), [computed]):
        for metadata in step:
            for output in metadata["outputs"].values():
                report = output.get("validation") if isinstance(output, dict) else None
                if report:
                    seconds[f"gate.{report['gate']}"] = report["duration_s"]
    return seconds


def main(
    rows: Annotated[int, typer.Option(help="Transactions to generate.")] = 1_000_000,
    days: Annotated[int, typer.Option(help="Days they span.")] = 30,
    keep: Annotated[bool, typer.Option(help="Keep the benchmark's S3 prefix.")] = False,
) -> None:
    logging.basicConfig(level=logging.WARNING)
    os.environ["FRAUD_S3_PREFIX"] = f"bench/features-{uuid.uuid4().hex[:8]}"
    from fraud_platform.settings import S3Settings

    s3 = S3Settings()
    start = date(2026, 1, 1)
    cards = max(1_000, rows // (days * 2))
    figures: dict[str, Any] = {"rows": rows, "days": days, "cards": cards, "cores": os.cpu_count()}
    timings: dict[str, float] = {}
    try:
        spark, runs = run_pipeline(start, days, rows, cards, s3, timings)
        with console.status("Polars reference: the same card windows on one node"):
            reference, timings["polars_card_windows"] = polars_card_windows(
                s3.uri("bronze", "transactions"), polars_options(s3)
            )
        merged_rows, mismatches = crosscheck(spark, s3, reference)
        console.print(f"timings so far: { {k: round(v, 1) for k, v in timings.items()} }")
        figures.update(throughput(rows, timings, runs))
        figures.update(
            {
                "crosscheck_rows": merged_rows,
                "crosscheck_mismatches": mismatches,
                "generated_fraud_rate": runs["generated"]["fraud"]["rate"],
            }
        )
    finally:
        if keep:
            console.print(f"kept: FRAUD_S3_PREFIX={os.environ['FRAUD_S3_PREFIX']}")
        else:
            from fraud_platform.s3 import delete_prefix

            delete_prefix(s3.key() + "/", s3)
    report(figures)
    print(json.dumps(figures))


def run_pipeline(
    start: date, days: int, rows: int, cards: int, s3: Any, timings: dict[str, float]
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Generate into landing, ingest to bronze and compute the feature tables, each timed
    into ``timings``; the Spark session and each run's metadata (``generated``,
    ``ingested``, ``computed``)."""
    from feature_pipeline import pipeline
    from fraud_platform.spark import build_spark_session

    end = start + timedelta(days=days - 1)
    with console.status(f"generating {rows:,} transactions into landing/"):
        t = time.perf_counter()
        generated = pipeline.generate(
            start, days, n_cards=cards, n_merchants=max(200, cards // 20), n_transactions=rows
        )
        timings["generate"] = time.perf_counter() - t
    spark = build_spark_session("bench-features")
    with console.status("ingesting landing -> bronze (quarantine, dedup, GX gates)"):
        t = time.perf_counter()
        ingested = pipeline.ingest(start, end, spark=spark, s3=s3)
        timings["ingest"] = time.perf_counter() - t
    with console.status("computing feature tables (GX gates)"):
        t = time.perf_counter()
        computed = pipeline.compute(start, end, spark=spark, s3=s3)
        timings["compute"] = time.perf_counter() - t
    return spark, {"generated": generated, "ingested": ingested, "computed": computed}


def polars_options(s3: Any) -> dict[str, str]:
    """Polars' S3 options from the project's S3 settings."""
    return {
        "aws_endpoint_url": s3.endpoint_url or "",
        "aws_access_key_id": s3.access_key_id or "",
        "aws_secret_access_key": (
            s3.secret_access_key.get_secret_value() if s3.secret_access_key else ""
        ),
        "aws_region": s3.region,
        "aws_allow_http": "true",
    }


def crosscheck(spark: Any, s3: Any, reference: Any) -> tuple[int, int]:
    """Spark's feature rows against Polars' for a sample of instants: rows compared and
    values that differ (by more than a cent)."""
    sample = reference.sample(n=min(2_000, reference.height), seed=1)
    spark_rows = (
        spark.read.parquet(s3.s3a_uri("silver", "card_transaction_features"))
        .select(
            "card_id",
            "event_timestamp",
            *[f"txn_count_{w}" for w in WINDOWS],
            *[f"amount_sum_{w}" for w in WINDOWS],
        )
        .join(
            spark.createDataFrame(sample.select("card_id", "event_timestamp").to_arrow()),
            ["card_id", "event_timestamp"],
        )
        .toPandas()
    )
    reference_rows = sample.to_pandas()
    for frame in (spark_rows, reference_rows):
        # Spark hands back naive UTC, Polars aware UTC: compare as naive UTC microseconds.
        stamps = frame["event_timestamp"]
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        frame["event_timestamp"] = stamps.astype("datetime64[us]")
    merged = spark_rows.merge(
        reference_rows, on=["card_id", "event_timestamp"], suffixes=("_spark", "_polars")
    )
    if len(merged) != len(reference_rows):
        raise RuntimeError(
            f"the crosscheck found {len(merged)} of its {len(reference_rows)} sampled "
            "(card, instant) rows in Spark's table: the two sides key their rows differently"
        )
    mismatches = sum(
        int((merged[f"{c}_{w}_spark"] - merged[f"{c}_{w}_polars"]).abs().gt(0.011).sum())
        for w in WINDOWS
        for c in ("txn_count", "amount_sum")
    )
    return len(merged), mismatches


def throughput(
    rows: int, timings: dict[str, float], runs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Rows, seconds and rows/s per stage, and Spark against Polars on the card windows."""
    ingested, computed = runs["ingested"], runs["computed"]
    bronze_rows = ingested["feeds"]["transactions"]["bronze"]
    spark_total = timings["ingest"] + timings["compute"]
    return {
        "bronze_rows": bronze_rows,
        "feature_rows": computed["rows"],
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "spark_seconds": stage_seconds(ingested, computed),
        "rows_per_s": {
            "generate_and_land": round(rows / timings["generate"]),
            "ingest": round(rows / timings["ingest"]),
            "compute": round(bronze_rows / timings["compute"]),
            "landing_to_features": round(rows / spark_total),
            "polars_card_windows": round(bronze_rows / timings["polars_card_windows"]),
        },
        "landing_to_features_s": round(spark_total, 1),
        "spark_vs_polars_card_windows": round(
            timings["compute"] / timings["polars_card_windows"], 2
        ),
    }


def report(figures: dict[str, Any]) -> None:
    """Seconds and rows/s per stage, as a table."""
    table = Table("stage", "seconds", "rows/s")
    for stage, seconds in figures["seconds"].items():
        rate = figures["rows_per_s"].get(stage) or figures["rows_per_s"].get(
            "generate_and_land" if stage == "generate" else stage
        )
        table.add_row(stage, f"{seconds:,.1f}", f"{rate:,}" if rate else "-")
    table.add_row(
        "landing -> features (Spark)",
        f"{figures['landing_to_features_s']:,.1f}",
        f"{figures['rows_per_s']['landing_to_features']:,}",
    )
    Console().print(table)


if __name__ == "__main__":
    typer.run(main)
