"""Settings of the scoring API and batch scoring, read from the environment when
instantiated (nothing at import time)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraud_platform.model_registry import CHAMPION


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


class ApiSettings(BaseSettings):
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

    @model_validator(mode="after")
    def _key_or_explicitly_open(self) -> ApiSettings:
        if not self.auth_disabled and not (self.api_key and self.api_key.get_secret_value()):
            raise ValueError(
                "FRAUD_API_KEY is not set: set it, or set FRAUD_API_AUTH_DISABLED=true to "
                "run the API without authentication (local use only)"
            )
        return self
