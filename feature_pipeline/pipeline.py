"""The feature pipeline's steps, each a typed function returning JSON-safe metadata.

``generate`` lands synthetic raw files; ``ingest`` turns landing files (or an external
source) into validated bronze; ``compute`` turns bronze into validated feature tables;
``validate`` re-checks published tables; ``run`` chains ingest and compute. Airflow tasks
and the CLI call these and nothing else.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feature_pipeline import bronze
from feature_pipeline.compute import CARD_PROFILE, FEATURE_TABLES, Window, compute_features
from fraud_platform.runs import new_run_id
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

INGESTED_FEEDS = (bronze.TRANSACTIONS, bronze.LABELS, bronze.CARDS, bronze.MERCHANTS)
DAILY_FEEDS = frozenset({bronze.TRANSACTIONS.name})
"""Feeds that have landing files for every day: a day without is an error. For the others
a missing day is normal (no label arrived that day; no new reference snapshot): it is left
out of the run, and what was published for it stays as it is."""


class MissingInputError(RuntimeError):
    """A day of the window has no landing files: publishing it would empty good data."""


def _days_with_input(feed: bronze.Feed, days: list[str], s3: S3Settings) -> list[str]:
    """The days of ``days`` that have landing files for ``feed`` (all or none for a feed
    without date partitions)."""
    from fraud_platform import layout
    from fraud_platform.s3 import s3_client

    client = s3_client(s3)

    def present(*folder: str) -> bool:
        prefix = s3.key(layout.LANDING, feed.landing, *folder) + "/"
        return bool(
            client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix, MaxKeys=1).get("KeyCount")
        )

    if feed.landing_partition is None:
        return list(days) if present() else []
    return [day for day in days if present(f"{feed.landing_partition}={day}")]


def _stretches(days: list[str]) -> list[tuple[date, date]]:
    """Consecutive days as ``(first, last)`` stretches."""
    stretches: list[tuple[date, date]] = []
    for day in map(date.fromisoformat, days):
        if stretches and day == stretches[-1][1] + timedelta(days=1):
            stretches[-1] = (stretches[-1][0], day)
        else:
            stretches.append((day, day))
    return stretches


def _merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One feed's result over several stretches: counts summed, outputs listed."""
    if len(parts) == 1:
        return parts[0]
    merged = {
        **parts[-1],
        "window": [parts[0]["window"][0], parts[-1]["window"][-1]],
        "outputs": [p["outputs"] for p in parts],
        "quarantine_reasons": {},
    }
    for key in ("read", "bronze", "quarantined", "duplicates", "duration_s"):
        merged[key] = sum(p[key] for p in parts)
    for part in parts:
        for reason, count in part["quarantine_reasons"].items():
            merged["quarantine_reasons"][reason] = (
                merged["quarantine_reasons"].get(reason, 0) + count
            )
    return merged


