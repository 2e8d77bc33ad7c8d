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
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from feature_pipeline.publish import Output, TableRef, stage_and_publish
from fraud_platform import layout
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

CORRUPT = "_corrupt_record"
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Feed:
    """How one raw feed becomes a bronze table.

    Attributes:
        name: The bronze table's name.
        landing: The feed's folder under ``landing/``.
        raw_fields: Field names of a raw record; all are read as strings, then cast.
        key: The column that identifies a record (deduplicated on).
        casts: Typed bronze columns, as Spark expressions over the raw string fields.
        checks: ``(reason, condition)`` pairs: a record for which ``condition`` is true is
            quarantined with that reason (the first matching reason wins).
        partition_by: Expression of the partition value (a ``yyyy-MM-dd`` date), or None.
        partition_column: Name of the bronze partition column, or None (a snapshot table).
        landing_partition: Name of the landing folders' date partition, or None.
        order_by: Columns ordering duplicates; the first is kept (deterministic reruns).
    """

    name: str
    landing: str
    raw_fields: tuple[str, ...]
    key: str
    casts: Callable[[], dict[str, Column]]
    checks: Callable[[datetime, datetime, datetime], list[tuple[str, Column]]]
    partition_by: Callable[[], Column] | None
    partition_column: str | None
    landing_partition: str | None
    order_by: tuple[str, ...] = ()

    @property
    def bronze(self) -> TableRef:
        return TableRef(layout.BRONZE, self.name, self.partition_column)

    @property
    def quarantine(self) -> TableRef:
        return TableRef(layout.QUARANTINE, self.name, "source_date")


