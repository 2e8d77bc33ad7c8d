"""Benchmark: online serving, our scoring API against ``feast serve``, one process each.

Writes N cards' synthetic ``card_transaction_features`` rows (and the small card profile
and merchant tables) to S3 under a ``bench/`` prefix, applies the Feast repo into a
throwaway SQLite registry and materializes everything into Redis db 13, as
``benchmarks/materialize.py`` does. Then, on that same Redis, registry and feature service
(``fraud_detection_v1``), it measures one server after the other (never both at once):

- our scoring API (``inference-pipeline serve``, one uvicorn worker): ``POST /v1/score``,
  features read from Redis *and* the champion model's score and decision;
- ``feast serve`` (one gunicorn worker): ``POST /get-online-features`` of the same
  feature service, features only.

Both get the very same list of transactions (random cards of the written ones, random
merchants, amounts and locations; fixed seed, same order):

- sequential: ``--requests`` requests (after 500 warm-up ones) over one persistent
  HTTP/1.1 connection, latency measured by the client: p50, p99, mean;
- concurrency 8: ``wrk -t1 -c8 --latency`` for ``--seconds`` (after a 3 s warm-up run),
  its Lua script cycling through the same request bodies: requests/s, p50, p99, non-2xx
  responses and socket errors (both must be zero).

Each phase also records the cores used by the server, by the client (this process and
wrk) and by everything else on the machine (Redis and other work): on 2 cores, other
work slows the server, and a run where it took more than 0.3 core is flagged
``contended``. Our API's own error counters and its transactions per Redis round trip
are read from its ``/metrics``, and both servers' logs are scanned for errors.

Prints a table per server and metric, the ratios and whether the bars hold (ours:
sequential p50 <= 1 ms and p99 <= 3 ms; at concurrency 8, p99 <= 10 ms and at least 3x
the throughput of ``feast serve``), and ends with one JSON line holding every figure.
Exits 1 if any request failed, 2 if there is nothing to serve (no champion, no wrk).

    make bench-serving                          # 100,000 cards
    python -m benchmarks.serving --cards 100000

Needs the local stack's environment (``set -a; . .local/stack.env; set +a``), ``wrk`` and
the champion model in the local MLflow registry: run ``make demo`` first. It owns Redis
db 13 (flushed before and after) and an S3 prefix under ``bench/`` (removed after unless
``--keep``); the servers listen on free ports of 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from benchmarks import materialize as bench
from fraud_platform.devstack.services import free_port

DB = 13
SERVICE = "fraud_detection_v1"
SEED = 11
WARMUP_REQUESTS = 500
WARMUP_SECONDS = 3
CONCURRENCY = 8
POOL = 50_000
"""Request bodies in the list wrk cycles through (the sequential run uses its start)."""
READY_TIMEOUT_S = 180.0
REQUEST_DAY = bench.DAY + timedelta(days=1)
"""Transactions happen the day after the features' event times."""
CONTENDED_CORES = 0.3
"""Cores taken by other processes (Redis included) during a measured phase above which
the run is flagged as contended: its figures then say more about the machine than the
servers."""
BARS = {"seq_p50_ms": 1.0, "seq_p99_ms": 3.0, "c8_p99_ms": 10.0, "c8_throughput_ratio": 3.0}
REPO = Path(__file__).resolve().parents[1]

console = Console(width=110)

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


@contextmanager
def cpu_meter(pgid: int) -> Iterator[dict[str, float]]:
    """Cores used during the block: by the server's process group, by this process and
    its waited children (the client, wrk), and by everything else on the host (Redis,
    and any other work sharing the CPU, which slows the server)."""
    def snapshot() -> tuple[float, ...]:
        me = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime
        return (time.perf_counter(), group_cpu_seconds(pgid), client, host_busy_seconds())

    figures: dict[str, float] = {}
    before = snapshot()
    yield figures
    wall, server, client, host = (a - b for a, b in zip(snapshot(), before, strict=True))
    figures.update(server_cores=round(server / wall, 2), client_cores=round(client / wall, 2),
                   other_cores=round(max(host - server - client, 0.0) / wall, 2),
                   server_cpu_s=round(server, 2))


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


