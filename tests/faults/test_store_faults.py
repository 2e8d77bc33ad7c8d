"""Faults of the stores behind materialization, against the served world's registry and
tables: Redis stopped while a materialization runs, and the Feast registry's database
locked while materialization runs and the API scores. The online store's content is
compared key by key with a run that saw no fault."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
import redis

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.services import RedisService, free_port
from tests.faults.test_serving_faults import server_errors
from tests.inference.conftest import ServingWorld
from tests.inference.test_load import Traffic, known_body

pytestmark = pytest.mark.faults

SINCE = datetime(2000, 1, 1, tzinfo=UTC)
"""Materialize from here: every row of the world's tables, not an increment."""


def own_redis(tmp_path, name: str) -> RedisService:
    server = RedisService(
        name=name,
        port=free_port(),
        config=StackConfig(dir=tmp_path / name),
        process_name="redis-server",
        password="faults",
    )
    server.start()
    return server


def content(server: RedisService) -> dict[bytes, str]:
    """Each key's value as a digest (hashes field by field, in sorted order)."""
    client = redis.Redis(port=server.port, password="faults")
    out = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"hash":
            value = repr(sorted(client.hgetall(key).items()))
        elif kind == b"string":
            value = repr(client.get(key))
        else:
            value = repr(client.dump(key))
        out[key] = hashlib.sha256(value.encode()).hexdigest()
    return out


def materialize_into(server: RedisService, monkeypatch, world: ServingWorld) -> dict:
    from feature_pipeline.materialize import materialize

    monkeypatch.setenv("REDIS_CONNECTION_STRING", f"127.0.0.1:{server.port},password=faults")
    return materialize(world.materialized_until, start=SINCE)


def test_redis_stopped_during_materialization(world, fault, tmp_path, monkeypatch) -> None:
    outcome = fault(
        "Redis stopped during materialization",
        "a full materialization run against a Redis stopped (SIGTERM) after the run's "
        "start (the world's 600 keys are written in under 0.2 s, so the stop comes before "
        "the writes); Redis restarted and the run retried",
        "the run fails with an error (no hang, the registry's intervals left as they were); "
        "the retry leaves Redis equal, key for key, to a run that saw no fault",
    )
    reference_server, faulted = own_redis(tmp_path, "ref"), own_redis(tmp_path, "faulted")
    try:
        materialize_into(reference_server, monkeypatch, world)
        reference = content(reference_server)
        faulted.stop()
        started = time.monotonic()
        try:
            materialize_into(faulted, monkeypatch, world)
            first = "ok"
        except Exception as exc:
            first = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
        failed_after = time.monotonic() - started
        faulted.start()
        materialize_into(faulted, monkeypatch, world)
        recovered = content(faulted)
    finally:
        reference_server.stop()
        faulted.stop()
    outcome.records_lost = len(set(reference) - set(recovered))
    outcome.records_duplicated = len(set(recovered) - set(reference))
    differing = sum(1 for key in reference if recovered.get(key, reference[key]) != reference[key])
    outcome.observed = (
        f"first run {first} after {failed_after:.1f} s; retry: {len(recovered)} keys, "
        f"{differing} differing from the fault-free run's {len(reference)}"
    )
    assert first.startswith("failed") and failed_after < 60
    assert recovered == reference and reference


def test_feast_registry_database_locked(world, fault, tmp_path, monkeypatch) -> None:
    from feature_pipeline.feature_store import open_store
    from feature_pipeline.materialize import materialize

    outcome = fault(
        "Feast registry database locked",
        "an exclusive lock held on the registry's SQLite file for 8 s while a "
        "materialization runs and the API takes 50 req/s",
        "scoring unaffected (no 5xx); the materialization waits or fails clearly and "
        "succeeds once the lock is gone; the registry intact",
    )
    path = world.env["FEAST_REGISTRY_PATH"].removeprefix("sqlite:///")
    views_before = sorted(v.name for v in open_store().list_feature_views())
    attempts: list[str] = []

    def run() -> None:
        try:
            materialize(world.materialized_until)
            attempts.append("ok")
        except Exception as exc:
            attempts.append(f"failed: {type(exc).__name__}: {str(exc)[:120]}")

    traffic = Traffic(world.url, known_body(world), rate_per_thread=25)
    lock = sqlite3.connect(path, timeout=30, isolation_level=None)
    with traffic:
        lock.execute("BEGIN EXCLUSIVE")
        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(8)
        lock.execute("COMMIT")
        worker.join(300)
        time.sleep(1)
    lock.close()
    retried = attempts != ["ok"]
    if retried:
        materialize(world.materialized_until)
    check = sqlite3.connect(path)
    integrity = check.execute("PRAGMA integrity_check").fetchone()[0]
    check.close()
    views_after = sorted(v.name for v in open_store().list_feature_views())
    statuses: Counter = traffic.statuses()
    outcome.server_errors = server_errors(statuses)
    outcome.observed = (
        f"materialization {attempts[0] if attempts else 'hung'}"
        + ("; the retry succeeded" if retried else "")
        + f"; registry integrity {integrity}, {len(views_after)} views as before; "
        f"statuses {dict(statuses)}"
    )
    assert outcome.server_errors == 0 and set(statuses) == {200}
    assert integrity == "ok" and views_after == views_before