def _c(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(name)


def _blank(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(name).isNull() | (F.trim(F.col(name)) == "")


def _bad_double(name: str, low: float | None = None, high: float | None = None) -> Column:
    """Present but not a finite number (or outside [low, high])."""
    from pyspark.sql import functions as F

    value = F.col(name).try_cast("double")
    bad = F.col(name).isNotNull() & (value.isNull() | F.isnan(value) | _infinite(value))
    if low is not None:
        bad = bad | (value < low)
    if high is not None:
        bad = bad | (value > high)
    return bad


def _infinite(value: Column) -> Column:
    from pyspark.sql import functions as F

    return value.isin(F.lit(float("inf")), F.lit(float("-inf")))


def _timestamp(name: str) -> Column:
    return _c(name).try_cast("timestamp")


def _transaction_casts() -> dict[str, Column]:
    from pyspark.sql import functions as F

    return {
        "transaction_id": F.trim(_c("transaction_id")),
        "card_id": F.trim(_c("card_id")),
        "merchant_id": F.trim(_c("merchant_id")),
        "amount": F.round(_c("amount").try_cast("double"), 2),
        "currency": F.upper(_c("currency")),
        "merchant_category": _c("merchant_category"),
        "channel": _c("channel"),
        "latitude": _c("latitude").try_cast("double"),
        "longitude": _c("longitude").try_cast("double"),
        "event_timestamp": _timestamp("event_timestamp"),
    }


def _transaction_checks(
    window_start: datetime, window_end: datetime, latest_allowed: datetime
) -> list[tuple[str, Column]]:
    from pyspark.sql import functions as F

    ts = _timestamp("event_timestamp")
    amount = _c("amount").try_cast("double")
    return [
        ("missing_transaction_id", _blank("transaction_id")),
        ("missing_card_id", _blank("card_id")),
        ("missing_merchant_id", _blank("merchant_id")),
        ("unparsable_timestamp", ts.isNull()),
        ("future_timestamp", ts > F.lit(latest_allowed)),
        ("outside_window", (ts < F.lit(window_start)) | (ts >= F.lit(window_end))),
        ("missing_amount", _blank("amount")),
        ("non_numeric_amount", amount.isNull() | F.isnan(amount) | _infinite(amount)),
        ("negative_amount", amount < 0),
        ("invalid_latitude", _bad_double("latitude", -90, 90)),
        ("invalid_longitude", _bad_double("longitude", -180, 180)),
    ]


def _label_casts() -> dict[str, Column]:
    from pyspark.sql import functions as F

    return {
        "transaction_id": F.trim(_c("transaction_id")),
        "is_fraud": _c("is_fraud").try_cast("double").cast("int"),
        "label_timestamp": _timestamp("label_timestamp"),
        "fraud_scenario": _c("fraud_scenario"),
    }


def _label_checks(
    window_start: datetime, window_end: datetime, latest_allowed: datetime
) -> list[tuple[str, Column]]:
    from pyspark.sql import functions as F

    ts = _timestamp("label_timestamp")
    return [
        ("missing_transaction_id", _blank("transaction_id")),
        ("invalid_is_fraud", ~F.coalesce(_c("is_fraud").isin("0", "1", "0.0", "1.0"),
                                         F.lit(False))),
        ("unparsable_timestamp", ts.isNull()),
        ("future_timestamp", ts > F.lit(latest_allowed)),
        ("outside_window", (ts < F.lit(window_start)) | (ts >= F.lit(window_end))),
    ]


def _event_date(column: str) -> Callable[[], Column]:
    def expression() -> Column:
        from pyspark.sql import functions as F

        return F.date_format(_timestamp(column), "yyyy-MM-dd")

    return expression


TRANSACTIONS = Feed(
    name=layout.TRANSACTIONS,
    landing=layout.TRANSACTIONS,
    raw_fields=(
        "transaction_id", "card_id", "merchant_id", "amount", "currency", "merchant_category",
        "channel", "latitude", "longitude", "event_timestamp",
    ),
    key="transaction_id",
    casts=_transaction_casts,
    checks=_transaction_checks,
    partition_by=_event_date("event_timestamp"),
    partition_column="event_date",
    landing_partition="event_date",
    order_by=("event_timestamp", "card_id", "amount"),
)

LABELS = Feed(
    name=layout.LABELS,
    landing=layout.LABELS,
    raw_fields=("transaction_id", "is_fraud", "label_timestamp", "fraud_scenario"),
    key="transaction_id",
    casts=_label_casts,
    checks=_label_checks,
    partition_by=_event_date("label_timestamp"),
    partition_column="label_date",
    landing_partition="label_date",
    order_by=("label_timestamp",),
)


def _no_checks(*_: datetime) -> list[tuple[str, Column]]:
    return []


def _card_checks(*_: datetime) -> list[tuple[str, Column]]:
    return [
        ("missing_card_id", _blank("card_id")),
        ("unparsable_issue_date", _c("issue_date").try_cast("date").isNull()),
        ("invalid_credit_limit", _blank("credit_limit") | _bad_double("credit_limit", 0)),
        ("invalid_latitude", _bad_double("home_latitude", -90, 90)),
        ("invalid_longitude", _bad_double("home_longitude", -180, 180)),
    ]


def _card_casts() -> dict[str, Column]:
    from pyspark.sql import functions as F

    return {
        "card_id": F.trim(_c("card_id")),
        "account_id": _c("account_id"),
        "issue_date": _c("issue_date").try_cast("date"),
        "credit_limit": _c("credit_limit").try_cast("double"),
        "home_latitude": _c("home_latitude").try_cast("double"),
        "home_longitude": _c("home_longitude").try_cast("double"),
    }


def _merchant_checks(*_: datetime) -> list[tuple[str, Column]]:
    return [
        ("missing_merchant_id", _blank("merchant_id")),
        ("invalid_latitude", _bad_double("merchant_latitude", -90, 90)),
        ("invalid_longitude", _bad_double("merchant_longitude", -180, 180)),
    ]


def _merchant_casts() -> dict[str, Column]:
    from pyspark.sql import functions as F

    return {
        "merchant_id": F.trim(_c("merchant_id")),
        "merchant_category": _c("merchant_category"),
        "merchant_latitude": _c("merchant_latitude").try_cast("double"),
        "merchant_longitude": _c("merchant_longitude").try_cast("double"),
        "is_online": F.lower(_c("is_online")).isin("true", "1"),
    }


CARDS = Feed(
    name=layout.CARDS,
    landing="reference/cards",
    raw_fields=("card_id", "account_id", "issue_date", "credit_limit", "home_latitude",
                "home_longitude"),
    key="card_id",
    casts=_card_casts,
    checks=_card_checks,
    partition_by=None,
    partition_column=None,
    landing_partition=None,
)

MERCHANTS = Feed(
    name=layout.MERCHANTS,
    landing="reference/merchants",
    raw_fields=("merchant_id", "merchant_category", "merchant_latitude", "merchant_longitude",
                "is_online"),
    key="merchant_id",
    casts=_merchant_casts,
    checks=_merchant_checks,
    partition_by=None,
    partition_column=None,
    landing_partition=None,
)

FEEDS = {feed.name: feed for feed in (TRANSACTIONS, LABELS, CARDS, MERCHANTS)}


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


def read_raw_records(spark: SparkSession, s3: S3Settings, feed: Feed, days: list[str]) -> DataFrame:
    """Raw landing records of ``days`` as strings, one row per non-blank line.

    Malformed JSON is kept (``_corrupt_record`` set) so that it can be quarantined. Days
    without a landing partition contribute no rows (and are logged).
    """
    from pyspark.sql import functions as F

    from fraud_platform.s3 import s3_client

    client = s3_client(s3)
    partition = feed.landing_partition
    folders = [f"{partition}={day}" for day in days] if partition else [""]
    paths = []
    for folder in folders:
        prefix = s3.key(layout.LANDING, feed.landing, folder) + "/"
        if client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"):
            paths.append(f"s3a://{s3.bucket}/{prefix}")
        else:
            log.warning("no landing files for %s in %s", feed.name, prefix)
    schema = ", ".join(f"`{name}` string" for name in (*feed.raw_fields, CORRUPT))
    if not paths:
        return spark.createDataFrame([], f"{schema}, source_file string, source_date string")
    lines = spark.read.text(paths).where(F.trim("value") != "")
    parsed = F.from_json("value", schema, {"columnNameOfCorruptRecord": CORRUPT})
    source_date = (
        F.nullif(
            F.regexp_extract(F.input_file_name(), rf"{partition}=(\d{{4}}-\d{{2}}-\d{{2}})", 1),
            F.lit(""),
        )
        if partition
        else F.lit(None).cast("string")
    )
    return lines.select(
        parsed.alias("r"),
        F.input_file_name().alias("source_file"),
        source_date.alias("source_date"),
    ).select("r.*", "source_file", "source_date")


def classify(raw: DataFrame, feed: Feed, window: tuple[datetime, datetime],
             latest_allowed: datetime) -> DataFrame:
    """Add ``reason``: null for a good record, else why it is quarantined.

    Duplicates (a repeated key among good records) get the reason ``duplicate``; the first
    by ``feed.order_by`` is kept.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    reason = F.when(F.col(CORRUPT).isNotNull(), F.lit("malformed_json"))
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
    from pyspark.sql import functions as F

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
        counts = {
            row["reason"]: row["count"]
            for row in classified.groupBy("reason").count().collect()
        }
        result.read = sum(counts.values())
        result.bronze = counts.pop(None, 0)
        result.duplicates = counts.get(DUPLICATE, 0)
        result.quarantined = sum(counts.values()) - result.duplicates
        result.reasons = dict(sorted(counts.items()))

        run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        casts = feed.casts()
        partition = [feed.partition_by().alias(feed.partition_column)] if feed.partition_by else []
        good = classified.where(F.col("reason").isNull()).select(
            *[expr.alias(name) for name, expr in casts.items()],
            F.col("source_file"),
            F.lit(now).alias("ingested_at"),
            *partition,
        )
        bad = classified.where(F.col("reason").isNotNull()).select(
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
        metadata = {"window": days, "counts": result.as_dict()}
        partitions = days if feed.partition_column else None
        result.outputs = stage_and_publish(
            [
                # What is published must reconcile with what was read:
                # read = bronze + quarantined + duplicates (duplicates are quarantined too).
                Output(good, feed.bronze, partitions,
                       (lambda staged: gate(staged, result)) if gate else None,
                       expected_rows=result.bronze),
                Output(bad, feed.quarantine, days,
                       expected_rows=result.quarantined + result.duplicates),
            ],
            s3,
            run_id,
            metadata,
        )
    finally:
        classified.unpersist()
    result.outputs["bronze_uri"] = feed.bronze.uri(s3, "s3")
    result.duration_s = time.perf_counter() - started
    log.info(
        "%s bronze %s..%s: read %d, bronze %d, quarantined %d, duplicates %d",
        feed.name, days[0], days[-1], result.read, result.bronze, result.quarantined,
        result.duplicates,
    )
    return result
