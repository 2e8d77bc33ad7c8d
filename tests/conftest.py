"""Fixtures shared by the suites. The stack-backed ones start the real local services
(Redis, the S3 server) themselves, so a fresh machine passes after ``make install``."""

from __future__ import annotations

import logging
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[1]


def monitoring_bin() -> Path:
    """The folder of the Prometheus and Pushgateway executables that ``make monitor``
    builds; the calling test is skipped without them (the Prometheus build takes tens of
    minutes on 2 cores, so CI builds only promtool and the Pushgateway)."""
    built = subprocess.run(
        [str(REPO_ROOT / "scripts" / "install-prometheus.sh"), "--built", "prometheus"]
        + ["pushgateway"],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode:
        pytest.skip("Prometheus and the Pushgateway are not built (make monitor builds them)")
    return Path(built.stdout.strip())


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """The project's local stack, started if needed; stopped at the end only if we started it."""
    stack = LocalStack(StackConfig(dir=REPO_ROOT / ".local"))
    timings = stack.up()
    yield stack
    started_here = [name for name, seconds in timings.items() if seconds > 0]
    for service in stack.services:
        if service.name in started_here:
            service.stop()


@pytest.fixture(scope="session")
def stack_env(local_stack: LocalStack) -> Iterator[dict[str, str]]:
    """The stack's environment in ``os.environ``, with a fresh S3 prefix for this run so
    that tests never see each other's (or a developer's) data; the prefix is removed after."""
    env = {**local_stack.environment(), "FRAUD_S3_PREFIX": f"test-runs/{uuid.uuid4().hex[:12]}"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield env
        from fraud_platform.s3 import delete_prefix
        from fraud_platform.settings import S3Settings

        settings = S3Settings()
        delete_prefix(settings.key() + "/", settings)


@pytest.fixture(autouse=True)
def _own_s3_prefix(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test that touches the stack writes below its own S3 prefix (inside the run's),
    so that tables of one test never show up in another's reads."""
    if "stack_env" in request.fixturenames:
        run_prefix = request.getfixturevalue("stack_env")["FRAUD_S3_PREFIX"]
        test_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:80]
        monkeypatch.setenv("FRAUD_S3_PREFIX", f"{run_prefix}/{test_name}")


@pytest.fixture(scope="session")
def spark(stack_env: dict[str, str]):
    """One local SparkSession for the whole run (starting one costs about ten seconds)."""
    from fraud_platform.spark import build_spark_session

    # py4j logs at interpreter exit, after pytest has closed its capture streams.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = build_spark_session("tests")
    yield session
    session.stop()
