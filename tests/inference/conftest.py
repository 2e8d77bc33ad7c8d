"""The served world the scoring tests share, built once per session on the real stack.

The training suite's feature tables (S3), a registry applied to them, features materialized
into a Redis server of the suite's own (the fault tests stop and restart it), a model
trained by the training pipeline and registered as ``champion`` in a private MLflow store,
and the scoring API running as its own process (``inference-pipeline serve``), as it runs
in production. The environment is applied per test, never left behind for other suites.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import httpx
import pytest

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.services import RedisService, child_environment, free_port
from tests.conftest import REPO_ROOT
from tests.integration.training_fixtures import (
    END,
    TEST_END,
    TEST_START,
    TRAIN_END,
    TRAIN_START,
    training_environment,
)

API_KEY = "test-api-key"
WORLD_VARIABLES = (
    "FRAUD_S3_PREFIX",
    "FEAST_REGISTRY_PATH",
    "MLFLOW_TRACKING_URI",
    "FRAUD_MODEL_NAME",
    "FRAUD_MLFLOW_EXPERIMENT",
    "REDIS_CONNECTION_STRING",
)


@dataclass
class ServingWorld:
    env: dict[str, str]
    """The world's variables (S3 prefix, registry, MLflow, model name, Redis)."""
    redis: RedisService
    url: str
    model_name: str
    champion: str
    materialized_until: datetime
    api: subprocess.Popen
    api_log: Path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": API_KEY}, timeout=10, **kwargs)


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """``inference-pipeline serve`` on ``port``, waited for until ``/readyz`` says ready."""
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "inference_pipeline.cli", "serve", "--port", str(port)],
            env=env,
            cwd=REPO_ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"the API exited with {process.returncode}; {log} ends:\n{tail}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"the API was not ready in 90 s; see {log}")


@pytest.fixture(scope="session")
def serving_world(stack_env, spark, tmp_path_factory) -> Iterator[ServingWorld]:
    folder = tmp_path_factory.mktemp("serving")
    redis = RedisService(
        name="redis-serving",
        port=free_port(),
        config=StackConfig(dir=folder),
        process_name="redis-server",
        password="servingtests",
    )
    redis.start()
    api = None
    try:
        environment = training_environment(stack_env, spark, tmp_path_factory)
        next(environment)  # the training data, and a registry applied to it
        patch = pytest.MonkeyPatch()
        try:
            patch.setenv("REDIS_CONNECTION_STRING", f"127.0.0.1:{redis.port},password=servingtests")
            from feature_pipeline.materialize import materialize
            from training_pipeline import pipeline

            until = datetime.combine(END + timedelta(days=1), clock(), tzinfo=UTC)
            # First run: each view reads one TTL back (the card profiles' issue dates
            # lie years before the transactions).
            materialize(until)
            # The event-fed views are served from the event state: rebuilt as of `until`.
            from feature_pipeline.event_backfill import backfill

            backfill(until)
            trained = pipeline.run(TRAIN_START, TRAIN_END, TEST_START, TEST_END)
            assert trained["alias"] == "champion"
            env = {key: os.environ[key] for key in WORLD_VARIABLES}
            api_env = child_environment(
                {"FRAUD_API_KEY": API_KEY, "FRAUD_MODEL_REFRESH_SECONDS": "1"}
            )
        finally:
            patch.undo()
            environment.close()  # restores the session's environment
        port = free_port()
        log = folder / "api.log"
        api = start_api(api_env, port, log)
        yield ServingWorld(
            env=env,
            redis=redis,
            url=f"http://127.0.0.1:{port}",
            model_name=env["FRAUD_MODEL_NAME"],
            champion=trained["version"],
            materialized_until=until,
            api=api,
            api_log=log,
        )
    finally:
        if api is not None:
            os.killpg(api.pid, signal.SIGTERM)
            api.wait(20)
        redis.stop()


@pytest.fixture
def world(serving_world: ServingWorld, monkeypatch: pytest.MonkeyPatch) -> ServingWorld:
    """The served world, with its environment applied for this test."""
    for key, value in serving_world.env.items():
        monkeypatch.setenv(key, value)
    return serving_world
