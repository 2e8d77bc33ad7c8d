"""The local stack's bookkeeping: generated secrets, the environment it hands out, pid files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fraud_platform.devstack.config import StackConfig, load_or_create_secrets
from fraud_platform.devstack.services import METRICS_DIR_VARIABLES, child_environment
from fraud_platform.devstack.stack import LocalStack
from fraud_platform.settings import RedisSettings, S3Settings


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    first = load_or_create_secrets(path)
    assert load_or_create_secrets(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(set(first.values())) == 5
    assert all(value[0].isalpha() and len(value) >= 16 for value in first.values())
    # A file from before a secret existed gains it once, keeping the others.
    path.write_text("".join(f"{k}={v}\n" for k, v in first.items() if k != "FRAUD_API_KEY"))
    upgraded = load_or_create_secrets(path)
    assert {k: v for k, v in upgraded.items() if k != "FRAUD_API_KEY"} == {
        k: v for k, v in first.items() if k != "FRAUD_API_KEY"
    }
    assert upgraded["FRAUD_API_KEY"] != first["FRAUD_API_KEY"]
    assert load_or_create_secrets(path) == upgraded


def test_environment_points_settings_at_the_stack(tmp_path: Path, monkeypatch) -> None:
    stack = LocalStack(StackConfig(dir=tmp_path / ".local", redis_port=16390, s3_port=19090))
    env = stack.environment()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s3 = S3Settings()
    assert s3.endpoint_url == "http://127.0.0.1:19090"
    assert s3.access_key_id == stack.secrets["S3_ACCESS_KEY"]
    redis = RedisSettings()
    assert (redis.host, redis.port) == ("127.0.0.1", 16390)
    assert redis.client_kwargs()["password"] == stack.secrets["REDIS_PASSWORD"]
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path / "pipelines")


def test_env_file_is_written_private(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig(dir=tmp_path / ".local", redis_port=6379))
    path = stack.write_env_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    assert lines["REDIS_CONNECTION_STRING"].startswith("127.0.0.1:6379,password=")


def test_stale_pid_file_is_ignored(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig(dir=tmp_path / ".local"))
    stack.config.run_dir.mkdir(parents=True)
    # Our own pid is alive but is not a redis-server: it must not count as the service.
    stack.redis.pid_file.write_text(str(os.getpid()))
    assert stack.redis.pid() is None
    stack.redis.pid_file.write_text("not-a-pid")
    assert stack.redis.pid() is None
    assert stack.redis.stop() is False


def test_services_keep_metric_folders_of_their_own(tmp_path: Path, monkeypatch) -> None:
    """A metrics folder set in this process (Feast sets one on import) is not handed to
    the servers it starts; the API gets its own, emptied of an earlier server's files."""
    for variable in METRICS_DIR_VARIABLES:
        monkeypatch.setenv(variable, str(tmp_path / "parent"))
    monkeypatch.setenv("FRAUD_KEPT", "1")
    inherited = child_environment({"EXTRA": "2"})
    assert not set(METRICS_DIR_VARIABLES) & set(inherited)
    assert (inherited["FRAUD_KEPT"], inherited["EXTRA"]) == ("1", "2")

    api = LocalStack(StackConfig(dir=tmp_path / ".local")).api
    api.metrics_dir.mkdir(parents=True)
    (api.metrics_dir / "gauge_livemax_1.db").write_bytes(b"stale")
    api.prepare()
    assert list(api.metrics_dir.iterdir()) == []
    env = child_environment(api.env)
    assert {env[v] for v in METRICS_DIR_VARIABLES} == {str(api.metrics_dir)}
