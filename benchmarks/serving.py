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

Before measuring, ``--event-cards`` cards get ``--events-per-card`` transactions in the 30
days before the requests in their online event state (``benchmarks/event_state.py``,
which prints the state updates per second of one Redis core, pipelined, and the memory per
card), and the requests draw those cards: every ``/v1/score`` then reads the card's and
the merchant's windows as of the transaction *and* applies it (the full score with the
state update), while ``feast serve`` reads Feast's rows.

Both get the very same list of transactions (random cards of the written ones, random
merchants, amounts and locations; fixed seed, same order):

- sequential: one request at a time over one persistent HTTP/1.1 connection, twice:
  ``wrk -t1 -c1 --latency`` for ``--sequential-seconds`` on bodies no other phase sent
  (the bars' figure: a C client adds some 10 µs), and ``--requests`` requests (after 500
  warm-up ones) from Python's ``http.client``, timed around each request (printed beside
  it: that client spends some 0.1 ms of its own per request, building the request and
  parsing the response's headers, inside the latency it reports);
- concurrency 8: ``wrk -t1 -c8 --latency`` for ``--seconds`` (after a 3 s warm-up run),
  its Lua script cycling through the same request bodies: requests/s, p50, p99, non-2xx
  responses and socket errors (both must be zero).

Each phase also records the cores used by the server, by the client (this process and
wrk), by Redis (its own ``INFO cpu``) and by everything else on the machine: on 2 cores,
other work slows the server, and a run where it took more than 0.3 core, or where Redis
forked (a snapshot, whose child writes the dataset on a core), is flagged ``contended``.
Before each server is measured Redis writes its snapshot, so that its ``save`` schedule
starts none in the next five minutes. Our API's own error counters and its transactions
per Redis round trip are read from its ``/metrics``, and both servers' logs are scanned for errors.

Prints a table per server and metric, the ratios and whether the bars hold (ours:
sequential p50 <= 1 ms and p99 <= 3 ms through wrk -c1; at concurrency 8, p99 <= 10 ms
and at least 3x the throughput of ``feast serve``), and ends with one JSON line holding
every figure.
Exits 1 if any request failed, 2 if there is nothing to serve (no champion, no wrk).

    make bench-serving                          # 100,000 cards
    python -m benchmarks.serving --cards 100000

Needs the local stack's environment (``set -a; . .local/stack.env; set +a``), ``wrk`` and
the champion model in the local MLflow registry: run ``make demo`` first. It owns Redis
db 13 (flushed before and after) and an S3 prefix under ``bench/`` (removed after unless
``--keep``); the servers listen on free ports of 127.0.0.1.

The servers are ``benchmarks.serving_servers``, the load ``benchmarks.serving_load``, the
tables and bars ``benchmarks.serving_report``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from benchmarks import materialize as bench
from benchmarks.cpu_meter import cpu_meter
from benchmarks.serving_load import (
    CONCURRENCY,
    REQUEST_DAY,
    SERVICE,
    WRK_SCRIPT,
    Transaction,
    run_wrk,
    run_wrk_sequential,
    sequential,
    snapshot_now,
    transactions,
)
from benchmarks.serving_report import (
    CONTENDED_CORES,
    api_counters,
    console,
    log_problems,
    report,
    verdicts,
)
from benchmarks.serving_servers import Server, check_first, running, servers, with_port
from fraud_platform.devstack.services import free_port

DB = 13
WARMUP_REQUESTS = 500
WARMUP_SECONDS = 3
POOL = 50_000
"""Request bodies in the list wrk cycles through (the sequential run uses its start)."""


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
        console.print(
            f"{settings.name} v{version} ({settings.alias}) serves {service!r}, "
            f"not {SERVICE}: register a {SERVICE} champion (`make demo`)",
            style="bold red",
        )
        raise typer.Exit(2)
    return {
        "name": settings.name,
        "version": version,
        "alias": settings.alias,
        "feature_service": service,
    }