@dataclass(frozen=True)
class Server:
    """A server process to start, probe and load."""

    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    ready_path: str
    path: str
    headers: dict[str, str]
    body: Callable[[Transaction], bytes]


def ours_body(txn: Transaction) -> bytes:
    """The ``/v1/score`` payload of a transaction."""
    return json.dumps({
        "transaction_id": txn.transaction_id, "card_id": txn.card_id,
        "merchant_id": txn.merchant_id, "amount": txn.amount,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(txn.timestamp)),
        "latitude": txn.latitude, "longitude": txn.longitude,
    }, separators=(",", ":")).encode()


def feast_body(txn: Transaction) -> bytes:
    """The ``/get-online-features`` payload of a transaction: one entity row."""
    return json.dumps({
        "feature_service": SERVICE,
        "entities": {
            "card_id": [txn.card_id], "merchant_id": [txn.merchant_id],
            "amount": [txn.amount], "latitude": [txn.latitude], "longitude": [txn.longitude],
            "transaction_timestamp": [txn.timestamp],
        },
    }, separators=(",", ":")).encode()


def transactions(cards: int, merchants: list[str], count: int,
                 seed: int = SEED) -> list[Transaction]:
    """``count`` random transactions of the written cards, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    card = rng.integers(0, cards, count)
    merchant = rng.integers(0, len(merchants), count)
    amount = np.round(rng.gamma(2.0, 30.0, count), 2)
    at = int(REQUEST_DAY.timestamp()) + rng.integers(0, 86_400, count)
    lat = np.round(rng.uniform(35, 60, count), 5)
    lon = np.round(rng.uniform(-10, 30, count), 5)
    return [Transaction(f"bench-{i:06d}", f"c{card[i]:07d}", merchants[merchant[i]],
                        float(amount[i]), int(at[i]), float(lat[i]), float(lon[i]))
            for i in range(count)]


def champion() -> dict[str, str]:
    """The champion's name, version and feature service; exits 2 when there is none."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.models import get_model_info

    from fraud_platform.model_registry import alias_version, client
    from inference_pipeline.settings import ModelSettings

    settings = ModelSettings()
    version = alias_version(settings.name, settings.alias)
    if version is None:
        console.print("no champion model: run `make demo` first", style="bold red")
        raise typer.Exit(2)
    client()
    metadata = get_model_info(f"models:/{settings.name}/{version}").metadata or {}
    service = metadata.get("feature_service")
    if service != SERVICE:
        console.print(f"{settings.name} v{version} ({settings.alias}) serves {service!r}, "
                      f"not {SERVICE}: register a {SERVICE} champion (`make demo`)",
                      style="bold red")
        raise typer.Exit(2)
    return {"name": settings.name, "version": version, "alias": settings.alias,
            "feature_service": service}


def prepare_data(cards: int, base_connection: str) -> dict[str, Any]:
    """Write the tables to S3, apply the repo and materialize every view into db ``DB``."""
    from feature_pipeline.feature_store import apply_definitions
    from feature_pipeline.materialize import materialize

    figures = bench.write_tables(cards)
    os.environ["REDIS_CONNECTION_STRING"] = bench.with_db(base_connection, DB)
    apply_definitions()
    store = bench.open_store_on(DB, base_connection)
    started = time.perf_counter()
    result = materialize(bench.DAY + timedelta(days=1), bench.DAY - timedelta(days=3650),
                         store=store)
    figures["materialize_s"] = round(time.perf_counter() - started, 2)
    figures["keys"] = {view: r["keys"] for view, r in result["views"].items()}
    return figures


