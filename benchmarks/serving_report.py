"""What the serving benchmark reports: our API's own counters and each server's log
problems, the ratios and bars of the two servers' figures, and the tables."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.serving_load import CONCURRENCY, SERVICE
from benchmarks.serving_servers import get

BARS = {"seq_p50_ms": 1.0, "seq_p99_ms": 3.0, "c8_p99_ms": 10.0, "c8_throughput_ratio": 3.0}
CONTENDED_CORES = 0.3
"""Cores taken by other processes (Redis included) during a measured phase above which
the run is flagged as contended: its figures then say more about the machine than the
servers."""

console = Console(width=110)


def api_counters(port: int) -> dict[str, Any]:
    """The API's own account from ``/metrics``: requests not scored by reason, and the
    mean transactions per Redis round trip (concurrent requests share them)."""
    status, body = get(port, "/metrics", timeout=10)
    if status != 200:
        return {}
    text = body.decode()
    errors = {
        reason: int(float(count))
        for reason, count in re.findall(
            r'^fraud_api_errors_total\{reason="([^"]+)"\} ([\d.e+]+)$', text, re.MULTILINE
        )
    }
    sums = dict(
        re.findall(r"^fraud_api_batch_transactions_(sum|count) ([\d.e+]+)$", text, re.MULTILINE)
    )
    batch = float(sums.get("sum", 0)) / max(float(sums.get("count", 0)), 1.0)
    return {"errors_by_reason": errors, "transactions_per_round_trip": round(batch, 2)}


def log_problems(log_file: Path, limit: int = 5) -> dict[str, Any]:
    """Error lines and tracebacks a server logged during the run."""
    lines = log_file.read_text(errors="replace").splitlines()
    bad = [line for line in lines if re.search(r"\b(ERROR|CRITICAL|Traceback|Exception)\b", line)]
    warnings = [line for line in lines if re.search(r"\bWARN(ING)?\b", line)]
    return {
        "errors": len(bad),
        "first_errors": bad[:limit],
        "warnings": len(warnings),
        "first_warnings": warnings[:limit],
    }


def verdicts(ours: dict[str, Any], feast: dict[str, Any]) -> dict[str, bool]:
    """Whether each bar holds (and whether every request succeeded)."""
    ratio = ours["c8"]["requests_per_s"] / feast["c8"]["requests_per_s"]
    errors = sum(
        s["sequential"]["non_200"]
        + sum(s[phase]["non_2xx"] + s[phase]["socket_errors"] for phase in ("sequential_wrk", "c8"))
        for s in (ours, feast)
    )
    return {
        "ours_seq_p50_le_1ms": ours["sequential_wrk"]["p50_ms"] <= BARS["seq_p50_ms"],
        "ours_seq_p99_le_3ms": ours["sequential_wrk"]["p99_ms"] <= BARS["seq_p99_ms"],
        "ours_c8_throughput_ge_3x_feast": ratio >= BARS["c8_throughput_ratio"],
        "ours_c8_p99_le_10ms": ours["c8"]["p99_ms"] <= BARS["c8_p99_ms"],
        "no_errors": errors == 0,
    }


ROWS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("startup to ready (s)", lambda s: s["startup_s"]),
    ("sequential wrk -c1 requests/s", lambda s: s["sequential_wrk"]["requests_per_s"]),
    ("sequential wrk -c1 p50 (ms)", lambda s: s["sequential_wrk"]["p50_ms"]),
    ("sequential wrk -c1 p99 (ms)", lambda s: s["sequential_wrk"]["p99_ms"]),
    ("sequential wrk -c1 non-2xx", lambda s: s["sequential_wrk"]["non_2xx"]),
    (
        "sequential wrk -c1 server CPU ms/request",
        lambda s: s["sequential_wrk"]["server_cpu_ms_per_request"],
    ),
    (
        "sequential wrk -c1 Redis CPU ms/request",
        lambda s: s["sequential_wrk"]["redis_cpu_ms_per_request"],
    ),
    ("sequential http.client p50 (ms)", lambda s: s["sequential"]["p50_ms"]),
    ("sequential http.client p99 (ms)", lambda s: s["sequential"]["p99_ms"]),
    ("sequential http.client mean (ms)", lambda s: s["sequential"]["mean_ms"]),
    ("sequential http.client non-200", lambda s: s["sequential"]["non_200"]),
    (f"c{CONCURRENCY} requests/s", lambda s: s["c8"]["requests_per_s"]),
    (f"c{CONCURRENCY} p50 (ms)", lambda s: s["c8"]["p50_ms"]),
    (f"c{CONCURRENCY} p99 (ms)", lambda s: s["c8"]["p99_ms"]),
    (f"c{CONCURRENCY} requests", lambda s: s["c8"]["requests"]),
    (f"c{CONCURRENCY} non-2xx", lambda s: s["c8"]["non_2xx"]),
    (f"c{CONCURRENCY} socket errors", lambda s: s["c8"]["socket_errors"]),
    (f"c{CONCURRENCY} server CPU ms/request", lambda s: s["c8"]["server_cpu_ms_per_request"]),
    (f"c{CONCURRENCY} Redis cores", lambda s: s["c8"]["cpu"]["redis_cores"]),
    (f"c{CONCURRENCY} cores taken by other work", lambda s: s["c8"]["cpu"]["other_cores"]),
    ("stopped cleanly", lambda s: s["stopped_cleanly"]),
    ("error lines in log", lambda s: s["log"]["errors"]),
]
"""The table's rows: a label and how to read its figure from a server's results."""


def report(
    cards: int,
    model: dict[str, str],
    ours: dict[str, Any],
    feast: dict[str, Any],
    ratios: dict[str, float],
    bars: dict[str, bool],
) -> None:
    """The tables: figures per server and metric, then the bars."""
    table = Table(
        title=f"Serving {SERVICE}: {cards:,} cards in Redis, "
        f"{model['name']} v{model['version']}, one worker each"
    )
    table.add_column("metric")
    table.add_column("ours (score)", justify="right")
    table.add_column("feast serve (features)", justify="right")
    for label, value in ROWS:
        cells = [value(s) for s in (ours, feast)]
        table.add_row(label, *(f"{c:,}" if type(c) is int else str(c) for c in cells))
    console.print(table)
    console.print(
        f"c{CONCURRENCY} throughput ours/feast: {ratios['c8_throughput']}x; "
        f"c{CONCURRENCY} p99 feast/ours: {ratios['c8_p99']}x; "
        f"sequential p99 feast/ours: {ratios['sequential_p99']}x"
    )
    verdict = Table(title="Bars")
    verdict.add_column("bar")
    verdict.add_column("holds")
    for name, holds in bars.items():
        verdict.add_row(name, "[green]yes[/]" if holds else "[red]no[/]")
    console.print(verdict)
