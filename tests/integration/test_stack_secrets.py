"""The local stack's processes carry no secret in their arguments (readable by every user
of the machine through ``ps``)."""

from __future__ import annotations

import stat

import psutil
import pytest

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.services import RedisService, free_port

pytestmark = pytest.mark.integration


def test_redis_gets_its_password_from_a_private_file_not_its_arguments(tmp_path) -> None:
    import redis

    password = "r" + "5e" * 20
    server = RedisService(
        name="redis-args",
        port=free_port(),
        config=StackConfig(dir=tmp_path),
        process_name="redis-server",
        password=password,
    )
    server.start()
    try:
        arguments = " ".join(psutil.Process(server.pid()).cmdline())
        assert password not in arguments
        assert stat.S_IMODE(server.config_file.stat().st_mode) == 0o600
        with redis.Redis(port=server.port, password=password) as client:
            assert client.ping()
        with (
            pytest.raises(redis.AuthenticationError),
            redis.Redis(port=server.port, password="wrong") as client,
        ):
            client.ping()
    finally:
        server.stop()