def _get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _log_tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running(server: Server, port: int, log_file: Path) -> Iterator[dict[str, Any]]:
    """Start the server in its own process group, wait until it is ready, and stop it
    with SIGTERM to the group when done (SIGKILL if it has not exited after 30 s).

    Yields:
        ``startup_s`` and the readiness body; ``shutdown_s`` and ``exit_code`` are added
        on exit.
    """
    info: dict[str, Any] = {}
    with log_file.open("wb") as out:
        process = subprocess.Popen(server.command, cwd=server.cwd, env=server.env,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        started = time.perf_counter()
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {process.returncode} before "
                                   f"it was ready:\n{_log_tail(log_file)}")
            with suppress(OSError, http.client.HTTPException):
                status, body = _get(port, server.ready_path)
                if status == 200:
                    break
            if time.perf_counter() - started > READY_TIMEOUT_S:
                raise RuntimeError(f"{server.name} not ready after {READY_TIMEOUT_S:.0f}s:\n"
                                   f"{_log_tail(log_file)}")
            time.sleep(0.25)
        info["startup_s"] = round(time.perf_counter() - started, 2)
        info["pid"] = process.pid
        info["ready"] = json.loads(body or b"null")
        yield info
    finally:
        stopping = time.perf_counter()
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        killed = False
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed = True
        info["shutdown_s"] = round(time.perf_counter() - stopping, 2)
        info["exit_code"] = process.returncode
        # uvicorn re-raises the SIGTERM it handled once shut down: -15 is a clean exit too.
        info["stopped_cleanly"] = not killed and process.returncode in (0, -signal.SIGTERM)


