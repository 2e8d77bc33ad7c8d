"""``00_smoke_test_stack`` run with ``dag.test()`` against the real local stack."""

from __future__ import annotations

import logging

import pytest

pytestmark = [pytest.mark.dags, pytest.mark.integration]


def all_logs(caplog, capfd) -> str:
    """Task logs reach the logging capture, task errors the process output: read both."""
    output = capfd.readouterr()
    return caplog.text + output.out + output.err


def task_states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_smoke_test_succeeds_and_logs_both_lines(dagbag, stack_env, caplog, capfd) -> None:
    caplog.set_level(logging.INFO)
    run = dagbag.get_dag("00_smoke_test_stack").test()
    logs = all_logs(caplog, capfd)
    assert str(run.state) == "success"
    assert task_states(run) == {"s3_ready": "success", "redis_ping": "success"}
    redis_address = stack_env["REDIS_CONNECTION_STRING"].split(",")[0]
    assert f"S3 ready: {stack_env['AWS_ENDPOINT_URL_S3']} -> 200" in logs
    assert f"Redis ping ok: {redis_address}" in logs


def test_smoke_test_fails_naming_redis_when_it_is_down(
    dagbag, local_stack, stack_env, caplog, capfd
) -> None:
    caplog.set_level(logging.INFO)
    local_stack.redis.stop()
    try:
        run = dagbag.get_dag("00_smoke_test_stack").test()
    finally:
        local_stack.up()
    assert str(run.state) == "failed"
    assert task_states(run) == {"s3_ready": "success", "redis_ping": "failed"}
    redis_address = stack_env["REDIS_CONNECTION_STRING"].split(",")[0]
    assert f"Redis at {redis_address} is not reachable" in all_logs(caplog, capfd)
