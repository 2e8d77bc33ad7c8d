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


def api_key_check(api: ApiSettings, metrics: ApiMetrics) -> Callable[[str | None], Awaitable[None]]:
    """A dependency that answers 401 unless the request carries the configured key (in
    constant time), or auth is explicitly disabled."""
    key_header = APIKeyHeader(
        name=API_KEY_HEADER,
        auto_error=False,
        description="Required unless FRAUD_API_AUTH_DISABLED=true.",
    )
    expected = api.api_key.get_secret_value().encode() if api.api_key else b""

    async def authorize(key: Annotated[str | None, Security(key_header)]) -> None:
        if api.auth_disabled:
            return
        if key is None or not hmac.compare_digest(key.encode(), expected):
            metrics.errors.labels("unauthorized").inc()
            raise HTTPException(
                401,
                detail=f"missing or wrong {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )

    return authorize
