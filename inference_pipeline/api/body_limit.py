"""A cap on request bodies, applied before a byte of an oversized body is read.

Hand-written because neither Starlette nor uvicorn caps bodies: without it an
unauthenticated client could send a body of any size and the app read it whole before
answering 401 (measured: 300 MB took the process from 420 MB to 1.12 GB resident). A
declared ``Content-Length`` over the cap is refused at once; a chunked body is counted as
it arrives and refused at the first chunk past the cap. Either way the answer is a 413
with a reason, sent before routing, parsing and authentication.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from inference_pipeline.api.asgi import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: 413 for a request body larger than ``limit`` bytes."""

    def __init__(
        self, app: ASGIApp, limit: int, on_reject: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        state = {"received": 0, "refused": False}

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.limit:
                    state["refused"] = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not state["refused"]:  # the app's answer after a refusal goes nowhere
                await send(message)

        await self.app(scope, counted_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        if self.on_reject:
            self.on_reject()
        body = json.dumps({"detail": f"request body larger than {self.limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
