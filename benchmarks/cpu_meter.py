"""Cores a benchmark's phase used: by the server's process group, by the client (this
process and the children it waited for), by Redis (its ``INFO cpu``, when given a client)
and by everything else on the host, read from ``/proc`` and ``getrusage`` (Linux)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
    return total / _TICK


def host_busy_seconds() -> float:
    """CPU seconds the whole host has been busy (all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / _TICK


def redis_cpu_seconds(redis: Any) -> float:
    """CPU seconds (user + system) of the Redis server process since its start; a
    snapshot's forked child is not in it (it is other work, and slows everything)."""
    cpu = redis.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def redis_is_local(redis: Any) -> bool:
    """Whether the Redis server runs on this host: its CPU is then part of the host's busy
    time, and is taken out of the other work's."""
    pid = redis.info("server").get("process_id")
    with suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().startswith("redis")
    return False


def redis_forks(redis: Any) -> int:
    """Processes Redis forked since its start (snapshots, AOF rewrites)."""
    return int(redis.info("stats")["total_forks"])


@contextmanager
def cpu_meter(pgid: int, redis: Any = None) -> Iterator[dict[str, float]]:
    """Cores used during the block: by the server's process group, by this process and
    its waited children (the client, wrk), by Redis when ``redis`` is given (with the
    snapshots it forked meanwhile), and by everything else on the host (any other work
    sharing the CPU, which slows the server; Redis's own CPU is not in it when Redis runs
    on this host)."""

    def snapshot() -> tuple[float, ...]:
        me = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime
        in_redis = (redis_cpu_seconds(redis), redis_forks(redis)) if redis else (0.0, 0)
        return (
            time.perf_counter(),
            group_cpu_seconds(pgid),
            client,
            host_busy_seconds(),
            *in_redis,
        )

    figures: dict[str, float] = {}
    local = bool(redis) and redis_is_local(redis)
    before = snapshot()
    yield figures
    wall, server, client, host, in_redis, forks = (
        a - b for a, b in zip(snapshot(), before, strict=True)
    )
    figures.update(
        server_cores=round(server / wall, 2),
        client_cores=round(client / wall, 2),
        other_cores=round(
            max(host - server - client - (in_redis if local else 0.0), 0.0) / wall, 2
        ),
        server_cpu_s=round(server, 2),
    )
    if redis:
        figures.update(
            redis_cores=round(in_redis / wall, 2), redis_cpu_s=round(in_redis, 3), redis_forks=forks
        )
