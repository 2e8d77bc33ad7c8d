"""A request id on every log line of a request, and the access log line, written after
the response.

Pure ASGI (not Starlette's ``BaseHTTPMiddleware``, which costs a task per request): it
takes the caller's ``X-Request-ID`` (when it is a short token) or makes one, binds it to
the logging context for the request and returns it in the response's headers. The access
line (method, path, status, duration) is logged once the response is sent: uvicorn's own
access log formats its line before it writes the response headers, which put the JSON
rendering (about 0.1 ms) inside every request's latency.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import structlog

HEADER = b"x-request-id"
_VALID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
access = logging.getLogger("inference_pipeline.access")


class RequestIdMiddleware:
    """Bind ``request_id`` around each HTTP request; echo it as ``X-Request-ID``; log the
    access line after the response when ``access_log``."""

    def __init__(self, app: Any, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == HEADER), None)
        request_id = given if given and _VALID.fullmatch(given) else uuid.uuid4().hex.encode()
        status = 0

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, request_id)]
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id.decode())
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log:
                access.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
            structlog.contextvars.reset_contextvars(**tokens)
