"""The API key check every scoring and event route depends on."""

# No `from __future__ import annotations`: FastAPI reads the dependency's annotations, and
# they refer to the key scheme built in api_key_check.
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader

from inference_pipeline.api.metrics import ApiMetrics
from inference_pipeline.settings import ApiSettings

API_KEY_HEADER = "X-API-Key"


def key_accepted(api: ApiSettings) -> Callable[[bytes | None], bool]:
    """Whether a request's key (the header's raw value, None when absent) is accepted: the
    configured key, compared in constant time, or any when auth is explicitly disabled."""
    expected = api.api_key.get_secret_value().encode() if api.api_key else b""

    def accepted(key: bytes | None) -> bool:
        return api.auth_disabled or (key is not None and hmac.compare_digest(key, expected))

    return accepted


def api_key_check(api: ApiSettings, metrics: ApiMetrics) -> Callable[[str | None], Awaitable[None]]:
    """A dependency that answers 401 unless the request's key is accepted
    (``key_accepted``)."""
    key_header = APIKeyHeader(
        name=API_KEY_HEADER,
        auto_error=False,
        description="Required unless FRAUD_API_AUTH_DISABLED=true.",
    )
    accepted = key_accepted(api)

    async def authorize(key: Annotated[str | None, Security(key_header)]) -> None:
        # Starlette decodes header values as Latin-1: encoding them back gives the raw bytes.
        if not accepted(None if key is None else key.encode("latin-1")):
            metrics.errors.labels("unauthorized").inc()
            raise HTTPException(
                401,
                detail=f"missing or wrong {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )

    return authorize
