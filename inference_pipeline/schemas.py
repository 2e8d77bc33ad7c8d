"""The scoring API's payloads: what a card network sends and what it gets back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Decision = Literal["approve", "review", "decline"]


class Transaction(BaseModel):
    """One card transaction to score. Location is optional: without it the distance and
    speed features are missing (flagged in ``missing_features``), the rest still scores."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, json_schema_extra={
        "examples": [{
            "transaction_id": "tx-0001", "card_id": "card_000042", "merchant_id": "m_00017",
            "amount": 42.5, "timestamp": "2026-11-22T10:15:00Z", "latitude": 40.4168,
            "longitude": -3.7038, "channel": "card_present",
        }]
    })

    transaction_id: str = Field(min_length=1, max_length=128)
    card_id: str = Field(min_length=1, max_length=128)
    merchant_id: str = Field(min_length=1, max_length=128)
    amount: float = Field(ge=0, le=1e9, allow_inf_nan=False, description="In the card's "
                          "currency; 0 for a verification.")
    timestamp: datetime = Field(description="When the transaction happened; without an "
                                "offset it is UTC.")
    latitude: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    longitude: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    channel: str | None = Field(default=None, max_length=32,
                                description="card_present or online (informational).")

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
        "row used; null when the card and merchant have no stored features.")
    card_unknown: bool = Field(description="No stored features for the card: scored from "
                               "the request alone (missing features).")
    merchant_unknown: bool
    missing_features: list[str] = Field(description="Model inputs that had no value.")


class BatchScores(BaseModel):
    scores: list[Score]


class Problem(BaseModel):
    """An error response: why the request was not scored."""

    detail: str


def request_body(row: Any) -> dict[str, Any]:
    """The ``/v1/score`` payload of a transaction row (any object with its attributes)."""
    return {"transaction_id": row.transaction_id, "card_id": row.card_id,
            "merchant_id": row.merchant_id, "amount": float(row.amount),
            "timestamp": row.event_timestamp.isoformat(), "latitude": float(row.latitude),
            "longitude": float(row.longitude), "channel": row.channel}