def prepare_data(cards: int, base_connection: str) -> dict[str, Any]:
    """Write the tables to S3, apply the repo and materialize every view into db ``DB``."""
    from feature_pipeline.feature_store import apply_definitions
    from feature_pipeline.materialize import materialize

    figures = bench.write_tables(cards)
    os.environ["REDIS_CONNECTION_STRING"] = bench.with_db(base_connection, DB)
    apply_definitions()
    store = bench.open_store_on(DB, base_connection)
    started = time.perf_counter()
    result = materialize(
        bench.DAY + timedelta(days=1), bench.DAY - timedelta(days=3650), store=store
    )
    figures["materialize_s"] = round(time.perf_counter() - started, 2)
    figures["keys"] = {view: r["keys"] for view, r in result["views"].items()}
    return figures


def seed_state(redis: Any, cards: int, merchants: list[str], per_card: int) -> dict[str, Any]:
    """Give ``cards`` cards ``per_card`` transactions in the 30 days before the requests
    (``benchmarks.event_state``): what each request's state update then reads. Prints the
    state updates per second (pipelined) and the memory per card."""
    from benchmarks import event_state

    names = [f"c{i:07d}" for i in range(cards)]
    figures = event_state.apply(redis, event_state.events(names, merchants, per_card, REQUEST_DAY))
    figures.update(event_state.memory_per_card(redis, names), cards=cards, per_card=per_card)
    return figures


def measure(
    server: Server,
    port: int,
    txns: list[Transaction],
    requests: int,
    seconds: int,
    sequential_seconds: int,
    workdir: Path,
    redis: Any,
) -> dict[str, Any]:
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
        figures["redis_snapshot_before"] = snapshot_now(redis)
        with cpu_meter(info["pid"], redis) as cpu:
            figures["sequential"] = sequential(
                server, port, bodies[: WARMUP_REQUESTS + requests], WARMUP_REQUESTS
            )
        figures["sequential"]["cpu"] = cpu
        console.print(f"  sequential (http.client): {figures['sequential']}")
        # Bodies the http.client run did not send: each one a first-time state update.
        fresh = workdir / f"{server.name}-sequential-bodies.jsonl"
        fresh.write_bytes(b"\n".join(bodies[WARMUP_REQUESTS + requests :]) + b"\n")
        figures["sequential_wrk"] = run_wrk_sequential(
            server, port, script, fresh, sequential_seconds, info["pid"], redis
        )
        console.print(f"  sequential (wrk -c1): {figures['sequential_wrk']}")
        run_wrk(server, port, script, bodies_file, WARMUP_SECONDS)
        with cpu_meter(info["pid"], redis) as cpu:
            figures["c8"] = run_wrk(server, port, script, bodies_file, seconds)
        figures["c8"]["cpu"] = cpu
        figures["c8"]["server_cpu_ms_per_request"] = round(
            cpu["server_cpu_s"] * 1e3 / max(figures["c8"]["requests"], 1), 3
        )
        console.print(f"  concurrency {CONCURRENCY}: {figures['c8']}")
        if server.name == "ours":
            figures["api"] = api_counters(port)
            console.print(f"  API counters: {figures['api']}")
    figures.update({key: info[key] for key in ("shutdown_s", "exit_code", "stopped_cleanly")})
    figures["log"] = log_problems(log_file)
    return figures


def remove_prefix() -> None:
    """Delete the benchmark's S3 prefix (``FRAUD_S3_PREFIX``)."""
    from fraud_platform.s3 import delete_prefix
    from fraud_platform.settings import S3Settings

    settings = S3Settings()
    delete_prefix(settings.key() + "/", settings)


