"""``POST /v1/score`` answered in plain ASGI when the request is one the route would score.

Profiled under sequential load, the framework around the scoring endpoint (Starlette's
router, exception and exit-stack middlewares, FastAPI's dependency solving for the API
key, and the body parsed twice: JSON to Python objects, then those to the model) took
about a quarter of a request's CPU, as much as reading and updating the online state. This
middleware takes the requests the route would score (the accepted key, a JSON body, a
valid ``Transaction``), parses the body once with pydantic-core straight from the bytes
and scores it with the route's own ``ScoreOne``. Every other request (no or a wrong key,
another content type, a body that does not validate) goes on to FastAPI with its body
replayed, so the refusals, their counters and the documented contract stay the route's.
Hand-written because no framework option routes one hot path around the framework.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from inference_pipeline.api.asgi import ASGIApp, Message, Receive, Scope, Send
from inference_pipeline.schemas import Transaction

PATH = "/v1/score"
KEY_HEADER = b"x-api-key"
CONTENT_TYPE = b"content-type"
JSON_HEADERS = [(b"content-type", b"application/json")]


class DirectScore:
    """ASGI middleware: valid ``POST /v1/score`` requests scored without the framework."""

    def __init__(
        self,
        app: ASGIApp,
        score_one: Callable[[Transaction], Awaitable[bytes]],
        key_accepted: Callable[[bytes | None], bool],
    ) -> None:
        self.app = app
        self.score_one = score_one
        self.key_accepted = key_accepted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        key = content_type = None
        for name, value in scope["headers"]:  # the first of repeated headers, as Starlette
            if name == KEY_HEADER and key is None:
                key = value
            elif name == CONTENT_TYPE and content_type is None:
                content_type = value
        if not (self.key_accepted(key) and json_body(content_type)):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:  # the client left before sending its body: nobody to answer
            return
        try:
            transaction = Transaction.model_validate_json(body)
        except ValidationError:
            await self.app(scope, replay(body, receive), send)
            return
        try:
            payload = await self.score_one(transaction)
        except HTTPException as exc:  # rendered as FastAPI's handler renders it
            refusal = JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
            await respond(send, refusal.status_code, refusal.raw_headers, bytes(refusal.body))
            return
        headers = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        await respond(send, 200, headers, payload)


async def respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """A whole response in two ASGI messages."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def json_body(content_type: bytes | None) -> bool:
    """Whether FastAPI would parse the body as JSON: no content type, or
    ``application/json`` or ``application/*+json`` (parameters ignored)."""
    if content_type is None:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    main, _, sub = media.partition(b"/")
    return main == b"application" and (sub == b"json" or sub.endswith(b"+json"))


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A ``receive`` that gives ``body`` once, whole, then what the client sends next."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