def _landing_plan(
    feeds: list[bronze.Feed], start: date, end: date, s3: S3Settings, skip_missing_days: bool
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The days to ingest per feed, and the days skipped for lack of input.

    Raises:
        MissingInputError: a day lacks landing files of a feed that must have them, and
            ``skip_missing_days`` is off. Checked before anything is ingested, so the
            published data is left as it was.
    """
    days = bronze.dates_in(start, end)
    plan, skipped, missing = {}, {}, {}
    for feed in feeds:
        present = _days_with_input(feed, days, s3)
        plan[feed.name] = present
        absent = [day for day in days if day not in present]
        if absent:
            skipped[feed.name] = absent
            if feed.name in DAILY_FEEDS and not skip_missing_days:
                missing[feed.name] = absent
    if missing:
        raise MissingInputError(
            "no landing files for "
            + "; ".join(f"{name}: {', '.join(d)}" for name, d in missing.items())
            + ". Nothing was ingested and the published data is as it was; land the files, "
            "or rerun with skip_missing_days (CLI: --skip-missing-days) to ingest the other "
            "days only."
        )
    return plan, skipped


def _spark(app: str) -> SparkSession:
    from fraud_platform.spark import build_spark_session

    return build_spark_session(app)


def _validated(
    frame: DataFrame,
    gate: str,
    expected: int | None,
    window_end: datetime | None,
    s3: S3Settings,
    not_provided: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Run a Great Expectations gate; raise ``ValidationGateError`` (stopping the run)
    when it fails. Results and data docs are kept under ``validation/`` either way."""
    from feature_pipeline.validation import enforce, validate

    report = validate(
        frame,
        gate,
        expected_rows=expected,
        window_end=window_end,
        s3=s3,
        run_id=new_run_id(),
        not_provided=not_provided,
    )
    return enforce(report).as_dict()


def generate(
    start: date,
    days: int,
    n_cards: int = 5_000,
    n_merchants: int = 1_000,
    n_transactions: int | None = None,
    fraud_rate: float = 0.005,
    seed: int = 7,
    progress: bool = False,
) -> dict[str, Any]:
    """Generate synthetic transactions, labels and reference data into ``landing/``."""
    from feature_pipeline.generate import GeneratorConfig, generate_to_landing

    config = GeneratorConfig(
        start_date=start,
        days=days,
        n_cards=n_cards,
        n_merchants=n_merchants,
        n_transactions=n_transactions,
        fraud_rate=fraud_rate,
        seed=seed,
    )
    return generate_to_landing(config, progress=progress)


def ingest(
    start: date,
    end: date,
    source: Path | None = None,
    spark: SparkSession | None = None,
    s3: S3Settings | None = None,
    feeds: Sequence[str] | None = None,
    skip_missing_days: bool = False,
) -> dict[str, Any]:
    """Ingest ``[start, end]`` into bronze, each feed through its quarantine and GX gate.

    Args:
        start: First day (UTC).
        end: Last day, included.
        source: A column-mapping file of an external dataset (see ``sources``); landing
            files of the generated feeds when omitted.
        spark: A session to reuse; built from the environment when omitted.
        s3: Where the zones live.
        feeds: Names of the generated feeds to ingest (all by default), e.g. ``["labels"]``
            to take in the labels that arrived after their transactions were ingested.
        skip_missing_days: Ingest only the days that have landing files instead of
            failing when one has none (their published partitions are left as they are).

    Returns:
        Per feed: counts that reconcile (read = bronze + quarantined + duplicates), the
        published partitions and the validation report; ``skipped_days`` per feed.

    Raises:
        MissingInputError: a day has no landing files (see ``skip_missing_days``).
    """
    spark = spark or _spark("feature-pipeline-ingest")
    s3 = s3 or S3Settings()
    skipped: dict[str, list[str]] = {}
    if source is None:
        chosen = [f for f in INGESTED_FEEDS if feeds is None or f.name in feeds]
        plan, skipped = _landing_plan(chosen, start, end, s3, skip_missing_days)
        results = _ingest_landing(spark, s3, chosen, plan, start, end)
    else:
        results = _ingest_source(spark, s3, source, start, end)
    return {
        "window": [start.isoformat(), end.isoformat()],
        "feeds": results,
        "skipped_days": skipped,
    }


def _bronze_gate(
    feed: bronze.Feed,
    window_end: datetime,
    s3: S3Settings,
    not_provided: frozenset[str] = frozenset(),
) -> Callable[[DataFrame, bronze.IngestResult], dict[str, Any]]:
    """The GX gate of one feed's staged bronze table, given the run's counts; only
    transactions are expected to be fresh up to the window's end."""

    def check(staged: DataFrame, counts: bronze.IngestResult) -> dict[str, Any]:
        freshness = window_end if feed is bronze.TRANSACTIONS else None
        return _validated(staged, f"bronze_{feed.name}", counts.bronze, freshness, s3, not_provided)

    return check


def _ingest_landing(
    spark: SparkSession,
    s3: S3Settings,
    feeds: list[bronze.Feed],
    plan: dict[str, list[str]],
    start: date,
    end: date,
) -> dict[str, Any]:
    """Each feed's planned days from the landing files, one ingestion per stretch of
    consecutive days; a feed with no day to ingest reports zero counts."""
    window_end = Window(start, end).end_ts
    results: dict[str, Any] = {}
    for feed in feeds:
        parts = [
            bronze.ingest_feed(
                spark, feed, first, last, s3, gate=_bronze_gate(feed, window_end, s3)
            ).as_dict()
            for first, last in _stretches(plan[feed.name])
        ]
        results[feed.name] = (
            _merged(parts)
            if parts
            else bronze.IngestResult(
                feed=feed.name, window=(start.isoformat(), end.isoformat())
            ).as_dict()
        )
    return results


def _ingest_source(
    spark: SparkSession, s3: S3Settings, source: Path, start: date, end: date
) -> dict[str, Any]:
    """An external dataset's transactions, labels and reference tables it has, mapped by
    the file at ``source``; gates skip the fields the source does not provide."""
    from feature_pipeline.source_mapping import SourceMapping, label_window_extension
    from feature_pipeline.sources import mapped_raw_records, mapped_reference

    window_end = Window(start, end).end_ts
    mapping = SourceMapping.load(source)
    transactions, labels = mapped_raw_records(spark, mapping, (start, end))
    label_end = end + label_window_extension(mapping)
    not_provided = frozenset(bronze.TRANSACTIONS.raw_fields) - set(mapping.columns)
    results: dict[str, Any] = {}
    results["transactions"] = bronze.ingest_feed(
        spark,
        bronze.TRANSACTIONS,
        start,
        end,
        s3,
        raw=transactions,
        gate=_bronze_gate(bronze.TRANSACTIONS, window_end, s3, not_provided),
    ).as_dict()
    results["labels"] = bronze.ingest_feed(
        spark,
        bronze.LABELS,
        start,
        label_end,
        s3,
        raw=labels,
        gate=_bronze_gate(bronze.LABELS, window_end, s3),
    ).as_dict()
    # Reference tables, when the source has them (see feature_pipeline.sources).
    for name, table in mapping.reference().items():
        feed = bronze.FEEDS[name]
        results[name] = bronze.ingest_feed(
            spark,
            feed,
            start,
            end,
            s3,
            raw=mapped_reference(spark, name, table),
            gate=_bronze_gate(
                feed, window_end, s3, frozenset(feed.raw_fields) - set(table.columns)
            ),
        ).as_dict()
    return results


def compute(
    start: date,
    end: date,
    extra_label_delay: timedelta = timedelta(0),
    spark: SparkSession | None = None,
    s3: S3Settings | None = None,
) -> dict[str, Any]:
    """Compute the feature tables of ``[start, end]``, each through its GX gate."""
    spark = spark or _spark("feature-pipeline-compute")
    s3 = s3 or S3Settings()

    window_end = Window(start, end).end_ts

    def gate(staged: DataFrame, table: str, expected: int) -> dict[str, Any]:
        # Profile rows are dated at the card's issue date: no freshness to expect.
        freshness = None if table == CARD_PROFILE.name else window_end
        return _validated(staged, table, expected, freshness, s3)

    return compute_features(spark, start, end, s3, extra_label_delay, gate)


def validate(
    start: date, end: date, spark: SparkSession | None = None, s3: S3Settings | None = None
) -> dict[str, Any]:
    """Re-validate the published bronze and feature tables of ``[start, end]``.

    Volume expectations need a run's own counts, so only the content checks apply here.
    """
    from feature_pipeline.compute import read_bronze
    from feature_pipeline.validation import validate as run_gate

    spark = spark or _spark("feature-pipeline-validate")
    s3 = s3 or S3Settings()
    reports: dict[str, Any] = {}
    tables = [(f"bronze_{feed.name}", feed.bronze) for feed in INGESTED_FEEDS]
    tables += [(table.name, table) for table in FEATURE_TABLES]
    for gate_name, table in tables:
        frame = read_bronze(spark, table, s3, start, end)
        report = run_gate(
            frame, gate_name, expected_rows=None, window_end=None, s3=s3, run_id=new_run_id()
        )
        reports[gate_name] = report.as_dict()
    failed = [name for name, report in reports.items() if not report["success"]]
    return {"window": [start.isoformat(), end.isoformat()], "reports": reports, "failed": failed}


def run(
    start: date,
    end: date,
    source: Path | None = None,
    extra_label_delay: timedelta = timedelta(0),
) -> dict[str, Any]:
    """Ingest and compute ``[start, end]`` in one Spark session: the daily pipeline."""
    started = time.perf_counter()
    spark = _spark("feature-pipeline")
    s3 = S3Settings()
    ingested = ingest(start, end, source, spark, s3)
    computed = compute(start, end, extra_label_delay, spark, s3)
    return {
        "window": [start.isoformat(), end.isoformat()],
        "ingest": ingested,
        "compute": computed,
        "duration_s": round(time.perf_counter() - started, 2),
    }
