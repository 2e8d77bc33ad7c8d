"""Silver: the feature tables of a window, computed from bronze and published atomically."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from feature_pipeline.bronze import dates_in
from feature_pipeline.features import (
    card_profile_features,
    card_transaction_features,
    merchant_risk_features,
)
from feature_pipeline.features.card_transactions import LOOKBACK_SECONDS
from feature_pipeline.feeds import CARDS, LABELS, TRANSACTIONS
from feature_pipeline.publish import Gate, Output, TableRef, stage_and_publish, table_exists
from fraud_platform import layout
from fraud_platform.runs import new_run_id
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

CARD_TRANSACTIONS = TableRef(layout.SILVER, layout.CARD_TRANSACTION_FEATURES, "event_date")
CARD_PROFILE = TableRef(layout.SILVER, layout.CARD_PROFILE_FEATURES)
MERCHANT_RISK = TableRef(layout.SILVER, layout.MERCHANT_RISK_FEATURES, "event_date")
FEATURE_TABLES = (CARD_TRANSACTIONS, CARD_PROFILE, MERCHANT_RISK)

CARD_COLUMNS = (
    "card_id string, issue_date date, credit_limit double, home_latitude double, "
    "home_longitude double"
)
"""The bronze cards columns the profile is built from (an empty frame stands in for them)."""

LABEL_LOOKBACK = timedelta(days=120)
"""How far back a label's transaction may lie (chargebacks arrive weeks late)."""

FeatureGate = Callable[["DataFrame", str, int], dict[str, Any]]
"""Validation of a staged feature table, given the table name and its expected row count."""


@dataclass(frozen=True)
class Window:
    """The days a run produces, and the instants they span."""

    start: date
    end: date

    @property
    def start_ts(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time(), UTC)

    @property
    def end_ts(self) -> datetime:
        """The instant after the window's last day."""
        return datetime.combine(self.end + timedelta(days=1), datetime.min.time(), UTC)

    def days(self) -> list[str]:
        return dates_in(self.start, self.end)


def read_bronze(
    spark: SparkSession, table: TableRef, s3: S3Settings, since: date | None, until: date | None
) -> DataFrame:
    """A bronze table, pruned to partitions in ``[since, until]`` when it is partitioned."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(table.uri(s3))
    if table.partition_column and since is not None and until is not None:
        column = F.col(table.partition_column).cast("date")
        frame = frame.where(column.between(F.lit(since), F.lit(until)))
    return frame


def _cards(spark: SparkSession, s3: S3Settings) -> tuple[DataFrame, list[str]]:
    """Bronze cards, and the tables left empty for want of them.

    A source without reference data gets an empty profile table: the feature service (and
    ``feast apply``'s check of its sources) stays whole and the profile features read as
    missing, which the model handles like any other missing value.
    """
    if table_exists(CARDS.bronze, s3):
        return read_bronze(spark, CARDS.bronze, s3, None, None), []
    log.warning(
        "no bronze cards table: %s is published empty (its features are null)", CARD_PROFILE.name
    )
    return spark.createDataFrame([], CARD_COLUMNS), [CARD_PROFILE.name]


def compute_features(
    spark: SparkSession,
    start: date,
    end: date,
    s3: S3Settings | None = None,
    extra_label_delay: timedelta = timedelta(0),
    gate: FeatureGate | None = None,
) -> dict[str, Any]:
    """Compute and publish the feature tables for the days ``[start, end]``.

    Reads bronze from 30 days before ``start`` (the longest window), and labels known
    before the window's end. Rerunning a window replaces its partitions.

    Returns:
        JSON-safe metadata: rows per table, the window, outputs and the duration.
    """
    started = time.perf_counter()
    s3 = s3 or S3Settings()
    window = Window(start, end)
    created = datetime.now(UTC)
    history_start = start - timedelta(seconds=LOOKBACK_SECONDS)
    history = read_bronze(spark, TRANSACTIONS.bronze, s3, history_start, end).persist()
    labelled = read_bronze(spark, TRANSACTIONS.bronze, s3, history_start - LABEL_LOOKBACK, end)
    labels = _known_labels(spark, s3, window, history_start, extra_label_delay)
    try:
        expected = _expected_rows(history, window)
        frames = {
            CARD_TRANSACTIONS.name: card_transaction_features(
                history, window.start_ts, window.end_ts, created
            ),
            MERCHANT_RISK.name: merchant_risk_features(
                history,
                labels,
                window.start_ts,
                window.end_ts,
                created,
                extra_label_delay,
                labelled_transactions=labelled,
            ),
        }
        cards, empty = _cards(spark, s3)
        expected[CARD_PROFILE.name] = cards.count()
        frames[CARD_PROFILE.name] = card_profile_features(cards, created)
        outputs = _publish(frames, expected, window, s3, created, gate)
    finally:
        history.unpersist()
    duration = time.perf_counter() - started
    log.info("features %s..%s: %s in %.1fs", start, end, expected, duration)
    return {
        "window": [start.isoformat(), end.isoformat()],
        "rows": expected,
        "empty_for_lack_of_reference_data": empty,
        "outputs": outputs,
        "tables": {t.name: t.uri(s3, "s3") for t in FEATURE_TABLES},
        "duration_s": round(duration, 2),
    }


def _known_labels(
    spark: SparkSession,
    s3: S3Settings,
    window: Window,
    history_start: date,
    extra_label_delay: timedelta,
) -> DataFrame:
    """The bronze labels that can count for a transaction of the window: known before its
    end, and recent enough to fall in a 30-day window (plus the extra delay)."""
    from pyspark.sql import functions as F

    # A label counts at t if it became known (plus the extra delay) in the 30 days before t:
    # the labels of the days before that cannot count, and are not read.
    labels_since = history_start - timedelta(days=math.ceil(extra_label_delay / timedelta(days=1)))
    return read_bronze(spark, LABELS.bronze, s3, labels_since, window.end).where(
        F.col("label_timestamp") < F.lit(window.end_ts)
    )


def _expected_rows(history: DataFrame, window: Window) -> dict[str, int]:
    """Rows each event table must have: one per entity instant in the window, both
    counted in one pass."""
    from pyspark.sql import functions as F

    in_window = history.where(
        (F.col("event_timestamp") >= F.lit(window.start_ts))
        & (F.col("event_timestamp") < F.lit(window.end_ts))
    )
    distinct = in_window.agg(
        F.count_distinct("card_id", "event_timestamp").alias(CARD_TRANSACTIONS.name),
        F.count_distinct("merchant_id", "event_timestamp").alias(MERCHANT_RISK.name),
    ).first()
    if distinct is None:
        raise RuntimeError("a global aggregation returned no row")
    return {name: int(distinct[name]) for name in (CARD_TRANSACTIONS.name, MERCHANT_RISK.name)}


def _publish(
    frames: dict[str, DataFrame],
    expected: dict[str, int],
    window: Window,
    s3: S3Settings,
    created: datetime,
    gate: FeatureGate | None,
) -> dict[str, Any]:
    """Stage every feature table, gate each against its expected rows, publish them all."""

    def gate_for(name: str) -> Gate | None:
        if gate is None:
            return None
        return lambda staged: gate(staged, name, expected[name])

    return stage_and_publish(
        [
            Output(
                frames[t.name],
                t,
                window.days() if t.partition_column else None,
                gate_for(t.name),
                expected_rows=expected[t.name],
            )
            for t in FEATURE_TABLES
        ],
        s3,
        new_run_id(created),
        {"window": window.days(), "expected_rows": expected},
    )