def main(
    cards: Annotated[int, typer.Option(min=2, help="Cards written and materialized.")] = 100_000,
    requests: Annotated[
        int,
        typer.Option(min=100, max=POOL - WARMUP_REQUESTS, help="Sequential requests per server."),
    ] = 5_000,
    seconds: Annotated[int, typer.Option(min=1, help="wrk duration per server.")] = 15,
    sequential_seconds: Annotated[
        int, typer.Option(min=1, help="Duration of the one-connection wrk run per server.")
    ] = 10,
    keep: Annotated[bool, typer.Option(help="Keep the S3 prefix, Redis db and registry.")] = False,
    event_cards: Annotated[
        int, typer.Option(min=1, help="Cards given an event state (and drawn by the requests).")
    ] = 2_000,
    events_per_card: Annotated[
        int, typer.Option(min=1, help="Transactions per card in the 30 days before the requests.")
    ] = 100,
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
    figures = first_figures(cards, model)
    try:
        redis.flushdb()
        txns = prepare(figures, redis, cards, base_connection, event_cards, events_per_card)
        env = {
            **os.environ,
            "REDIS_CONNECTION_STRING": bench.with_db(base_connection, DB),
            "PYTHONUNBUFFERED": "1",
        }
        results: dict[str, dict[str, Any]] = {}
        for server in servers(env, secrets.token_urlsafe(24)):
            port = free_port()
            loads = (requests, seconds, sequential_seconds)
            results[server.name] = measure(
                with_port(server, port), port, txns, *loads, workdir, redis
            )
        conclude(figures, cards, model, results["ours"], results["feast"])
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


def first_figures(cards: int, model: dict[str, str]) -> dict[str, Any]:
    """The run's settings and the machine's load before it; warns when other work shares
    the CPU."""
    figures: dict[str, Any] = {
        "cards": cards,
        "feature_service": SERVICE,
        "model": model,
        "cpu_count": os.cpu_count(),
        "concurrency": CONCURRENCY,
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    if figures["load_average_before"] > 0.5 * (os.cpu_count() or 1):
        console.print(
            f"warning: load average {figures['load_average_before']} on "
            f"{os.cpu_count()} cores: other work shares the CPU and slows both "
            "servers",
            style="yellow",
        )
    return figures


def prepare(
    figures: dict[str, Any],
    redis: Any,
    cards: int,
    base_connection: str,
    event_cards: int,
    events_per_card: int,
) -> list[Transaction]:
    """The data both servers read (tables, Redis rows, event state), recorded in
    ``figures``; return the transactions to send."""
    figures["data"] = prepare_data(cards, base_connection)
    console.print(
        f"data: {cards:,} cards written in {figures['data']['write_s']}s, "
        f"materialized into Redis db {DB} in "
        f"{figures['data']['materialize_s']}s: {figures['data']['keys']}"
    )
    _, merchant = bench.small_tables()
    merchant_ids = merchant.column("merchant_id").to_pylist()
    figures["state"] = seed_state(redis, min(cards, event_cards), merchant_ids, events_per_card)
    console.print(f"event state: {figures['state']}")
    # The requests draw the cards that have an event state: each request's script
    # reads events_per_card events, as a real card's would.
    return transactions(min(cards, event_cards), merchant_ids, POOL)


def conclude(
    figures: dict[str, Any],
    cards: int,
    model: dict[str, str],
    ours: dict[str, Any],
    feast: dict[str, Any],
) -> None:
    """Both servers' figures, their ratios, the bars and whether the machine was quiet,
    into ``figures``; the tables printed."""
    served = (ours["ready"] or {}).get("model") or {}
    figures["model"]["served_version"] = served.get("version")
    figures["ours"], figures["feast"] = ours, feast
    ratios = {
        "c8_throughput": round(ours["c8"]["requests_per_s"] / feast["c8"]["requests_per_s"], 2),
        "c8_p99": round(feast["c8"]["p99_ms"] / ours["c8"]["p99_ms"], 2),
        "sequential_p99": round(
            feast["sequential_wrk"]["p99_ms"] / ours["sequential_wrk"]["p99_ms"], 2
        ),
    }
    figures["ratios"] = ratios
    figures["bars"] = verdicts(ours, feast)
    figures["bars"]["state_updates_per_core_20k"] = (
        figures["state"]["redis_core_events_per_s"] or 0
    ) >= 20_000
    figures["all_bars_hold"] = all(figures["bars"].values())
    figures["load_average_after"] = round(os.getloadavg()[0], 2)
    other = max(
        s[phase]["cpu"]["other_cores"]
        for s in (ours, feast)
        for phase in ("sequential", "sequential_wrk", "c8")
    )
    forks = sum(
        s[phase]["cpu"]["redis_forks"]
        for s in (ours, feast)
        for phase in ("sequential", "sequential_wrk", "c8")
    )
    figures["other_cores_max"] = other
    figures["redis_forks_while_measuring"] = forks
    figures["contended"] = other > CONTENDED_CORES or forks > 0
    report(cards, model, ours, feast, ratios, figures["bars"])
    if figures["contended"]:
        console.print(
            f"warning: other processes took up to {other} of the "
            f"{os.cpu_count()} cores and Redis forked {forks} times while measuring: "
            "rerun on a quiet machine",
            style="yellow",
        )


if __name__ == "__main__":
    typer.run(main)
