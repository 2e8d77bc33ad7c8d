"""What each table must satisfy: thresholds from the environment and one small spec per table.

A gate is data, not code: a :class:`Gate` names a table's key, its required and optional
columns, the ranges and sets its values must fall in and the timestamp its freshness is
measured on. ``expectations.expectations_for`` turns a gate, the thresholds and the run's
facts (the expected row count, the window end) into Great Expectations expectations.

Two kinds of checks are told apart on purpose. Invariants that the pipeline itself
guarantees (keys present and unique, amounts non-negative, counts non-negative) must hold
for every row: one violation is a bug, so they carry no ``mostly``. Plausibility checks on
the data (optional fields present, categorical values in the known set, coordinates on the
globe) tolerate a small share of exceptions, set by :class:`GateThresholds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraud_platform import layout
from fraud_platform.windows import CARD_WINDOWS, MERCHANT_WINDOWS

COMPLETENESS = "completeness"
UNIQUENESS = "uniqueness"
VALIDITY = "validity"
VOLUME = "volume"
FRESHNESS = "freshness"
SCHEMA = "schema"
CONSISTENCY = "consistency"


class GateThresholds(BaseSettings):
    """Tolerances of the gates, overridable per environment (``FRAUD_GX_VALIDITY=0.99``)."""

    model_config = SettingsConfigDict(env_prefix="FRAUD_GX_", extra="ignore")

    completeness: float = Field(default=0.99, ge=0.0, le=1.0)
    """Minimum share of non-null values in optional columns (keys and timestamps: always 1)."""
    uniqueness: float = Field(default=1.0, ge=0.0, le=1.0)
    """Minimum share of rows whose key is unique."""
    validity: float = Field(default=0.999, ge=0.0, le=1.0)
    """Minimum share of values inside their range or set, for plausibility checks."""
    row_count_tolerance: float = Field(default=0.05, ge=0.0)
    """Allowed relative deviation of a bronze table's row count from the expected count."""
    max_staleness_hours: float = Field(default=24.0, gt=0.0)
    """The newest timestamp must be at most this many hours before the window end."""


@dataclass(frozen=True)
class Range:
    """``min_value <= column <= max_value`` (either bound optional); nulls are not judged.

    ``strict``: every value must comply (an invariant); otherwise a share of at least
    ``GateThresholds.validity``.
    """

    column: str
    min_value: float | None = None
    max_value: float | None = None
    strict: bool = False


@dataclass(frozen=True)
class InSet:
    """``column`` takes its values from ``values``; nulls are not judged."""

    column: str
    values: tuple[Any, ...]
    strict: bool = False


@dataclass(frozen=True)
class Ordered:
    """``greater >= lesser`` on every row where both are present (e.g. max >= mean)."""

    greater: str
    lesser: str