def check_first(server: Server, port: int, txn: Transaction) -> dict[str, Any]:
    """One request, checked: 200, and the card's and merchant's stored features found."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", server.path, server.body(txn), server.headers)
        response = conn.getresponse()
        status, payload = response.status, response.read()
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"{server.name}: {status} {payload[:500]!r}")
    data = json.loads(payload)
    if server.name == "ours":
        found = not data["card_unknown"] and not data["merchant_unknown"]
        return {"features_found": found, "missing_features": len(data["missing_features"]),
                "decision": data["decision"]}
    names = data["metadata"]["feature_names"]
    values = {n: r["values"][0] for n, r in zip(names, data["results"], strict=True)}
    found = values.get("txn_count_10m") is not None and (
        values.get("merchant_txn_count_1d") is not None)
    return {"features_found": found,
            "missing_features": sum(v is None for v in values.values())}


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
    return {"requests": len(ms), "warmup": warmup,
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3), "max_ms": round(float(ms.max()), 3),
            "non_200": sum(errors.values()), "statuses": errors}


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
    socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                             map(int, sockets.groups()), strict=True)) if sockets else {}
    failed = {status: int(count) for status, count
              in re.findall(r"^failed status (\d+): (\d+)$", output, re.MULTILINE)}
    first_failure = find(r"^first failure: (.*)$")
    return {"requests_per_s": round(float(rate.group(1)), 1),
            "requests": int(total.group(1)), "duration_s": round(_ms(total.group(2)) / 1e3, 2),
            "p50_ms": round(_ms(p50.group(1)), 3), "p99_ms": round(_ms(p99.group(1)), 3),
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "non_2xx_statuses": failed,
            "first_failure": first_failure.group(1) if first_failure else None,
            "socket_errors": sum(socket_errors.values()), "socket_error_kinds": socket_errors}


def run_wrk(server: Server, port: int, script: Path, bodies_file: Path,
            seconds: int) -> dict[str, Any]:
    """``wrk -t1 -c8 --latency`` against the server; its summary parsed."""
    command = ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "--latency"]
    for name, value in server.headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-s", str(script), f"http://127.0.0.1:{port}", "--", server.path,
                str(bodies_file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def api_counters(port: int) -> dict[str, Any]:
    """The API's own account from ``/metrics``: requests not scored by reason, and the
    mean transactions per Redis round trip (concurrent requests share them)."""
    status, body = _get(port, "/metrics", timeout=10)
    if status != 200:
        return {}
    text = body.decode()
    errors = {reason: int(float(count)) for reason, count in re.findall(
        r'^fraud_api_errors_total\{reason="([^"]+)"\} ([\d.e+]+)$', text, re.MULTILINE)}
    sums = dict(re.findall(r"^fraud_api_batch_transactions_(sum|count) ([\d.e+]+)$", text,
                           re.MULTILINE))
    batch = float(sums.get("sum", 0)) / max(float(sums.get("count", 0)), 1.0)
    return {"errors_by_reason": errors, "transactions_per_round_trip": round(batch, 2)}


def log_problems(log_file: Path, limit: int = 5) -> dict[str, Any]:
    """Error lines and tracebacks a server logged during the run."""
    lines = log_file.read_text(errors="replace").splitlines()
    bad = [line for line in lines
           if re.search(r"\b(ERROR|CRITICAL|Traceback|Exception)\b", line)]
    warnings = [line for line in lines if re.search(r"\bWARN(ING)?\b", line)]
    return {"errors": len(bad), "first_errors": bad[:limit], "warnings": len(warnings),
            "first_warnings": warnings[:limit]}


def measure(server: Server, port: int, txns: list[Transaction], requests: int,
            seconds: int, workdir: Path) -> dict[str, Any]:
    """Start the server, check one request, run the sequential and wrk loads, stop it."""
    bodies = [server.body(t) for t in txns]
    bodies_file = workdir / f"{server.name}-bodies.jsonl"
    bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
    script = workdir / "bodies.lua"
    script.write_text(WRK_SCRIPT)
    log_file = workdir / f"{server.name}.log"
    figures: dict[str, Any] = {"port": port, "load_average_before": round(os.getloadavg()[0], 2)}
    console.print(f"[bold]{server.name}[/]: starting on 127.0.0.1:{port}")
    with running(server, port, log_file) as info:
        figures["startup_s"] = info["startup_s"]
        figures["ready"] = info["ready"]
        figures["check"] = check_first(server, port, txns[0])
        console.print(f"  ready in {info['startup_s']}s; first request {figures['check']}")
        with cpu_meter(info["pid"]) as cpu:
            figures["sequential"] = sequential(server, port,
                                               bodies[:WARMUP_REQUESTS + requests],
                                               WARMUP_REQUESTS)
        figures["sequential"]["cpu"] = cpu
        console.print(f"  sequential: {figures['sequential']}")
        run_wrk(server, port, script, bodies_file, WARMUP_SECONDS)
        with cpu_meter(info["pid"]) as cpu:
            figures["c8"] = run_wrk(server, port, script, bodies_file, seconds)
        figures["c8"]["cpu"] = cpu
        figures["c8"]["server_cpu_ms_per_request"] = round(
            cpu["server_cpu_s"] * 1e3 / max(figures["c8"]["requests"], 1), 3)
        console.print(f"  concurrency {CONCURRENCY}: {figures['c8']}")
        if server.name == "ours":
            figures["api"] = api_counters(port)
            console.print(f"  API counters: {figures['api']}")
    figures.update({key: info[key] for key in ("shutdown_s", "exit_code", "stopped_cleanly")})
    figures["log"] = log_problems(log_file)
    return figures


def servers(env: dict[str, str], api_key: str) -> list[Server]:
    """Our API, then ``feast serve``, both with one worker process."""
    bin_dir = Path(sys.executable).parent
    feast = shutil.which("feast", path=str(bin_dir)) or shutil.which("feast") or "feast"
    json_header = {"Content-Type": "application/json"}
    return [
        Server("ours", [sys.executable, "-m", "inference_pipeline.cli", "serve", "--port",
                        "{port}", "--workers", "1"],
               REPO, {**env, "FRAUD_API_KEY": api_key}, "/readyz", "/v1/score",
               {**json_header, "X-API-Key": api_key}, ours_body),
        Server("feast", [feast, "serve", "-p", "{port}", "--workers", "1", "--max-requests",
                         "0", "--max-requests-jitter", "0", "--no-access-log"],
               REPO / "feature_repo", env, "/health", "/get-online-features", json_header,
               feast_body),
    ]


def with_port(server: Server, port: int) -> Server:
    """The server with its command's ``{port}`` filled in."""
    command = [part.replace("{port}", str(port)) for part in server.command]
    return Server(server.name, command, server.cwd, server.env, server.ready_path,
                  server.path, server.headers, server.body)


