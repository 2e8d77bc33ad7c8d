"""The direct scoring path: a valid ``POST /v1/score`` is scored without the framework;
every other request reaches the route with its body intact, so the route's refusals stay
the contract; a 503 is rendered as FastAPI renders it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from fastapi import HTTPException

from inference_pipeline.api.direct_score import DirectScore, json_body
from inference_pipeline.schemas import Transaction

KEY = b"k3y"
VALID = json.dumps(
    {
        "transaction_id": "t1",
        "card_id": "c1",
        "merchant_id": "m1",
        "amount": 12.5,
        "timestamp": datetime.now(UTC).isoformat(),
    }
).encode()


class Route:
    """The framework's side: records the request and the whole body it reads."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b"route"})


def call(
    app: DirectScore,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    method: str = "POST",
    path: str = "/v1/score",
) -> tuple[int, dict[bytes, bytes], bytes]:
    chunks = [body[:10], body[10:]]  # the body in two messages, as a client may send it
    sent: list[dict] = []

    async def receive() -> dict:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def app_with(scored: list[Transaction], refuse: HTTPException | None = None) -> tuple:
    route = Route()

    async def score_one(transaction: Transaction) -> bytes:
        if refuse is not None:
            raise refuse
        scored.append(transaction)
        return b'{"ok":true}'

    return DirectScore(route, score_one, lambda key: key == KEY), route


def test_a_valid_request_is_scored_directly_from_the_whole_body() -> None:
    scored: list[Transaction] = []
    app, route = app_with(scored)
    status, headers, body = call(app, VALID, [(b"x-api-key", KEY)])
    assert (status, body, headers[b"content-length"]) == (200, b'{"ok":true}', b"11")
    assert headers[b"content-type"] == b"application/json"
    assert [t.transaction_id for t in scored] == ["t1"] and route.bodies == []


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (VALID, []),  # no key
        (VALID, [(b"x-api-key", b"wrong")]),
        (VALID, [(b"x-api-key", KEY), (b"content-type", b"text/plain")]),
        (b'{"card_id": "c1"', [(b"x-api-key", KEY)]),  # not JSON
        (VALID.replace(b"12.5", b"-1"), [(b"x-api-key", KEY)]),  # a field out of range
    ],
    ids=["no-key", "wrong-key", "not-json-type", "invalid-json", "invalid-field"],
)
def test_every_other_request_reaches_the_route_with_its_body(body, headers) -> None:
    scored: list[Transaction] = []
    app, route = app_with(scored)
    assert call(app, body, headers)[0] == 418
    assert route.bodies == [body] and scored == []


def test_other_methods_and_paths_are_the_routes() -> None:
    app, route = app_with([])
    assert call(app, VALID, [(b"x-api-key", KEY)], method="GET")[0] == 418
    assert call(app, VALID, [(b"x-api-key", KEY)], path="/v1/score/batch")[0] == 418
    assert len(route.bodies) == 2


def test_a_refusal_while_scoring_is_rendered_as_fastapi_renders_it() -> None:
    refusal = HTTPException(503, detail="redis unavailable", headers={"Retry-After": "1"})
    app, _ = app_with([], refuse=refusal)
    status, headers, body = call(app, VALID, [(b"x-api-key", KEY)])
    assert status == 503 and headers[b"retry-after"] == b"1"
    assert json.loads(body) == {"detail": "redis unavailable"}


@pytest.mark.parametrize(
    ("content_type", "parsed"),
    [
        (None, True),
        (b"application/json", True),
        (b"Application/JSON; charset=utf-8", True),
        (b"application/problem+json", True),
        (b"text/plain", False),
        (b"application/x-www-form-urlencoded", False),
        (b"json", False),
    ],
)
def test_json_body_follows_fastapi(content_type: bytes | None, parsed: bool) -> None:
    assert json_body(content_type) is parsed
