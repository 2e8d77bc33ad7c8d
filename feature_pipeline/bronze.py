"""Bronze ingestion: raw landing files to typed, deduplicated Parquet, with a quarantine.

Every raw record ends in exactly one place: the bronze table, the quarantine (with a
``reason``), or the duplicate count (and the quarantine, reason ``duplicate``). The counts
reconcile exactly, ``read = bronze + quarantined + duplicates``, and the run fails loudly if
they ever do not. Both outputs are published atomically per partition (see ``publish``),
so rerunning a window replaces it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from feature_pipeline.feeds import CARDS, FEEDS, LABELS, MERCHANTS, TRANSACTIONS, Feed
from feature_pipeline.publish import Output, stage_and_publish
from fraud_platform import layout
from fraud_platform.runs import new_run_id
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

# The feeds are defined in ``feeds``; they are named here too, where ingestion is called.
__all__ = [
    "CARDS",
    "CORRUPT",
    "DUPLICATE",
    "FEEDS",
    "LABELS",
    "MERCHANTS",
    "TRANSACTIONS",
    "Feed",
    "IngestResult",
    "classify",
    "dates_in",
    "ingest_feed",
    "read_raw_records",
]

CORRUPT = "_corrupt_record"
DUPLICATE = "duplicate"


@dataclass
class IngestResult:
    """What one feed's ingestion did; ``as_dict`` is the run's JSON-safe metadata."""

    feed: str
    window: tuple[str, str]
    read: int = 0
    bronze: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "window": list(self.window),
            "read": self.read,
            "bronze": self.bronze,
            "quarantined": self.quarantined,
            "duplicates": self.duplicates,
            "quarantine_reasons": self.reasons,
            "outputs": self.outputs,
            "duration_s": round(self.duration_s, 2),
        }


def dates_in(start: date, end: date) -> list[str]:
    """``yyyy-MM-dd`` strings from ``start`` to ``end``, both included."""
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


GZIP_MAGIC = b"\x1f\x8b"
UNREADABLE = "_unreadable_file"
"""Set on the one raw row that stands for a landing file Spark cannot decompress."""


def _landing_files(
    client: Any, s3: S3Settings, prefix: str
) -> tuple[list[str], list[tuple[str, int]]]:
    """The data files under ``prefix``: those Spark can read, and the gzip-named ones whose
    bytes are not gzip (key, size). Spark fails the whole job on the first such file, so a
    single garbage upload would stop every day's ingestion; it is quarantined instead."""
    readable, unreadable = [], []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key, size = obj["Key"], obj["Size"]
            if key.rsplit("/", 1)[-1].startswith(("_", ".")):
                continue  # hidden from Spark's folder reads too
            if key.endswith(".gz") and size > 0:
                head = client.get_object(Bucket=s3.bucket, Key=key, Range="bytes=0-1")["Body"]
                if head.read() != GZIP_MAGIC:
                    unreadable.append((key, size))
                    continue
            readable.append(key)
    return readable, unreadable


def date_of(file: Column, partition: str | None) -> Column:
    """The landing day a file's path names (``<partition>=YYYY-MM-DD``), else null."""
    from pyspark.sql import functions as F

    if not partition:
        return F.lit(None).cast("string")
    pattern = rf"{partition}=(\d{{4}}-\d{{2}}-\d{{2}})"
    return F.nullif(F.regexp_extract(file, pattern, 1), F.lit(""))