@dataclass(frozen=True)
class Gate:
    """The checks of one table.

    Attributes:
        name: The gate's name; also the folder of its results under ``validation/``.
        key: Columns that identify a row: never null, unique together.
        required: Other columns that are never null.
        optional: Columns whose non-null share must reach ``completeness``.
        ranges: Numeric bounds.
        sets: Allowed values.
        ordered: Pairs of columns in a fixed order.
        timestamp: The column compared with the window end: never after it.
        fresh: Also require the newest ``timestamp`` within ``max_staleness_hours`` of the
            window end (a table whose timestamps are event times in the window).
        exact_row_count: The row count must equal the expected count (feature tables: one
            row per distinct entity and instant); otherwise within ``row_count_tolerance``.
    """

    name: str
    key: tuple[str, ...]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    ranges: tuple[Range, ...] = ()
    sets: tuple[InSet, ...] = ()
    ordered: tuple[Ordered, ...] = ()
    timestamp: str | None = None
    fresh: bool = False
    exact_row_count: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the gate names, in a stable order, without repeats."""
        named = [
            *self.key,
            *self.required,
            *self.optional,
            *(r.column for r in self.ranges),
            *(s.column for s in self.sets),
            *(c for pair in self.ordered for c in (pair.greater, pair.lesser)),
            *([self.timestamp] if self.timestamp else []),
        ]
        return tuple(dict.fromkeys(named))


CURRENCIES = (
    "EUR",
    "USD",
    "GBP",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "HUF",
    "RON",
    "BGN",
    "ISK",
    "TRY",
    "JPY",
    "CNY",
    "HKD",
    "SGD",
    "KRW",
    "INR",
    "AUD",
    "NZD",
    "CAD",
    "MXN",
    "BRL",
    "ZAR",
    "AED",
)
"""ISO 4217 codes the platform settles in."""
CHANNELS = ("card_present", "online")


def _latlon(lat: str, lon: str) -> tuple[Range, Range]:
    return Range(lat, -90.0, 90.0), Range(lon, -180.0, 180.0)


def _non_negative(*columns: str) -> tuple[Range, ...]:
    return tuple(Range(column, 0.0, strict=True) for column in columns)


BRONZE_TRANSACTIONS = Gate(
    name=f"{layout.BRONZE}_{layout.TRANSACTIONS}",
    key=("transaction_id",),
    required=("card_id", "merchant_id", "event_timestamp", "amount"),
    optional=("currency", "channel", "merchant_category", "latitude", "longitude"),
    ranges=(*_non_negative("amount"), *_latlon("latitude", "longitude")),
    sets=(InSet("channel", CHANNELS), InSet("currency", CURRENCIES)),
    timestamp="event_timestamp",
    fresh=True,
)

BRONZE_LABELS = Gate(
    name=f"{layout.BRONZE}_{layout.LABELS}",
    key=("transaction_id",),
    required=("is_fraud", "label_timestamp"),
    sets=(InSet("is_fraud", (0, 1), strict=True),),
    timestamp="label_timestamp",
    fresh=True,
)

BRONZE_CARDS = Gate(
    name=f"{layout.BRONZE}_{layout.CARDS}",
    key=("card_id",),
    required=("issue_date", "credit_limit"),
    optional=("account_id", "home_latitude", "home_longitude"),
    ranges=(*_non_negative("credit_limit"), *_latlon("home_latitude", "home_longitude")),
)

BRONZE_MERCHANTS = Gate(
    name=f"{layout.BRONZE}_{layout.MERCHANTS}",
    key=("merchant_id",),
    required=("is_online",),
    optional=("merchant_category", "merchant_latitude", "merchant_longitude"),
    ranges=_latlon("merchant_latitude", "merchant_longitude"),
)

CARD_TRANSACTION_FEATURES = Gate(
    name=layout.CARD_TRANSACTION_FEATURES,
    key=("card_id", "event_timestamp"),
    required=("created",),
    # Every expectation costs Spark jobs: sums >= 0 and max >= mean bound the means and
    # maxes well enough without a range check of their own.
    ranges=(
        *_non_negative(
            *(f"{stat}_{w}" for stat in ("txn_count", "amount_sum") for w in CARD_WINDOWS),
            "distinct_merchants_24h",
            "seconds_since_prev_txn",
            "distance_from_prev_km",
            "speed_from_prev_kmh",
            "last_amount",
        ),
        *_latlon("last_latitude", "last_longitude"),
    ),
    ordered=tuple(Ordered(f"amount_max_{w}", f"amount_mean_{w}") for w in CARD_WINDOWS),
    timestamp="event_timestamp",
    fresh=True,
    exact_row_count=True,
)

CARD_PROFILE_FEATURES = Gate(
    # event_timestamp is the card's issue date, not an event of the window: no freshness,
    # and a backfill may run with a window ending before some cards were issued.
    name=layout.CARD_PROFILE_FEATURES,
    key=("card_id", "event_timestamp"),
    required=("created", "issue_timestamp", "credit_limit"),
    optional=("home_latitude", "home_longitude"),
    ranges=(*_non_negative("credit_limit"), *_latlon("home_latitude", "home_longitude")),
    exact_row_count=True,
)

MERCHANT_RISK_FEATURES = Gate(
    name=layout.MERCHANT_RISK_FEATURES,
    key=("merchant_id", "event_timestamp"),
    required=("created",),
    ranges=(
        *_non_negative(
            *(f"{stat}_{w}" for stat in ("txn_count", "fraud_count") for w in MERCHANT_WINDOWS)
        ),
        # Labels count by when they became known and transactions by when they happened,
        # so a rate exceeds 1 whenever a window's frauds, labelled in it, happened before
        # it: common at a small merchant in a one-day window. Only the sign is invariant.
        *(Range(f"fraud_rate_{w}", 0.0, None, strict=True) for w in MERCHANT_WINDOWS),
    ),
    timestamp="event_timestamp",
    fresh=True,
    exact_row_count=True,
)

GATES: dict[str, Gate] = {
    gate.name: gate
    for gate in (
        BRONZE_TRANSACTIONS,
        BRONZE_LABELS,
        BRONZE_CARDS,
        BRONZE_MERCHANTS,
        CARD_TRANSACTION_FEATURES,
        CARD_PROFILE_FEATURES,
        MERCHANT_RISK_FEATURES,
    )
}


def get_gate(name: str) -> Gate:
    """The gate called ``name``.

    Raises:
        KeyError: naming the known gates.
    """
    try:
        return GATES[name]
    except KeyError:
        raise KeyError(f"unknown gate {name!r}; known: {', '.join(sorted(GATES))}") from None
