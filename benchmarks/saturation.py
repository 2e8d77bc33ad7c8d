"""Benchmark: the scoring API at twice its saturation throughput (finding 4's figure).

Against a running API (``--url``, ``--api-key`` and one request body), with vegeta
(``scripts/install-vegeta.sh`` builds it once, pinned), in two phases:

1. saturation: a closed loop of ``--connections`` workers for ``--seconds`` (each sends its
   next request when its last one is answered); the rate of 200s is the saturation
   throughput (the bounded batcher sheds the rest with 503s);
2. 2x: an open loop at a constant rate of twice that throughput: requests leave on
   schedule whether or not earlier ones were answered, as a crowd of clients sends them.
   A closed loop cannot do this: it offers no more than the server absorbs, so its "2x"
   is the saturation point again. The open loop goes through at most
   :data:`OPEN_LOOP_CONNECTIONS` connections, as a load balancer keeps a bounded pool to
   each target: uncapped, vegeta opens a new connection for every request it cannot place
   at once (about 1,300 in 15 s here), and the run measures TCP set-up on a starved
   2-core machine rather than the server's shedding.

Every request of both phases carries a fresh ``transaction_id`` (the state update is
idempotent by id, so a repeated id would be a cheaper request). The figures come from
vegeta's per-request results: the achieved sending rate, the latency percentiles of the
accepted (200) requests only, the 503 share and the ``Retry-After`` values of the 503s,
and any other 5xx or request without an answer. Prints a table, then one JSON line.

    python -m benchmarks.saturation --url http://127.0.0.1:8000 --api-key KEY --body body.json

The fault suite runs the same measurement on its served world (``make faults``).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import itertools
import json
import subprocess
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL = REPO_ROOT / "scripts" / "install-vegeta.sh"
TIMEOUT = "10s"
"""vegeta's per-request timeout: a request unanswered by then counts as without an answer."""
OPEN_LOOP_CONNECTIONS = 512
"""The open loop's connection pool: 4x the API's in-flight cap, so shed requests never
wait for a connection (at about 30 ms per 503, 512 connections carry over 15,000/s)."""


class VegetaMissingError(RuntimeError):
    """vegeta is not built and cannot be (no Go toolchain): nothing is measured."""


def vegeta() -> str:
    """The pinned vegeta executable, built on first use by ``scripts/install-vegeta.sh``."""
    built = subprocess.run([str(INSTALL)], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise VegetaMissingError(
            f"vegeta could not be built ({INSTALL.name} exited {built.returncode}): "
            + (built.stderr.strip() or built.stdout.strip())
        )
    return str(Path(built.stdout.strip().splitlines()[-1], "vegeta"))


@dataclass(frozen=True)
class Result:
    """One request as vegeta recorded it."""

    sent_ns: int
    code: int
    latency_ns: int
    error: str
    retry_after: str | None


def targets(url: str, api_key: str, body: dict[str, Any]) -> Iterator[bytes]:
    """vegeta JSON targets without end, each a POST of ``body`` with a fresh transaction id."""
    head, tail = json.dumps({**body, "transaction_id": "__ID__"}).split('"__ID__"')
    header = json.dumps({"X-API-Key": [api_key], "Content-Type": ["application/json"]})
    start = f'{{"method":"POST","url":"{url.rstrip("/")}/v1/score","header":{header},"body":"'
    run = uuid.uuid4().hex[:8]
    for n in itertools.count():
        payload = base64.b64encode(f'{head}"sat-{run}-{n}"{tail}'.encode()).decode()
        yield f'{start}{payload}"}}\n'.encode()


def feed(stream: IO[bytes], lines: Iterator[bytes]) -> None:
    """Write targets until vegeta stops reading: it exits when its attack is over."""
    try:
        for line in lines:
            stream.write(line)
    except (BrokenPipeError, ValueError):  # ValueError: the pipe was closed meanwhile
        pass


def retry_after(encoded_headers: str) -> str | None:
    """The Retry-After value of a response's headers (vegeta's CSV: base64 of the block)."""
    for line in base64.b64decode(encoded_headers).decode(errors="replace").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "retry-after":
            return value.strip()
    return None


def attack(
    url: str, api_key: str, body: dict[str, Any], seconds: int, rate: float, workers: int = 0
) -> list[Result]:
    """One vegeta attack: open loop at ``rate`` per second, or, with ``rate`` 0, a closed
    loop of ``workers`` workers; returns every request's result.

    The targets are streamed (``-lazy``): vegeta reads one per request, so each is sent
    once, and the pipe's back-pressure keeps the generator just ahead of the attack.
    """
    binary = vegeta()
    with tempfile.TemporaryDirectory() as folder:
        results, errors = Path(folder, "results.bin"), Path(folder, "stderr.txt")
        pacing = (
            [f"-rate={rate:.0f}/1s", f"-max-connections={OPEN_LOOP_CONNECTIONS}"]
            if rate
            else ["-rate=0", f"-max-workers={workers}"]
        )
        command = [binary, "attack", "-format=json", "-lazy", f"-duration={seconds}s"]
        command += [f"-timeout={TIMEOUT}", "-max-body=0", *pacing, f"-output={results}"]
        if workers:
            command.append(f"-workers={workers}")
        with errors.open("wb") as stderr:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=stderr)
        assert process.stdin is not None
        writer = threading.Thread(target=feed, args=(process.stdin, targets(url, api_key, body)))
        writer.start()
        try:
            returncode = process.wait(timeout=seconds + 120)
        finally:
            process.kill()  # only if it outlived its timeout
            writer.join()  # its next write fails once vegeta is gone
            with contextlib.suppress(OSError):
                process.stdin.close()
        if returncode != 0:
            raise RuntimeError(f"vegeta attack failed: {errors.read_text().strip()}")
        encoded = subprocess.run(
            [binary, "encode", "-to=csv", str(results)], capture_output=True, text=True, check=True
        ).stdout
    return [
        Result(int(row[0]), int(row[1]), int(row[2]), row[5], retry_after(row[11]))
        for row in csv.reader(encoded.splitlines())
    ]


