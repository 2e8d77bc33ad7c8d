"""The feature pipeline's steps, each a typed function returning JSON-safe metadata.

``generate`` lands synthetic raw files; ``ingest`` turns landing files (or an external
source) into validated bronze; ``compute`` turns bronze into validated feature tables;
``validate`` re-checks published tables; ``run`` chains ingest and compute. Airflow tasks
and the CLI call these and nothing else.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feature_pipeline import bronze
from feature_pipeline.compute import CARD_PROFILE, FEATURE_TABLES, Window, compute_features
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

INGESTED_FEEDS = (bronze.TRANSACTIONS, bronze.LABELS, bronze.CARDS, bronze.MERCHANTS)


def _spark(app: str) -> SparkSession:
    from fraud_platform.spark import build_spark_session

    return build_spark_session(app)


def _run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _validated(frame: DataFrame, gate: str, expected: int | None, window_end: datetime | None,
               s3: S3Settings, not_provided: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Run a Great Expectations gate; raise ``ValidationGateError`` (stopping the run)
    when it fails. Results and data docs are kept under ``validation/`` either way."""
    from feature_pipeline.validation import enforce, validate

    report = validate(frame, gate, expected_rows=expected, window_end=window_end, s3=s3,
                      run_id=_run_id(), not_provided=not_provided)
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
        start_date=start, days=days, n_cards=n_cards, n_merchants=n_merchants,
        n_transactions=n_transactions, fraud_rate=fraud_rate, seed=seed,
    )
    return generate_to_landing(config, progress=progress)


def ingest(
    start: date,
    end: date,
    source: Path | None = None,
    spark: SparkSession | None = None,
    s3: S3Settings | None = None,
    feeds: Sequence[str] | None = None,
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

    Returns:
        Per feed: counts that reconcile (read = bronze + quarantined + duplicates), the
        published partitions and the validation report.
    """
    spark = spark or _spark("feature-pipeline-ingest")
    s3 = s3 or S3Settings()
    window_end = Window(start, end).end_ts

    def gate(feed: bronze.Feed, not_provided: frozenset[str] = frozenset()):
        def check(staged: DataFrame, counts: bronze.IngestResult) -> dict[str, Any]:
            freshness = window_end if feed is bronze.TRANSACTIONS else None
            return _validated(staged, f"bronze_{feed.name}", counts.bronze, freshness, s3,
                              not_provided)

        return check

    results: dict[str, Any] = {}
    if source is None:
        for feed in INGESTED_FEEDS:
            if feeds is not None and feed.name not in feeds:
                continue
            results[feed.name] = bronze.ingest_feed(spark, feed, start, end, s3,
                                                    gate=gate(feed)).as_dict()
    else:
        from feature_pipeline.sources import (
            SourceMapping,
            label_window_extension,
            mapped_raw_records,
        )

        mapping = SourceMapping.load(source)
        transactions, labels = mapped_raw_records(spark, mapping)
        label_end = end + label_window_extension(mapping)
        not_provided = frozenset(bronze.TRANSACTIONS.raw_fields) - set(mapping.columns)
        results["transactions"] = bronze.ingest_feed(
            spark, bronze.TRANSACTIONS, start, end, s3, raw=transactions,
            gate=gate(bronze.TRANSACTIONS, not_provided),
        ).as_dict()
        results["labels"] = bronze.ingest_feed(
            spark, bronze.LABELS, start, label_end, s3, raw=labels, gate=gate(bronze.LABELS)
        ).as_dict()
    return {"window": [start.isoformat(), end.isoformat()], "feeds": results}


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
        report = run_gate(frame, gate_name, expected_rows=None, window_end=None, s3=s3,
                          run_id=_run_id())
        reports[gate_name] = report.as_dict()
    failed = [name for name, report in reports.items() if not report["success"]]
    return {"window": [start.isoformat(), end.isoformat()], "reports": reports,
            "failed": failed}


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
