"""The servers the serving benchmark compares: our scoring API and ``feast serve``, each
started in its own process group, probed until ready, checked with one request and
stopped."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.serving_load import Transaction, feast_body, ours_body

READY_TIMEOUT_S = 180.0
REPO = Path(__file__).resolve().parents[1]


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


def servers(env: dict[str, str], api_key: str) -> list[Server]:
    """Our API, then ``feast serve``, both with one worker process."""
    bin_dir = Path(sys.executable).parent
    feast = shutil.which("feast", path=str(bin_dir)) or shutil.which("feast") or "feast"
    json_header = {"Content-Type": "application/json"}
    return [
        Server(
            "ours",
            [
                sys.executable,
                "-m",
                "inference_pipeline.cli",
                "serve",
                "--port",
                "{port}",
                "--workers",
                "1",
            ],
            REPO,
            {**env, "FRAUD_API_KEY": api_key},
            "/readyz",
            "/v1/score",
            {**json_header, "X-API-Key": api_key},
            ours_body,
        ),
        Server(
            "feast",
            [
                feast,
                "serve",
                "-p",
                "{port}",
                "--workers",
                "1",
                "--max-requests",
                "0",
                "--max-requests-jitter",
                "0",
                "--no-access-log",
            ],
            REPO / "feature_repo",
            env,
            "/health",
            "/get-online-features",
            json_header,
            feast_body,
        ),
    ]


def with_port(server: Server, port: int) -> Server:
    """The server with its command's ``{port}`` filled in."""
    command = [part.replace("{port}", str(port)) for part in server.command]
    return Server(
        server.name,
        command,
        server.cwd,
        server.env,
        server.ready_path,
        server.path,
        server.headers,
        server.body,
    )


def get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """``GET path`` on the server: its status and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a server's log, for an error message."""
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
        process = subprocess.Popen(
            server.command,
            cwd=server.cwd,
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        started = time.perf_counter()
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {process.returncode} before "
                    f"it was ready:\n{log_tail(log_file)}"
                )
            with suppress(OSError, http.client.HTTPException):
                status, body = get(port, server.ready_path)
                if status == 200:
                    break
            if time.perf_counter() - started > READY_TIMEOUT_S:
                raise RuntimeError(
                    f"{server.name} not ready after {READY_TIMEOUT_S:.0f}s:\n{log_tail(log_file)}"
                )
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
        return {
            "features_found": found,
            "missing_features": len(data["missing_features"]),
            "decision": data["decision"],
        }
    names = data["metadata"]["feature_names"]
    values = {n: r["values"][0] for n, r in zip(names, data["results"], strict=True)}
    found = values.get("txn_count_10m") is not None and (
        values.get("merchant_txn_count_1d") is not None
    )
    return {"features_found": found, "missing_features": sum(v is None for v in values.values())}
