"""Settings of the scoring API and batch scoring, read from the environment when
instantiated (nothing at import time)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraud_platform.model_registry import CHAMPION
from fraud_platform.settings import SecretSettings

TRANSACTION_MAX_BYTES = 1024
"""Budget of one transaction's JSON in a request body: a typical one takes about 230
bytes, one with every string field at its maximum length about 500."""


class ModelSettings(BaseSettings):
    """Which registered model is served, and how often the alias is checked."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field(default="fraud-detector", validation_alias="FRAUD_MODEL_NAME")
    alias: str = Field(default=CHAMPION, validation_alias="FRAUD_MODEL_ALIAS")
    refresh_seconds: float = Field(
        default=30.0, gt=0, validation_alias="FRAUD_MODEL_REFRESH_SECONDS"
    )
    """How often the API asks the registry where the alias points; a move is served from
    the next check on, without a restart."""


class ApiSettings(SecretSettings):
    """The scoring API: authentication, request limits, Redis timeouts."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    api_key: SecretStr | None = Field(default=None, validation_alias="FRAUD_API_KEY")
    auth_disabled: bool = Field(default=False, validation_alias="FRAUD_API_AUTH_DISABLED")
    batch_max_transactions: int = Field(
        default=500, ge=1, le=10_000, validation_alias="FRAUD_BATCH_MAX_TRANSACTIONS"
    )
    redis_timeout_seconds: float = Field(
        default=0.25, gt=0, validation_alias="FRAUD_REDIS_TIMEOUT_SECONDS"
    )
    """Socket timeout of the feature reads: a Redis that does not answer in time is a 503,
    not a request hanging for the client's whole budget."""
    queue_max_transactions: int = Field(
        default=1024, ge=1, validation_alias="FRAUD_QUEUE_MAX_TRANSACTIONS"
    )
    """Single requests waiting for a batch at most; one more is shed with a 503."""
    queue_max_wait_seconds: float = Field(
        default=0.05, gt=0, validation_alias="FRAUD_QUEUE_MAX_WAIT_SECONDS"
    )
    """A queued request not in a batch after this long is shed with a 503: under overload
    the accepted requests keep their latency instead of every request growing late."""
    access_log: bool = Field(default=True, validation_alias="FRAUD_API_ACCESS_LOG")
    """One JSON line per request (method, path, status, duration, request id)."""
    max_in_flight: int = Field(default=128, ge=1, validation_alias="FRAUD_MAX_IN_FLIGHT")
    """Scoring and event requests a process holds at once; one more is a 503 with
    ``Retry-After`` before its body is read. About the process's throughput times the
    latency budget (3,000 req/s x 50 ms is 150 on one core)."""
    max_body_bytes: int | None = Field(
        default=None, ge=1024, validation_alias="FRAUD_MAX_BODY_BYTES"
    )
    """Largest request body read; a larger one is a 413 before it is read or
    authenticated. Default: :data:`TRANSACTION_MAX_BYTES` per transaction of the largest
    batch, plus 1 KiB."""

    @property
    def body_limit(self) -> int:
        """The request-body cap in bytes, consistent with the batch limit."""
        return self.max_body_bytes or (self.batch_max_transactions * TRANSACTION_MAX_BYTES + 1024)

    @model_validator(mode="after")
    def _key_or_explicitly_open(self) -> ApiSettings:
        if not self.auth_disabled and not (self.api_key and self.api_key.get_secret_value()):
            raise ValueError(
                "FRAUD_API_KEY is not set: set it, or set FRAUD_API_AUTH_DISABLED=true to "
                "run the API without authentication (local use only)"
            )
        return self