def verdicts(ours: dict[str, Any], feast: dict[str, Any]) -> dict[str, bool]:
    """Whether each bar holds (and whether every request succeeded)."""
    ratio = ours["c8"]["requests_per_s"] / feast["c8"]["requests_per_s"]
    errors = sum(s["sequential"]["non_200"] + s["c8"]["non_2xx"] + s["c8"]["socket_errors"]
                 for s in (ours, feast))
    return {
        "ours_seq_p50_le_1ms": ours["sequential"]["p50_ms"] <= BARS["seq_p50_ms"],
        "ours_seq_p99_le_3ms": ours["sequential"]["p99_ms"] <= BARS["seq_p99_ms"],
        "ours_c8_throughput_ge_3x_feast": ratio >= BARS["c8_throughput_ratio"],
        "ours_c8_p99_le_10ms": ours["c8"]["p99_ms"] <= BARS["c8_p99_ms"],
        "no_errors": errors == 0,
    }


def report(cards: int, model: dict[str, str], ours: dict[str, Any],
           feast: dict[str, Any], ratios: dict[str, float], bars: dict[str, bool]) -> None:
    """The tables: figures per server and metric, then the bars."""
    table = Table(title=f"Serving {SERVICE}: {cards:,} cards in Redis, "
                  f"{model['name']} v{model['version']}, one worker each")
    table.add_column("metric")
    table.add_column("ours (score)", justify="right")
    table.add_column("feast serve (features)", justify="right")
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("startup to ready (s)", lambda s: s["startup_s"]),
        ("sequential p50 (ms)", lambda s: s["sequential"]["p50_ms"]),
        ("sequential p99 (ms)", lambda s: s["sequential"]["p99_ms"]),
        ("sequential mean (ms)", lambda s: s["sequential"]["mean_ms"]),
        ("sequential non-200", lambda s: s["sequential"]["non_200"]),
        (f"c{CONCURRENCY} requests/s", lambda s: s["c8"]["requests_per_s"]),
        (f"c{CONCURRENCY} p50 (ms)", lambda s: s["c8"]["p50_ms"]),
        (f"c{CONCURRENCY} p99 (ms)", lambda s: s["c8"]["p99_ms"]),
        (f"c{CONCURRENCY} requests", lambda s: s["c8"]["requests"]),
        (f"c{CONCURRENCY} non-2xx", lambda s: s["c8"]["non_2xx"]),
        (f"c{CONCURRENCY} socket errors", lambda s: s["c8"]["socket_errors"]),
        (f"c{CONCURRENCY} server CPU ms/request", lambda s: s["c8"]["server_cpu_ms_per_request"]),
        (f"c{CONCURRENCY} cores taken by other work", lambda s: s["c8"]["cpu"]["other_cores"]),
        ("stopped cleanly", lambda s: s["stopped_cleanly"]),
        ("error lines in log", lambda s: s["log"]["errors"]),
    ]
    for label, value in rows:
        cells = [value(s) for s in (ours, feast)]
        table.add_row(label, *(f"{c:,}" if type(c) is int else str(c) for c in cells))
    console.print(table)
    console.print(f"c{CONCURRENCY} throughput ours/feast: {ratios['c8_throughput']}x; "
                  f"c{CONCURRENCY} p99 feast/ours: {ratios['c8_p99']}x; "
                  f"sequential p99 feast/ours: {ratios['sequential_p99']}x")
    verdict = Table(title="Bars")
    verdict.add_column("bar")
    verdict.add_column("holds")
    for name, holds in bars.items():
        verdict.add_row(name, "[green]yes[/]" if holds else "[red]no[/]")
    console.print(verdict)


def remove_prefix() -> None:
    """Delete the benchmark's S3 prefix (``FRAUD_S3_PREFIX``)."""
    from fraud_platform.s3 import delete_prefix
    from fraud_platform.settings import S3Settings

    settings = S3Settings()
    delete_prefix(settings.key() + "/", settings)


