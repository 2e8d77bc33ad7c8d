"""Load generation for the serving benchmark: the transactions both servers get, their
request bodies, the Python sequential client and ``wrk`` (one connection, and concurrency
8: its Lua script and the parsing of its summary)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks import materialize as bench
from benchmarks.cpu_meter import cpu_meter

if TYPE_CHECKING:
    from benchmarks.serving_servers import Server

SERVICE = "fraud_detection_v1"
SEED = 11
CONCURRENCY = 8
REQUEST_DAY = bench.DAY + timedelta(days=1)
"""Transactions happen the day after the features' event times."""

WRK_SCRIPT = """\
-- Cycles through pre-generated request bodies, one JSON body per line, and counts the
-- responses that are not 2xx by status (with the first such body).
local bodies = {}
local path
local i = 0
local threads = {}
failed = {}
first_failure = ""

setup = function(thread)
  threads[#threads + 1] = thread
end

init = function(args)
  path = args[1]
  for line in io.lines(args[2]) do
    bodies[#bodies + 1] = line
  end
end

request = function()
  i = i % #bodies + 1
  return wrk.format("POST", path, nil, bodies[i])
end

response = function(status, headers, body)
  if status > 299 then
    failed[status] = (failed[status] or 0) + 1
    if first_failure == "" then
      first_failure = string.gsub(string.sub(body or "", 1, 300), "%s+", " ")
    end
  end
end

done = function(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("failed")) do
      io.write(string.format("failed status %d: %d\\n", status, count))
    end
    local body = thread:get("first_failure")
    if body ~= "" then
      io.write("first failure: " .. body .. "\\n")
    end
  end
end
"""


@dataclass(frozen=True)
class Transaction:
    """One request, sent to both servers."""

    transaction_id: str
    card_id: str
    merchant_id: str
    amount: float
    timestamp: int
    """Unix seconds, UTC."""
    latitude: float
    longitude: float


def ours_body(txn: Transaction) -> bytes:
    """The ``/v1/score`` payload of a transaction."""
    return json.dumps(
        {
            "transaction_id": txn.transaction_id,
            "card_id": txn.card_id,
            "merchant_id": txn.merchant_id,
            "amount": txn.amount,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(txn.timestamp)),
            "latitude": txn.latitude,
            "longitude": txn.longitude,
        },
        separators=(",", ":"),
    ).encode()


def feast_body(txn: Transaction) -> bytes:
    """The ``/get-online-features`` payload of a transaction: one entity row."""
    return json.dumps(
        {
            "feature_service": SERVICE,
            "entities": {
                "card_id": [txn.card_id],
                "merchant_id": [txn.merchant_id],
                "amount": [txn.amount],
                "latitude": [txn.latitude],
                "longitude": [txn.longitude],
                "transaction_timestamp": [txn.timestamp],
            },
        },
        separators=(",", ":"),
    ).encode()