def read_raw_records(spark: SparkSession, s3: S3Settings, feed: Feed, days: list[str]) -> DataFrame:
    """Raw landing records of ``days`` as strings, one row per non-blank line.

    Malformed JSON is kept (``_corrupt_record`` set) so that it can be quarantined; a file
    that is not the gzip its name says is one row (``_unreadable_file`` set), quarantined
    whole. Days without a landing partition contribute no rows (and are logged).
    """
    from pyspark.sql import functions as F

    from fraud_platform.s3 import s3_client

    client = s3_client(s3)
    partition = feed.landing_partition
    folders = [f"{partition}={day}" for day in days] if partition else [""]
    paths: list[str] = []
    unreadable: list[tuple[str, int]] = []
    for folder in folders:
        prefix = s3.key(layout.LANDING, feed.landing, folder) + "/"
        readable, broken = _landing_files(client, s3, prefix)
        if not broken and readable:
            paths.append(f"s3a://{s3.bucket}/{prefix}")
        else:
            paths.extend(f"s3a://{s3.bucket}/{key}" for key in readable)
        unreadable.extend(broken)
        if not readable and not broken:
            log.warning("no landing files for %s in %s", feed.name, prefix)
    schema = ", ".join(f"`{name}` string" for name in (*feed.raw_fields, CORRUPT))
    columns = f"{schema}, source_file string, source_date string, `{UNREADABLE}` boolean"

    frames = []
    if paths:
        lines = spark.read.text(paths).where(F.trim("value") != "")
        parsed = F.from_json("value", schema, {"columnNameOfCorruptRecord": CORRUPT})
        frames.append(
            lines.select(
                parsed.alias("r"),
                F.input_file_name().alias("source_file"),
                date_of(F.input_file_name(), partition).alias("source_date"),
                F.lit(False).alias(UNREADABLE),
            ).select("r.*", "source_file", "source_date", UNREADABLE)
        )
    if unreadable:
        log.error("landing files that are not gzip, quarantined whole: %s", unreadable)
        rows = [
            (*[None] * len(feed.raw_fields), f"not gzip ({size} bytes)", f"s3a://{s3.bucket}/{key}")
            for key, size in unreadable
        ]
        files = spark.createDataFrame(rows, f"{schema}, source_file string")
        frames.append(
            files.withColumn("source_date", date_of(F.col("source_file"), partition)).withColumn(
                UNREADABLE, F.lit(True)
            )
        )
    if not frames:
        return spark.createDataFrame([], columns)
    raw = frames[0]
    for frame in frames[1:]:
        raw = raw.unionByName(frame)
    return raw