def main(
    cards: Annotated[int, typer.Option(min=2, help="Cards written and materialized.")
                     ] = 100_000,
    requests: Annotated[int, typer.Option(min=100, max=POOL - WARMUP_REQUESTS,
                                          help="Sequential requests per server.")] = 5_000,
    seconds: Annotated[int, typer.Option(min=1, help="wrk duration per server.")] = 15,
    keep: Annotated[bool, typer.Option(help="Keep the S3 prefix, Redis db and registry.")
                    ] = False,
) -> None:
    """Our scoring API against `feast serve`, sequential and at concurrency 8."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if shutil.which("wrk") is None:
        console.print("wrk is not installed: run scripts/install.sh", style="bold red")
        raise typer.Exit(2)
    model = champion()
    base_connection = os.environ["REDIS_CONNECTION_STRING"]
    prefix = f"bench/serving-{uuid.uuid4().hex[:8]}"
    os.environ["FRAUD_S3_PREFIX"] = prefix
    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    os.environ["FEAST_REGISTRY_PATH"] = f"sqlite:///{workdir / 'registry.db'}"

    from fraud_platform.redis_client import redis_client

    redis = redis_client(db=DB, socket_timeout=600)
    figures: dict[str, Any] = {"cards": cards, "feature_service": SERVICE, "model": model,
                               "cpu_count": os.cpu_count(), "concurrency": CONCURRENCY,
                               "load_average_before": round(os.getloadavg()[0], 2)}
    if figures["load_average_before"] > 0.5 * (os.cpu_count() or 1):
        console.print(f"warning: load average {figures['load_average_before']} on "
                      f"{os.cpu_count()} cores: other work shares the CPU and slows both "
                      "servers", style="yellow")
    try:
        redis.flushdb()
        figures["data"] = prepare_data(cards, base_connection)
        console.print(f"data: {cards:,} cards written in {figures['data']['write_s']}s, "
                      f"materialized into Redis db {DB} in "
                      f"{figures['data']['materialize_s']}s: {figures['data']['keys']}")
        _, merchant = bench.small_tables()
        txns = transactions(cards, merchant.column("merchant_id").to_pylist(), POOL)
        env = {**os.environ, "REDIS_CONNECTION_STRING": bench.with_db(base_connection, DB),
               "PYTHONUNBUFFERED": "1"}
        results: dict[str, dict[str, Any]] = {}
        for server in servers(env, secrets.token_urlsafe(24)):
            port = free_port()
            results[server.name] = measure(with_port(server, port), port, txns, requests,
                                           seconds, workdir)
        ours, feast = results["ours"], results["feast"]
        served = (ours["ready"] or {}).get("model") or {}
        figures["model"]["served_version"] = served.get("version")
        figures["ours"], figures["feast"] = ours, feast
        ratios = {
            "c8_throughput": round(ours["c8"]["requests_per_s"] / feast["c8"]["requests_per_s"],
                                   2),
            "c8_p99": round(feast["c8"]["p99_ms"] / ours["c8"]["p99_ms"], 2),
            "sequential_p99": round(feast["sequential"]["p99_ms"]
                                    / ours["sequential"]["p99_ms"], 2),
        }
        figures["ratios"] = ratios
        figures["bars"] = verdicts(ours, feast)
        figures["all_bars_hold"] = all(figures["bars"].values())
        figures["load_average_after"] = round(os.getloadavg()[0], 2)
        other = max(s[phase]["cpu"]["other_cores"] for s in (ours, feast)
                    for phase in ("sequential", "c8"))
        figures["other_cores_max"] = other
        figures["contended"] = other > CONTENDED_CORES
        report(cards, model, ours, feast, ratios, figures["bars"])
        if figures["contended"]:
            console.print(f"warning: other processes took up to {other} of the "
                          f"{os.cpu_count()} cores while measuring: rerun on a quiet machine",
                          style="yellow")
    finally:
        if keep:
            console.print(f"kept: Redis db {DB}, s3 prefix {prefix}, registry in {workdir}")
        else:
            redis.flushdb()
            remove_prefix()
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(figures), flush=True)
    if not figures["bars"]["no_errors"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
