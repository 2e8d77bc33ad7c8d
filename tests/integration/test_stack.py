"""The local stack against real servers: readiness checks, idempotent up, clean down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.services import free_port
from fraud_platform.devstack.stack import LocalStack
from fraud_platform.errors import StackNotReadyError
from fraud_platform.redis_client import check_redis_ready, redis_client
from fraud_platform.s3 import check_s3_ready, s3_client
from fraud_platform.settings import RedisSettings, S3Settings

pytestmark = pytest.mark.integration


def test_s3_ready_reports_endpoint_and_status(stack_env: dict[str, str]) -> None:
    result = check_s3_ready()
    assert result == {
        "endpoint": stack_env["AWS_ENDPOINT_URL_S3"],
        "status": 200,
        "bucket": "fraud-feature-store",
    }


def test_s3_missing_bucket_is_named(stack_env: dict[str, str], monkeypatch) -> None:
    monkeypatch.setenv("FRAUD_S3_BUCKET", "no-such-bucket")
    with pytest.raises(StackNotReadyError, match="'no-such-bucket'"):
        check_s3_ready()


def test_s3_rejects_wrong_credentials(stack_env: dict[str, str], monkeypatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with pytest.raises(StackNotReadyError, match="not available"):
        check_s3_ready()


def redis_address(stack_env: dict[str, str]) -> str:
    return stack_env["REDIS_CONNECTION_STRING"].split(",")[0]


def test_redis_ping_and_round_trip(stack_env: dict[str, str]) -> None:
    assert check_redis_ready() == {"redis": redis_address(stack_env), "ping": True}
    with redis_client() as client:
        client.set("tests:roundtrip", "42", ex=30)
        assert client.get("tests:roundtrip") == b"42"


def test_redis_requires_the_password(stack_env: dict[str, str], monkeypatch) -> None:
    address = redis_address(stack_env)
    monkeypatch.setenv("REDIS_CONNECTION_STRING", f"{address},password=wrong")
    with pytest.raises(StackNotReadyError, match=f"Redis at {address}"):
        check_redis_ready()


def test_up_is_idempotent(local_stack: LocalStack) -> None:
    pids = {s.name: s.pid() for s in local_stack.services}
    assert local_stack.up() == {"redis": 0.0, "s3": 0.0}
    assert {s.name: s.pid() for s in local_stack.services} == pids


def test_status_command_lists_each_running_service(local_stack: LocalStack) -> None:
    """``fraud-stack status`` names each service with its state, address and live pid."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("fraud-stack")), "status"],
        cwd=local_stack.config.dir.parent,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout
    rows = {
        cells[0]: cells
        for line in result.stdout.splitlines()
        if len(cells := [c.strip() for c in line.split("│") if c.strip()]) >= 4
    }
    for service in local_stack.services:
        name, state, address, pid = rows[service.name][:4]
        assert (state, address, int(pid)) == ("up", f"127.0.0.1:{service.port}", service.pid())


def test_port_taken_by_another_process_is_reported(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        stack = LocalStack(StackConfig(dir=tmp_path / ".local", redis_port=port))
        with pytest.raises(StackNotReadyError, match=f"port {port} is already in use"):
            stack.redis.start()


@pytest.mark.parametrize("server", ["minio", "seaweedfs"])
def test_second_stack_up_and_down(tmp_path: Path, monkeypatch, server: str) -> None:
    """A stack on other ports and folders: starts, serves S3 with auth, stops cleanly, and
    ``down`` leaves the project's main stack running."""
    config = StackConfig(
        dir=tmp_path / ".local",
        s3_server=server,
        redis_port=free_port(),
        s3_port=free_port(),
        s3_console_port=free_port(),
        bucket="second",
    )
    stack = LocalStack(config)
    try:
        stack.up()
        pids = [s.pid() for s in stack.services]
        assert all(pids)
        for key, value in stack.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("FRAUD_S3_PREFIX", raising=False)
        assert check_s3_ready()["status"] == 200
        client = s3_client(S3Settings())
        client.put_object(Bucket="second", Key="k", Body=b"payload")
        assert client.get_object(Bucket="second", Key="k")["Body"].read() == b"payload"
        assert check_redis_ready(RedisSettings())["ping"] is True
    finally:
        assert sorted(stack.down()) == ["redis", "s3"]
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids
    )
    assert stack.down() == []
