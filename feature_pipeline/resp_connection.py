"""A bare blocking Redis connection for bulk writes: send pre-encoded batches, read their
replies in bulk (the materialization writer's; the scoring API has its own asyncio one)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from typing import Any

import numpy as np

from feature_pipeline.materialize_error import MaterializationError
from fraud_platform.resp import encode
from fraud_platform.settings import RedisSettings


class RespConnection:
    """A bare Redis connection: send pre-encoded batches, read their replies with
    hiredis (redis-py encodes and parses one command at a time in Python)."""

    def __init__(self, settings: RedisSettings) -> None:
        kwargs = settings.client_kwargs()
        sock = socket.create_connection(
            (settings.host, settings.port), timeout=kwargs.get("socket_connect_timeout") or 10
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if kwargs.get("ssl"):
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=settings.host)
        sock.settimeout(kwargs.get("socket_timeout") or 300)
        self._sock = sock
        if kwargs.get("password"):
            auth = [kwargs["username"]] if kwargs.get("username") else []
            self.call("AUTH", *auth, kwargs["password"])
        if kwargs.get("db"):
            self.call("SELECT", str(kwargs["db"]))

    def call(self, *args: str | bytes) -> Any:
        """One command, its reply."""
        self._sock.sendall(encode(*args))
        return self._read_with_hiredis(1)[0]

    def exchange(self, buffers: Sequence[bytes | np.ndarray], replies: int) -> list[Any]:
        """Send ``buffers`` (``replies`` commands, pre-encoded) and return their replies."""
        for data in buffers:
            if len(data):
                # numpy's stubs declare the buffer protocol for Python 3.12+ only.
                self._sock.sendall(data)  # type: ignore[arg-type]
        return self._read_with_hiredis(replies)

    def _read_with_hiredis(self, count: int) -> list[Any]:
        import hiredis

        reader = hiredis.Reader()
        replies: list[Any] = []
        while len(replies) < count:
            reply = reader.gets()
            if reply is False:
                chunk = self._sock.recv(4 << 20)
                if not chunk:
                    raise MaterializationError("Redis closed the connection")
                reader.feed(chunk)
                continue
            if isinstance(reply, hiredis.ReplyError):
                raise MaterializationError(f"Redis replied with an error: {reply}")
            replies.append(reply)
        if reader.has_data():
            raise MaterializationError("Redis sent more replies than commands")
        return replies

    def close(self) -> None:
        self._sock.close()
