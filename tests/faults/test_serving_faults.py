"""Faults of the scoring path, against the served world's real processes: Redis stopped
under traffic, the MLflow registry unreachable when the API starts and while the champion
alias moves. Every response is recorded; a 503 is the designed answer, anything else of
5xx (or a dropped connection) counts as a server error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from fraud_platform.devstack.services import free_port
from tests.conftest import REPO_ROOT
from tests.inference.conftest import API_KEY, ServingWorld
from tests.inference.test_load import Traffic, known_body

pytestmark = pytest.mark.faults


def server_errors(statuses: Counter) -> int:
    """5xx other than the designed 503, and connections that got no answer."""
    return sum(
        n for status, n in statuses.items() if status == 0 or status >= 500 and status != 503
    )


def wait_for(check, seconds: float) -> float | None:
    """Seconds until ``check()`` is true, or None if it was not within ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if check():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return None


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("ab") as handle:
        running = subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield running
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGTERM)
            running.wait(30)


def mlflow_server(world: ServingWorld, port: int, log: Path):
    """An MLflow tracking server over the world's registry database."""
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        world.env["MLFLOW_TRACKING_URI"],
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return process(command, dict(os.environ), log)


def api(world: ServingWorld, tracking_uri: str, port: int, log: Path):
    env = {
        **os.environ,
        "FRAUD_API_KEY": API_KEY,
        "FRAUD_MODEL_REFRESH_SECONDS": "1",
        "MLFLOW_TRACKING_URI": tracking_uri,
    }
    command = [sys.executable, "-m", "inference_pipeline.cli", "serve", "--port", str(port)]
    return process(command, env, log)


def served_version(url: str) -> str | None:
    ready = httpx.get(f"{url}/readyz", timeout=5)
    return ready.json()["model"]["version"] if ready.status_code == 200 else None


def test_redis_stopped_during_scoring_gives_503_not_500(world: ServingWorld, fault) -> None:
    outcome = fault(
        "Redis stopped during scoring",
        "100 req/s at /v1/score; Redis stopped (SIGTERM) for 3 s, then restarted",
        "503 with a reason and Retry-After while it is down, never a 500; /readyz stays "
        "200 (no fleet drain); scoring back within a second; the data still there",
    )
    body = known_body(world)
    traffic = Traffic(world.url, body, rate_per_thread=50)
    with traffic:
        time.sleep(2)
        world.redis.stop()
        time.sleep(3)
        down = httpx.post(f"{world.url}/v1/score", json=body, headers={"X-API-Key": API_KEY})
        ready = httpx.get(f"{world.url}/readyz")
        restarting = time.monotonic()
        world.redis.start()
        back = time.monotonic()
        time.sleep(3)
    statuses = traffic.statuses()
    first_ok = min(at for at, status, _ in traffic.records if status == 200 and at > restarting)
    outcome.server_errors = server_errors(statuses)
    outcome.observed = (
        f"statuses {dict(statuses)}; while down: {down.status_code} "
        f"Retry-After {down.headers.get('Retry-After')}, /readyz {ready.status_code}; "
        f"first 200 {max(0.0, first_ok - back):.2f} s after Redis answered"
    )
    score = httpx.post(f"{world.url}/v1/score", json=body, headers={"X-API-Key": API_KEY})
    assert outcome.server_errors == 0 and statuses[503] > 0
    assert down.status_code == 503 and down.headers["Retry-After"] == "1"
    assert ready.status_code == 200 and first_ok - back < 1.0
    assert score.status_code == 200 and not score.json()["card_unknown"]


def test_mlflow_unreachable_at_api_start(world: ServingWorld, fault, tmp_path) -> None:
    outcome = fault(
        "MLflow unreachable at API start",
        "`inference-pipeline serve` with MLFLOW_TRACKING_URI at a port nothing listens on; "
        "the tracking server started 10 s later",
        "the API starts: /healthz 200, /readyz 503 with a reason naming no host, scoring "
        "503; it loads the champion and scores once the registry answers",
    )
    mlflow_port, api_port = free_port(), free_port()
    url = f"http://127.0.0.1:{api_port}"
    body = known_body(world)
    with api(world, f"http://127.0.0.1:{mlflow_port}", api_port, tmp_path / "api.log"):
        up = wait_for(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, 90)
        assert up is not None, "the API did not answer /healthz"
        traffic = Traffic(url, body, rate_per_thread=10)
        with traffic:
            time.sleep(10)
            ready = httpx.get(f"{url}/readyz", timeout=5)
            with mlflow_server(world, mlflow_port, tmp_path / "mlflow.log"):
                loaded = wait_for(lambda: served_version(url) == world.champion, 240)
                time.sleep(1)
        statuses = traffic.statuses()
    outcome.server_errors = server_errors(statuses)
    outcome.observed = (
        f"/healthz after {up:.1f} s; /readyz {ready.status_code} "
        f"{ready.json().get('detail')!r}; champion served "
        + (f"{loaded:.1f} s after the server started" if loaded is not None else "never")
        + f"; statuses {dict(statuses)}"
    )
    assert ready.status_code == 503 and ready.json()["detail"].startswith("model:")
    assert "127.0.0.1" not in ready.text
    assert loaded is not None and outcome.server_errors == 0 and statuses[200] > 0


