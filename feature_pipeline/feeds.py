"""The raw feeds: each one's fields, its typed bronze columns and its quarantine checks.

A ``Feed`` says what a valid raw record of that feed is and how it becomes a typed bronze
row; ``bronze`` applies it. Raw fields are read as strings, so every cast is a ``try_cast``
and every check is true for exactly the records that cast would lose or distort.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from feature_pipeline.publish import TableRef
from fraud_platform import layout

if TYPE_CHECKING:
    from pyspark.sql import Column


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
        (
            "invalid_is_fraud",
            ~F.coalesce(_c("is_fraud").isin("0", "1", "0.0", "1.0"), F.lit(False)),
        ),
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
    raw_fields=layout.TRANSACTION_FIELDS,
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
    raw_fields=(
        "card_id",
        "account_id",
        "issue_date",
        "credit_limit",
        "home_latitude",
        "home_longitude",
    ),
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
    raw_fields=(
        "merchant_id",
        "merchant_category",
        "merchant_latitude",
        "merchant_longitude",
        "is_online",
    ),
    key="merchant_id",
    casts=_merchant_casts,
    checks=_merchant_checks,
    partition_by=None,
    partition_column=None,
    landing_partition=None,
)

FEEDS = {feed.name: feed for feed in (TRANSACTIONS, LABELS, CARDS, MERCHANTS)}
