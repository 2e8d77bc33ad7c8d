"""The scoring API on bad days, against real processes: a registry that does not answer at
start, a body too large for the cap sent without a key, and a Redis too slow to answer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.services import RedisService, free_port
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def wait_answer(url: str, seconds: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.2)


@pytest.fixture
def api_without_registry(stack_env, tmp_path):
    """``inference-pipeline serve`` with MLflow pointing at a port nothing listens on."""
    port = free_port()
    env = {
        **os.environ,
        "FRAUD_API_KEY": "k",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "FEAST_REGISTRY_PATH": f"sqlite:///{tmp_path / 'registry.db'}",
    }
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "inference_pipeline.cli", "serve", "--port", str(port)],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_api_starts_and_says_why_it_is_not_ready_while_the_registry_is_down(
    api_without_registry,
) -> None:
    url, process = api_without_registry
    assert wait_answer(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json()["detail"].startswith("model:")
    assert ready.json()["model"] is None and "127.0.0.1" not in ready.text
    assert process.poll() is None


def test_a_body_over_the_cap_without_a_key_is_refused_unread(api_without_registry) -> None:
    url, _ = api_without_registry
    wait_answer(f"{url}/healthz")
    sent = {"bytes": 0}

    def body():  # 300 MB, as in the finding, produced lazily
        for _ in range(300 * 16):
            sent["bytes"] += 65536
            yield b" " * 65536

    with pytest.raises(httpx.HTTPError):  # the server answers and closes mid-upload ...
        response = httpx.post(
            f"{url}/v1/score/batch",
            content=body(),
            timeout=30,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413  # ... or the whole answer arrives first
        raise httpx.RemoteProtocolError("answered")
    assert sent["bytes"] < 50 * 2**20
    declared = httpx.post(
        f"{url}/v1/score", content=b"{}" * 2**19, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and "larger than" in declared.json()["detail"]


def test_reconnects_to_a_redis_too_slow_to_answer_back_off(tmp_path) -> None:
    import redis

    from fraud_platform.settings import RedisSettings
    from inference_pipeline.redis_pipe import RedisPipe, RedisUnavailableError

    server = RedisService(
        name="redis-slow",
        port=free_port(),
        config=StackConfig(dir=tmp_path),
        process_name="redis-server",
        password="slowtests",
    )
    server.start()
    try:
        admin = redis.Redis(port=server.port, password="slowtests")
        before = admin.info("stats")["total_connections_received"]
        admin.client_pause(1500)  # Redis accepts connections but answers nothing

        async def hammer() -> int:
            settings = RedisSettings(
                connection_string=f"127.0.0.1:{server.port},password=slowtests"
            )
            pipe = RedisPipe(settings, timeout_seconds=0.02)
            failures, end = 0, time.monotonic() + 1.0
            while time.monotonic() < end:
                try:
                    await pipe.ping()
                except RedisUnavailableError as exc:
                    assert str(server.port) not in str(exc)
                    failures += 1
                await asyncio.sleep(0.002)
            await pipe.close()
            return failures

        failures = asyncio.run(hammer())
        opened = admin.info("stats")["total_connections_received"] - before
        # Hundreds of requests failed fast; only a handful of them opened a connection
        # (without backoff, every one after a timeout did: about 45 in this second).
        assert failures > 100
        assert opened <= 12, opened
    finally:
        server.stop()
