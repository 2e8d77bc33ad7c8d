"""The in-flight cap: past the limit, ``/v1/`` requests get a 503 with ``Retry-After`` at
once, without their body being read; health routes always pass; a finished request frees
its place."""

from __future__ import annotations

import asyncio
import json

from inference_pipeline.api.in_flight import InFlightLimit


class SlowApp:
    """An ASGI app that holds each request until released; records the bodies it read."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.read: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        self.read.append((await receive())["body"])
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": path.encode(), "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "headers": []}, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def test_requests_past_the_limit_get_503_at_once_and_health_passes() -> None:
    async def scenario() -> None:
        inner = SlowApp()
        rejected: list[int] = []
        app = InFlightLimit(inner, limit=2, on_reject=lambda: rejected.append(1))
        held = [asyncio.create_task(call(app, f"/v1/score?{i}")) for i in range(2)]
        await asyncio.sleep(0.01)
        assert app.in_flight == 2

        status, headers, body = await asyncio.wait_for(call(app, "/v1/score?late"), 1)
        assert status == 503 and headers[b"retry-after"] == b"1"
        assert json.loads(body) == {"detail": "overloaded: 2 requests in flight"}
        assert rejected == [1]
        assert b"/v1/score?late" not in inner.read  # refused before its body was read

        health = asyncio.create_task(call(app, "/healthz"))
        await asyncio.sleep(0.01)
        assert not health.done() and app.in_flight == 2  # passed through, not counted

        inner.release.set()
        assert [s for s, _, _ in await asyncio.gather(*held, health)] == [200, 200, 200]
        assert app.in_flight == 0
        assert (await call(app, "/v1/score?again"))[0] == 200

    asyncio.run(scenario())