def transactions(
    cards: int, merchants: list[str], count: int, seed: int = SEED
) -> list[Transaction]:
    """``count`` random transactions of the written cards, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    card = rng.integers(0, cards, count)
    merchant = rng.integers(0, len(merchants), count)
    amount = np.round(rng.gamma(2.0, 30.0, count), 2)
    at = int(REQUEST_DAY.timestamp()) + rng.integers(0, 86_400, count)
    lat = np.round(rng.uniform(35, 60, count), 5)
    lon = np.round(rng.uniform(-10, 30, count), 5)
    return [
        Transaction(
            f"bench-{i:06d}",
            f"c{card[i]:07d}",
            merchants[merchant[i]],
            float(amount[i]),
            int(at[i]),
            float(lat[i]),
            float(lon[i]),
        )
        for i in range(count)
    ]


def sequential(server: Server, port: int, bodies: list[bytes], warmup: int) -> dict[str, Any]:
    """Client-side latency of one request at a time over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies = np.empty(len(bodies) - warmup, np.int64)
    errors: dict[str, int] = {}
    clock = time.perf_counter_ns
    try:
        for i, body in enumerate(bodies):
            started = clock()
            conn.request("POST", server.path, body, server.headers)
            response = conn.getresponse()
            response.read()
            elapsed = clock() - started
            if response.status != 200:
                errors[str(response.status)] = errors.get(str(response.status), 0) + 1
            if i >= warmup:
                latencies[i - warmup] = elapsed
    finally:
        conn.close()
    ms = latencies / 1e6
    return {
        "requests": len(ms),
        "warmup": warmup,
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "max_ms": round(float(ms.max()), 3),
        "non_200": sum(errors.values()),
        "statuses": errors,
    }


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, the 50% and 99% latencies, non-2xx responses and socket errors."""

    def find(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, output, re.MULTILINE)

    rate = find(r"^Requests/sec:\s+([\d.]+)")
    total = find(r"^\s*(\d+) requests in ([\d.]+\w+)")
    p50 = find(r"^\s+50%\s+([\d.]+\w+)")
    p99 = find(r"^\s+99%\s+([\d.]+\w+)")
    if not (rate and total and p50 and p99):
        raise RuntimeError(f"cannot parse wrk's output:\n{output}")
    non_2xx = find(r"Non-2xx or 3xx responses:\s+(\d+)")
    sockets = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True))
        if sockets
        else {}
    )
    failed = {
        status: int(count)
        for status, count in re.findall(r"^failed status (\d+): (\d+)$", output, re.MULTILINE)
    }
    first_failure = find(r"^first failure: (.*)$")
    return {
        "requests_per_s": round(float(rate.group(1)), 1),
        "requests": int(total.group(1)),
        "duration_s": round(_ms(total.group(2)) / 1e3, 2),
        "p50_ms": round(_ms(p50.group(1)), 3),
        "p99_ms": round(_ms(p99.group(1)), 3),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "non_2xx_statuses": failed,
        "first_failure": first_failure.group(1) if first_failure else None,
        "socket_errors": sum(socket_errors.values()),
        "socket_error_kinds": socket_errors,
    }


def run_wrk(
    server: Server,
    port: int,
    script: Path,
    bodies_file: Path,
    seconds: int,
    connections: int = CONCURRENCY,
) -> dict[str, Any]:
    """``wrk -t1 -c<connections> --latency`` against the server; its summary parsed."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in server.headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-s", str(script), f"http://127.0.0.1:{port}", "--", server.path, str(bodies_file)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def run_wrk_sequential(
    server: Server, port: int, script: Path, bodies_file: Path, seconds: int, pid: int, redis: Any
) -> dict[str, Any]:
    """``run_wrk`` on one connection, with where a request's time goes: the server's CPU
    and Redis's, per request. Redis's is its process's CPU (commands, scripts and its
    socket work): ``INFO commandstats`` counts the commands a script runs both on their
    own and inside the script's time, so its sum is no per-request figure."""
    with cpu_meter(pid, redis) as cpu:
        figures = run_wrk(server, port, script, bodies_file, seconds, connections=1)
    served = max(figures["requests"], 1)
    figures.update(
        cpu=cpu,
        server_cpu_ms_per_request=round(cpu["server_cpu_s"] * 1e3 / served, 3),
        redis_cpu_ms_per_request=round(cpu["redis_cpu_s"] * 1e3 / served, 3),
    )
    return figures


def snapshot_now(redis: Any, timeout_s: float = 300.0) -> bool:
    """Have Redis write its snapshot now and wait for it, so that its ``save`` schedule
    (the local stack's ``save 300 1``) starts none during the next five minutes of
    measuring: a snapshot forks Redis, and the child writing the dataset takes a core
    the server needs on 2 cores. False where Redis refuses ``BGSAVE`` (managed Redis) or
    no new snapshot completed in time; each phase still counts the forks that happened in
    it."""
    import redis as redis_py

    deadline = time.monotonic() + timeout_s

    def busy() -> bool:  # a snapshot or an AOF rewrite already has a child running
        persistence = redis.info("persistence")
        return bool(persistence["rdb_bgsave_in_progress"] or persistence["aof_rewrite_in_progress"])

    while busy():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    before = redis.info("persistence")["rdb_last_save_time"]
    try:
        redis.bgsave(schedule=False)  # now, not "scheduled" after another child
    except redis_py.ResponseError:
        return False
    while time.monotonic() < deadline:
        persistence = redis.info("persistence")
        if (
            not persistence["rdb_bgsave_in_progress"]
            and persistence["rdb_last_save_time"] != before
        ):
            return persistence["rdb_last_bgsave_status"] == "ok"
        time.sleep(0.2)
    return False
