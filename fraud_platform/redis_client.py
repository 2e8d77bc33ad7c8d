"""Redis access shared by the pipelines: a client from the settings and a ``PING`` check."""

from __future__ import annotations

import logging
from typing import Any

import redis

from fraud_platform.errors import StackNotReadyError
from fraud_platform.settings import RedisSettings

log = logging.getLogger(__name__)


def redis_client(settings: RedisSettings | None = None, **overrides: Any) -> redis.Redis:
    """A redis-py client for the online store named by ``REDIS_CONNECTION_STRING``."""
    settings = settings or RedisSettings()
    kwargs = {"socket_connect_timeout": 3, "socket_timeout": 5, **settings.client_kwargs()}
    kwargs.update(overrides)
    return redis.Redis(**kwargs)


def check_redis_ready(settings: RedisSettings | None = None) -> dict[str, Any]:
    """``PING`` the online store.

    Raises:
        StackNotReadyError: naming Redis, its address and the cause.
    """
    settings = settings or RedisSettings()
    address = f"{settings.host}:{settings.port}"
    try:
        with redis_client(settings) as client:
            client.ping()
    except redis.RedisError as exc:
        raise StackNotReadyError(f"Redis at {address} is not reachable: {exc}") from exc
    log.info("Redis ping ok: %s", address)
    return {"redis": address, "ping": True}
