"""A cap on the requests in flight, applied before anything is read or parsed.

The micro-batcher's queue is bounded, but a request reaches it only after its body was
read, parsed, validated and authenticated; under an open-loop overload (clients that do
not wait for answers before sending more) the requests in front of the batcher grow
without bound and every answer, 503s included, comes seconds late (measured: 2x the
saturation rate gave an accepted p99 of 11.9 s). This counts the scoring and event
requests the app holds and answers one past the cap with a 503 and ``Retry-After`` at
once, so the work the process accepts stays what it can do within the latency budget.
Health and metrics routes are never refused: probes must see an overloaded process as
alive. Hand-written because uvicorn's ``limit_concurrency`` counts connections too and
answers without ``Retry-After`` or a reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from inference_pipeline.api.asgi import ASGIApp, Receive, Scope, Send

LIMITED_PREFIX = "/v1/"
"""The routes that do work per request (scoring, labels, events)."""


class InFlightLimit:
    """ASGI middleware: 503 with ``Retry-After`` for a ``/v1/`` request beyond ``limit``."""

    def __init__(
        self, app: ASGIApp, limit: int, on_reject: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.on_reject = on_reject
        self.in_flight = 0
        body = json.dumps({"detail": f"overloaded: {limit} requests in flight"}).encode()
        self._start = {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        }
        self._body = {"type": "http.response.body", "body": body}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LIMITED_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            if self.on_reject:
                self.on_reject()
            await send(self._start)
            await send(self._body)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
