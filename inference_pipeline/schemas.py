"""The scoring API's payloads: what a card network sends and what it gets back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fraud_platform.decision import Decision

TIMESTAMP_MAX_AGE = timedelta(days=730)
"""Oldest transaction time scored, relative to now: replays of the last two years are
scored; anything older is a client bug (a zero date, seconds taken for milliseconds)."""
TIMESTAMP_MAX_AHEAD = timedelta(minutes=15)
"""Latest transaction time scored, relative to now: clock skew between the card network
and us, not a date in the future."""


class Transaction(BaseModel):
    """One card transaction to score. Location is optional: without it the distance and
    speed features are missing (flagged in ``missing_features``), the rest still scores."""

    model_config = ConfigDict(
        extra="ignore",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": "tx-0001",
                    "card_id": "card_000042",
                    "merchant_id": "m_00017",
                    "amount": 42.5,
                    "timestamp": "2026-11-22T10:15:00Z",
                    "latitude": 40.4168,
                    "longitude": -3.7038,
                    "channel": "card_present",
                }
            ]
        },
    )

    transaction_id: str = Field(min_length=1, max_length=128)
    card_id: str = Field(min_length=1, max_length=128)
    merchant_id: str = Field(min_length=1, max_length=128)
    amount: float = Field(
        ge=0,
        le=1e9,
        allow_inf_nan=False,
        description="In the card's currency; 0 for a verification.",
    )
    timestamp: datetime = Field(
        description=(
            "When the transaction happened; without an offset it is UTC. Accepted range, "
            f"relative to the server's clock: from {TIMESTAMP_MAX_AGE.days} days ago to "
            f"{TIMESTAMP_MAX_AHEAD.seconds // 60} minutes ahead; outside it the request is "
            "a 422."
        )
    )
    latitude: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    longitude: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    channel: str | None = Field(
        default=None, max_length=32, description="card_present or online (informational)."
    )

    @field_validator("timestamp")
    @classmethod
    def _utc_within_range(cls, value: datetime) -> datetime:
        """UTC, and within the accepted range around now (see the field's description)."""
        try:
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 lies before datetime.min in UTC
            raise ValueError("timestamp is out of range") from None
        now = datetime.now(UTC)
        if not now - TIMESTAMP_MAX_AGE <= value <= now + TIMESTAMP_MAX_AHEAD:
            raise ValueError(
                f"timestamp must lie between {TIMESTAMP_MAX_AGE.days} days before and "
                f"{TIMESTAMP_MAX_AHEAD.seconds // 60} minutes after the server's clock "
                f"({now.isoformat(timespec='seconds')})"
            )
        return value


class ModelRef(BaseModel):
    """The model version that produced a score."""

    name: str
    version: str
    alias: str


class Score(BaseModel):
    """A fraud score and the decision its model's thresholds give."""

    transaction_id: str
    card_id: str
    fraud_probability: float = Field(ge=0, le=1)
    decision: Decision
    model: ModelRef
    feature_age_seconds: float | None = Field(
        description="Transaction time minus the event time of the newest stored feature "
        "row used; null when the card and merchant have no stored features."
    )
    card_unknown: bool = Field(
        description="No stored features for the card: scored from "
        "the request alone (missing features)."
    )
    merchant_unknown: bool
    missing_features: list[str] = Field(description="Model inputs that had no value.")


class BatchScores(BaseModel):
    scores: list[Score]


class Problem(BaseModel):
    """An error response: why the request was not scored."""

    detail: str


def request_body(row: Any) -> dict[str, Any]:
    """The ``/v1/score`` payload of a transaction row (any object with its attributes)."""
    return {
        "transaction_id": row.transaction_id,
        "card_id": row.card_id,
        "merchant_id": row.merchant_id,
        "amount": float(row.amount),
        "timestamp": row.event_timestamp.isoformat(),
        "latitude": float(row.latitude),
        "longitude": float(row.longitude),
        "channel": row.channel,
    }


# Events that update the online state without being scored (docs/features.md, "Serving").


class Label(BaseModel):
    """A label (chargeback or confirmation) of a transaction, known from ``label_timestamp``.

    The merchant is part of the label: the merchant's fraud counts are updated from it
    without looking the transaction up (chargeback feeds carry the acceptor).
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    transaction_id: str = Field(min_length=1, max_length=128)
    merchant_id: str = Field(min_length=1, max_length=128)
    is_fraud: bool
    label_timestamp: datetime = Field(
        description="When the label became known; without an offset it is UTC."
    )

    @field_validator("label_timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Applied(BaseModel):
    """What a batch of events did to the online state."""

    applied: int = Field(description="Events inserted into the state.")
    unchanged: int = Field(
        description="Events already applied (same transaction_id) or "
        "too old to matter: applying them again changes nothing."
    )
    ignored: int = Field(0, description="Labels that are not frauds (no state counts them).")