def classify(
    raw: DataFrame, feed: Feed, window: tuple[datetime, datetime], latest_allowed: datetime
) -> DataFrame:
    """Add ``reason``: null for a good record, else why it is quarantined.

    Duplicates (a repeated key among good records) get the reason ``duplicate``; the first
    by ``feed.order_by`` is kept.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    unreadable = F.col(UNREADABLE) if UNREADABLE in raw.columns else F.lit(False)
    reason = F.when(unreadable, F.lit("unreadable_file")).when(
        F.col(CORRUPT).isNotNull(), F.lit("malformed_json")
    )
    for name, condition in feed.checks(window[0], window[1], latest_allowed):
        reason = reason.when(F.coalesce(condition, F.lit(False)), F.lit(name))
    checked = raw.withColumn("reason", reason)
    order = [F.col(c).asc_nulls_last() for c in feed.order_by] + [F.col("source_file")]
    rank = F.row_number().over(Window.partitionBy(F.trim(F.col(feed.key))).orderBy(*order))
    ranked = checked.withColumn(
        "_rank", F.when(F.col("reason").isNull(), rank).otherwise(F.lit(None))
    )
    return ranked.withColumn(
        "reason", F.when(F.col("_rank") > 1, F.lit(DUPLICATE)).otherwise(F.col("reason"))
    ).drop("_rank")


def ingest_feed(
    spark: SparkSession,
    feed: Feed,
    start: date,
    end: date,
    s3: S3Settings | None = None,
    raw: DataFrame | None = None,
    future_tolerance: timedelta = timedelta(days=1),
    gate: Callable[[DataFrame, IngestResult], dict[str, Any]] | None = None,
) -> IngestResult:
    """Ingest the landing partitions of ``[start, end]`` of one feed into bronze.

    Args:
        spark: The session (see ``fraud_platform.spark``).
        feed: Which feed (``TRANSACTIONS`` or ``LABELS``).
        start: First day of the window (UTC).
        end: Last day of the window, included.
        s3: Where the zones live.
        raw: Raw string records to ingest instead of the landing files (an external
            source mapped onto the feed's fields, see ``sources``).
        future_tolerance: Records stamped later than now plus this are quarantined.
        gate: Validation of the staged bronze table (given the counts); raising stops the
            run before anything is published.

    Returns:
        The counts, which reconcile exactly, and the published outputs.
    """
    started = time.perf_counter()
    s3 = s3 or S3Settings()
    days = dates_in(start, end)
    window = (
        datetime.combine(start, datetime.min.time(), UTC),
        datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC),
    )
    now = datetime.now(UTC)
    if raw is None:
        raw = read_raw_records(spark, s3, feed, days)
    classified = classify(raw, feed, window, now + future_tolerance).persist()
    result = IngestResult(feed=feed.name, window=(days[0], days[-1]))
    try:
        _count(classified, result)
        result.outputs = _publish(classified, feed, days, now, s3, result, gate)
    finally:
        classified.unpersist()
    result.outputs["bronze_uri"] = feed.bronze.uri(s3, "s3")
    result.duration_s = time.perf_counter() - started
    _log(result)
    return result


def _count(classified: DataFrame, result: IngestResult) -> None:
    """Fill ``result``'s counts from the classified records, one count per reason."""
    counts = {row["reason"]: row["count"] for row in classified.groupBy("reason").count().collect()}
    result.read = sum(counts.values())
    result.bronze = counts.pop(None, 0)
    result.duplicates = counts.get(DUPLICATE, 0)
    result.quarantined = sum(counts.values()) - result.duplicates
    result.reasons = dict(sorted(counts.items()))


def _publish(
    classified: DataFrame,
    feed: Feed,
    days: list[str],
    now: datetime,
    s3: S3Settings,
    result: IngestResult,
    gate: Callable[[DataFrame, IngestResult], dict[str, Any]] | None,
) -> dict[str, Any]:
    """Stage the good and the quarantined records, gate the good ones, publish both."""
    metadata = {"window": days, "counts": result.as_dict()}
    partitions = days if feed.partition_column else None
    return stage_and_publish(
        [
            # What is published must reconcile with what was read:
            # read = bronze + quarantined + duplicates (duplicates are quarantined too).
            Output(
                _bronze_rows(classified, feed, now),
                feed.bronze,
                partitions,
                (lambda staged: gate(staged, result)) if gate else None,
                expected_rows=result.bronze,
            ),
            Output(
                _quarantine_rows(classified, feed, days, now),
                feed.quarantine,
                days,
                expected_rows=result.quarantined + result.duplicates,
            ),
        ],
        s3,
        new_run_id(),
        metadata,
    )


def _bronze_rows(classified: DataFrame, feed: Feed, now: datetime) -> DataFrame:
    """The good records, typed by the feed's casts, with their partition column."""
    from pyspark.sql import functions as F

    casts = feed.casts()
    partition = []
    if feed.partition_by:
        if feed.partition_column is None:
            raise ValueError(f"{feed.name}: partition_by without a partition_column")
        partition = [feed.partition_by().alias(feed.partition_column)]
    return classified.where(F.col("reason").isNull()).select(
        *[expr.alias(name) for name, expr in casts.items()],
        F.col("source_file"),
        F.lit(now).alias("ingested_at"),
        *partition,
    )


def _quarantine_rows(
    classified: DataFrame, feed: Feed, days: list[str], now: datetime
) -> DataFrame:
    """The quarantined records as they were read (strings), each with its reason."""
    from pyspark.sql import functions as F

    return classified.where(F.col("reason").isNotNull()).select(
        *[F.col(name) for name in feed.raw_fields],
        F.col(CORRUPT).alias("raw_record"),
        "reason",
        "source_file",
        F.lit(now).alias("ingested_at"),
        # Quarantined records stay in a partition this run replaces, whatever their date.
        F.when(F.col("source_date").isin(days), F.col("source_date"))
        .otherwise(F.lit(days[0]))
        .alias("source_date"),
    )


def _log(result: IngestResult) -> None:
    log.info(
        "%s bronze %s..%s: read %d, bronze %d, quarantined %d, duplicates %d",
        result.feed,
        *result.window,
        result.read,
        result.bronze,
        result.quarantined,
        result.duplicates,
    )