def percentile_ms(latencies_ns: list[int], q: float) -> float | None:
    return round(float(np.percentile(latencies_ns, q)) / 1e6, 1) if latencies_ns else None


def summarize(results: list[Result], seconds: int) -> dict[str, Any]:
    """The figures of one phase: statuses, rates and the accepted requests' latency."""
    statuses = Counter(r.code for r in results)
    accepted = [r.latency_ns for r in results if r.code == 200]
    shed = [r.latency_ns for r in results if r.code == 503]
    sent = [r.sent_ns for r in results]
    span = (max(sent) - min(sent)) / 1e9 if len(sent) > 1 else 0.0
    return {
        "requests": len(results),
        "achieved_rps": round(len(results) / span, 1) if span else None,
        "accepted_rps": round(statuses[200] / seconds, 1),
        "accepted_p50_ms": percentile_ms(accepted, 50),
        "accepted_p99_ms": percentile_ms(accepted, 99),
        "shed_p99_ms": percentile_ms(shed, 99),
        "share_503": round(statuses[503] / len(results), 3) if results else None,
        "retry_after": dict(Counter(r.retry_after for r in results if r.code == 503)),
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "server_errors": sum(n for code, n in statuses.items() if code >= 500 and code != 503),
        "no_answer": statuses[0],
        "no_answer_errors": dict(Counter(r.error for r in results if r.code == 0).most_common(3)),
        "no_answer_at_s": sorted(
            {(r.sent_ns - min(sent)) // 1_000_000_000 for r in results if r.code == 0}
        ),
    }


def measure(
    url: str, api_key: str, body: dict[str, Any], seconds: int = 15, connections: int = 64
) -> dict[str, Any]:
    """Saturation throughput (closed loop), then the accepted latency and the shedding at a
    constant rate of twice it (open loop)."""
    attack(url, api_key, body, 3, 0, connections)  # warm-up
    saturation = summarize(attack(url, api_key, body, seconds, 0, connections), seconds)
    saturated_rps = saturation["accepted_rps"]
    if not saturated_rps:
        raise RuntimeError(f"no request was scored: {saturation}")
    offered = 2 * saturated_rps
    overload = summarize(attack(url, api_key, body, seconds, offered), seconds)
    achieved = overload.pop("achieved_rps")
    return {
        "saturation_rps": saturated_rps,
        "saturation_p99_ms": saturation["accepted_p99_ms"],
        "saturation_statuses": saturation["statuses"],
        "offered_rps": round(offered, 1),
        "achieved_rps": achieved,
        "achieved_ratio": round(achieved / saturated_rps, 2) if achieved else None,
        **overload,
    }


def main(
    url: Annotated[str, typer.Option(help="The API's base URL.")],
    api_key: Annotated[str, typer.Option(help="An API key.")],
    body: Annotated[Path, typer.Option(exists=True, help="One /v1/score request (JSON).")],
    seconds: Annotated[int, typer.Option(min=5, help="Length of each phase.")] = 15,
    connections: Annotated[int, typer.Option(min=1, help="Saturation phase's workers.")] = 64,
) -> None:
    try:
        figures = measure(url, api_key, json.loads(body.read_text()), seconds, connections)
    except VegetaMissingError as exc:
        Console(stderr=True).print(str(exc), style="bold red")
        raise typer.Exit(2) from exc
    table = Table(title="Scoring API at 2x saturation (vegeta, open loop)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        table.add_row(name, str(value))
    Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    typer.run(main)
