"""The scoring API under steady load, through a Redis outage, and through a model swap.

Each test drives real HTTP traffic at the API process of the served world from client
threads and records every status code: under load there must be no error at all; while
Redis is down, only 503s (never a 500), and scoring must be back within a second of Redis
answering again; while the champion alias moves, no request may fail and the new version
must take over.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest

from tests.inference.conftest import API_KEY, ServingWorld

pytestmark = pytest.mark.integration

STEADY_SECONDS = 60
STEADY_RATE = 100
"""Requests per second held for a minute: a sustained, not a peak, load."""


@dataclass
class Traffic:
    """Requests sent by client threads until stopped, each recorded as (time, status,
    model version)."""

    url: str
    body: dict
    rate_per_thread: float
    threads: int = 2
    records: list[tuple[float, int, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Traffic:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(10)

    def _run(self) -> None:
        interval = 1.0 / self.rate_per_thread
        with httpx.Client(base_url=self.url, headers={"X-API-Key": API_KEY}, timeout=5) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                try:
                    response = client.post("/v1/score", json=self.body)
                    version = (
                        response.json()["model"]["version"] if response.status_code == 200 else None
                    )
                    self.records.append((time.monotonic(), response.status_code, version))
                except httpx.HTTPError:
                    self.records.append((time.monotonic(), 0, None))
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    def statuses(self, since: float = 0.0) -> Counter:
        return Counter(status for at, status, _ in list(self.records) if at >= since)


def known_body(world: ServingWorld) -> dict:
    from fraud_platform.point_in_time import read_transactions
    from fraud_platform.settings import S3Settings

    end = world.materialized_until
    last = read_transactions(end - timedelta(days=1), end, S3Settings()).iloc[-1]
    return {
        "transaction_id": "load",
        "card_id": last.card_id,
        "merchant_id": last.merchant_id,
        "amount": float(last.amount),
        "timestamp": (last.event_timestamp + timedelta(minutes=1)).isoformat(),
        "latitude": float(last.latitude),
        "longitude": float(last.longitude),
    }


def test_a_steady_rate_for_a_minute_has_no_errors(world: ServingWorld) -> None:
    traffic = Traffic(world.url, known_body(world), rate_per_thread=STEADY_RATE / 4, threads=4)
    started = time.monotonic()
    with traffic:
        time.sleep(STEADY_SECONDS)
    elapsed = time.monotonic() - started
    statuses = traffic.statuses()
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) >= 0.95 * STEADY_RATE * elapsed


def test_redis_down_gives_503s_only_and_scoring_resumes_within_a_second(
    world: ServingWorld,
) -> None:
    traffic = Traffic(world.url, known_body(world), rate_per_thread=50)
    with traffic:
        time.sleep(2)
        world.redis.stop()  # SIGTERM: Redis saves its data and exits
        stopped = time.monotonic()
        time.sleep(3)
        down = httpx.post(
            f"{world.url}/v1/score", json=known_body(world), headers={"X-API-Key": API_KEY}
        )
        ready = httpx.get(f"{world.url}/readyz")
        restarting = time.monotonic()
        world.redis.start()  # returns once Redis answers PING
        back = time.monotonic()
        time.sleep(3)
    during = Counter(s for at, s, _ in traffic.records if stopped + 0.5 < at < restarting)
    assert set(during) == {503}, during
    assert 500 not in traffic.statuses() and 0 not in traffic.statuses()
    assert down.status_code == 503 and "Redis" in down.json()["detail"]
    assert down.headers["Retry-After"] == "1"
    # Redis is shared by every task: its outage is reported, not a reason to drain them.
    assert ready.status_code == 200 and ready.json()["redis"].startswith("Redis: ")
    assert "127.0.0.1" not in down.text + ready.text
    # Requests may succeed before start() has seen Redis answer; none waits a second.
    first_ok = min(at for at, status, _ in traffic.records if status == 200 and at > restarting)
    assert first_ok - back < 1.0
    assert set(traffic.statuses(since=first_ok)) == {200}
    # The data survived the restart: the card is still known.
    score = httpx.post(
        f"{world.url}/v1/score", json=known_body(world), headers={"X-API-Key": API_KEY}
    ).json()
    assert not score["card_unknown"]


def test_moving_the_champion_alias_swaps_the_model_under_load_without_errors(
    world: ServingWorld,
) -> None:
    from fraud_platform.model_registry import CHAMPION, client

    registry = client()
    copy = registry.copy_model_version(
        f"models:/{world.model_name}/{world.champion}", world.model_name
    )
    new_version = str(copy.version)
    traffic = Traffic(world.url, known_body(world), rate_per_thread=40)
    try:
        with traffic:
            time.sleep(1)
            registry.set_registered_model_alias(world.model_name, CHAMPION, new_version)
            moved = time.monotonic()
            deadline = moved + 30
            while time.monotonic() < deadline and not any(
                v == new_version for _, _, v in list(traffic.records)
            ):
                time.sleep(0.2)
            time.sleep(1)
    finally:
        registry.set_registered_model_alias(world.model_name, CHAMPION, world.champion)
    assert set(traffic.statuses()) == {200}, traffic.statuses()
    versions = [v for _, _, v in traffic.records]
    swapped_at = versions.index(new_version)
    # Old version until the swap, the new one from then on: no request saw a mix.
    assert set(versions[:swapped_at]) == {world.champion}
    assert set(versions[swapped_at:]) == {new_version}
    # Back to the original champion for the tests that follow.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.get(f"{world.url}/readyz").json()["model"]["version"] == world.champion:
            break
        time.sleep(0.2)
    assert httpx.get(f"{world.url}/readyz").json()["model"]["version"] == world.champion