def test_mlflow_unreachable_during_an_alias_move_keeps_the_last_good_model(
    world: ServingWorld, fault, tmp_path
) -> None:
    from fraud_platform.model_registry import CHAMPION, client

    outcome = fault(
        "MLflow unreachable during an alias move",
        "API on an MLflow tracking server; server stopped, champion alias moved to a new "
        "version in the registry database, server restarted 10 s later",
        "every request 200 on the last good model while the registry is away; the new "
        "version served once it is back",
    )
    mlflow_port, api_port = free_port(), free_port()
    url = f"http://127.0.0.1:{api_port}"
    registry = client()  # the registry database itself, not the server
    new_version = str(
        registry.copy_model_version(
            f"models:/{world.model_name}/{world.champion}", world.model_name
        ).version
    )
    traffic = Traffic(url, known_body(world), rate_per_thread=10)
    try:
        with api(world, f"http://127.0.0.1:{mlflow_port}", api_port, tmp_path / "api.log"):
            with mlflow_server(world, mlflow_port, tmp_path / "mlflow.log"):
                assert wait_for(lambda: served_version(url) == world.champion, 240) is not None
            with traffic:
                registry.set_registered_model_alias(world.model_name, CHAMPION, new_version)
                time.sleep(10)
                during = Counter(v for _, s, v in list(traffic.records) if s == 200)
                ready = httpx.get(f"{url}/readyz", timeout=5)
                with mlflow_server(world, mlflow_port, tmp_path / "mlflow.log"):
                    swapped = wait_for(lambda: served_version(url) == new_version, 240)
                    time.sleep(1)
    finally:
        registry.set_registered_model_alias(world.model_name, CHAMPION, world.champion)
    statuses = traffic.statuses()
    outcome.server_errors = server_errors(statuses)
    outcome.observed = (
        f"while away: versions served {dict(during)}, /readyz {ready.status_code}; new "
        f"version served "
        + (f"{swapped:.1f} s after the server came back" if swapped is not None else "never")
        + f"; statuses {dict(statuses)}"
    )
    assert set(during) == {world.champion} and ready.status_code == 200
    assert swapped is not None and set(statuses) == {200}


def test_twice_the_saturation_load_is_shed_with_503s(world: ServingWorld, fault) -> None:
    from benchmarks.saturation import VegetaMissingError, measure

    outcome = fault(
        "load at 2x saturation",
        "saturation throughput measured with vegeta (closed loop, 64 workers, 15 s), then "
        "twice that rate offered for 15 s in an open loop (constant rate, a fresh "
        "transaction id per request)",
        "the excess shed at once with 503 and Retry-After; accepted requests keep a p99 "
        "under 500 ms (the queue is bounded, 50 ms wait); no 5xx but 503",
    )
    try:
        figures = measure(world.url, API_KEY, known_body(world))
    except VegetaMissingError as exc:
        pytest.skip(str(exc))
    outcome.details = figures
    outcome.server_errors = figures["server_errors"]
    outcome.observed = (
        f"saturation {figures['saturation_rps']} req/s; offered {figures['offered_rps']}, "
        f"achieved {figures['achieved_rps']} ({figures['achieved_ratio']}x saturation): "
        f"accepted {figures['accepted_rps']} req/s, p50 {figures['accepted_p50_ms']} ms, "
        f"p99 {figures['accepted_p99_ms']} ms; 503 share {figures['share_503']}, "
        f"Retry-After {figures['retry_after']}; statuses {figures['statuses']}, "
        f"{figures['no_answer']} without an answer"
        + (
            f" ({figures['no_answer_errors']}, at seconds {figures['no_answer_at_s']})"
            if figures["no_answer"]
            else ""
        )
        + f"; shed p99 {figures['shed_p99_ms']} ms"
    )
    assert figures["server_errors"] == 0 and figures["no_answer"] == 0, outcome.observed
    assert figures["achieved_ratio"] >= 1.8, "the load generator did not offer twice the load"
    assert figures["accepted_p99_ms"] < 500
    assert figures["share_503"] > 0 and set(figures["retry_after"]) == {"1"}
