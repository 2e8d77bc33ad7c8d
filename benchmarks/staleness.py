"""Benchmark: replay a held-back day through the scoring API; served vectors against training's.

After ``make demo`` the demo's held-back day is still only in ``landing/``. This ingests
it and computes its feature tables (the offline side), rebuilds the online event state as
of the day's start from the offline store (``feature_pipeline.event_backfill``), starts the
scoring API with served-vector logging on, and sends the day in time order: each
transaction through ``POST /v1/score`` (which reads the card's and merchant's state before
it and applies it) and each fraud label through ``POST /v1/labels`` at its label time. The
logged served vectors are then compared with the point-in-time vectors
``get_historical_features`` gives the same transactions (``inference_pipeline.consistency``,
tolerance 1e-9), and the champion's average precision is computed on both.

The same day is replayed twice more from the same backfilled state: with every request
sent twice (the whole feed, then the whole feed again) and with arrival order shuffled
within 60-second windows. Each replay ends with a digest of the event state (every
``fs:*`` key's content, sorted); the three digests must be equal.

    make bench-replay                       # after make demo
    python -m benchmarks.staleness --limit 2000

The last line is one JSON object: ``served``, ``equal_share``, ``ap_online``,
``ap_offline``, ``digest_in_order``, ``digest_duplicated``, ``digest_shuffled`` and more.
The event state (``fs:*`` keys) is rebuilt by each replay.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import random
import secrets
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from benchmarks.serving_servers import REPO, Server, running
from fraud_platform.devstack.services import free_port
from fraud_platform.runs import new_run_id

SHUFFLE_SECONDS = 60
console = Console(stderr=True)


def feed(transactions: pd.DataFrame, labels: pd.DataFrame) -> list[tuple[int, str, dict]]:
    """The day's requests in time order: (instant in µs, path, body item)."""
    from fraud_platform.event_state import micros
    from inference_pipeline.schemas import request_body

    def body(row: Any) -> dict:
        # A missing location is null in JSON (NaN is not JSON).
        return {
            k: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in request_body(row).items()
        }

    items = [
        (micros(row.event_timestamp.to_pydatetime()), "/v1/score", body(row))
        for row in transactions.itertuples()
    ]
    items += [
        (
            micros(row.label_timestamp.to_pydatetime()),
            "/v1/labels",
            {
                "transaction_id": row.transaction_id,
                "merchant_id": row.merchant_id,
                "is_fraud": True,
                "label_timestamp": row.label_timestamp.isoformat(),
            },
        )
        for row in labels.itertuples()
    ]
    return sorted(items, key=lambda item: (item[0], item[1] == "/v1/labels"))


def shuffled(items: list[tuple[int, str, dict]], seed: int = 7) -> list[tuple[int, str, dict]]:
    """Arrival order shuffled within windows of :data:`SHUFFLE_SECONDS`."""
    rng = random.Random(seed)
    windows: dict[int, list] = {}
    for item in items:
        windows.setdefault(item[0] // (SHUFFLE_SECONDS * 1_000_000), []).append(item)
    out = []
    for key in sorted(windows):
        rng.shuffle(windows[key])
        out += windows[key]
    return out


def send(port: int, api_key: str, items: list[tuple[int, str, dict]]) -> dict[str, Any]:
    """Send the items in order over one connection; consecutive labels go as one batch.
    A 503 is retried (the state operations are idempotent)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "X-API-Key": api_key}
    latencies, labels, retries = [], 0, 0

    def post(path: str, body: Any) -> None:
        nonlocal retries
        for _ in range(20):
            conn.request("POST", path, json.dumps(body), headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status == 200:
                return
            if response.status != 503:
                raise RuntimeError(f"{path}: {response.status} {payload[:300]!r}")
            retries += 1
            time.sleep(0.2)
        raise RuntimeError(f"{path}: still 503 after 20 tries")

    pending: list[dict] = []
    for _, path, body in [*items, (0, "", {})]:
        if path != "/v1/labels" and pending:
            post("/v1/labels", {"labels": pending})
            labels += len(pending)
            pending = []
        if path == "/v1/labels":
            pending.append(body)
        elif path == "/v1/score":
            started = time.perf_counter()
            post(path, body)
            latencies.append(time.perf_counter() - started)
    conn.close()
    ms = np.array(latencies) * 1000
    return {
        "scored": len(latencies),
        "labels": labels,
        "retries": retries,
        "p50_ms": round(float(np.percentile(ms, 50)), 3) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 3) if len(ms) else None,
    }


def replay(
    mode: str, items: list, start: datetime, run_id: str, env: dict[str, str], workdir: Path
) -> dict[str, Any]:
    """Reset and backfill the state, replay ``items`` through a fresh API, digest."""
    from feature_pipeline.event_backfill import backfill
    from fraud_platform.event_state import delete_state, state_digest
    from fraud_platform.redis_client import redis_client

    with redis_client() as client:
        delete_state(client)
    result: dict[str, Any] = {"backfill": backfill(start)}
    api_key = secrets.token_urlsafe(24)
    port = free_port()
    server = Server(
        f"api-{mode}",
        [
            sys.executable,
            "-m",
            "inference_pipeline.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        REPO,
        {
            **env,
            "FRAUD_API_KEY": api_key,
            "FRAUD_FEATURE_LOG": "true",
            "FRAUD_FEATURE_LOG_RUN": f"{run_id}-{mode}",
            "PYTHONUNBUFFERED": "1",
        },
        "/readyz",
        "/v1/score",
        {},
        lambda _: b"",
    )
    with (
        console.status(f"{mode}: replaying {len(items):,} requests through /v1/score..."),
        running(server, port, workdir / f"api-{mode}.log") as info,
    ):
        started = time.perf_counter()
        result["requests"] = send(port, api_key, items)
        result["seconds"] = round(time.perf_counter() - started, 1)
    result["stopped_cleanly"] = info.get("stopped_cleanly")
    with redis_client() as client:
        result["digest"] = state_digest(client)
    return result


MODES = ("in_order", "duplicated", "shuffled")


def run_replay(
    replay_day: date,
    service: str,
    limit: int | None = None,
    modes: tuple[str, ...] = MODES,
    compute: bool = True,
) -> dict[str, Any]:
    """Ingest and compute the day, replay it in each mode, compare the in-order run's
    served vectors with the offline ones.

    Returns:
        ``transactions``, ``fraud_labels``, ``runs`` (per mode: requests, backfill, state
        digest), ``consistency`` (``inference_pipeline.consistency.compare``), and the
        ``served`` and ``offline`` frames.
    """
    from feature_pipeline import pipeline
    from feature_pipeline.event_backfill import span_events
    from fraud_platform.feast_repo import open_store
    from fraud_platform.point_in_time import feature_names
    from fraud_platform.settings import S3Settings
    from inference_pipeline.consistency import compare, offline_vectors, read_logged
    from inference_pipeline.feature_log import log_prefix

    start = datetime(replay_day.year, replay_day.month, replay_day.day, tzinfo=UTC)
    if compute:
        with console.status(f"ingesting {replay_day} and computing its feature tables..."):
            pipeline.ingest(replay_day, replay_day)
            pipeline.compute(replay_day, replay_day)
    transactions, labels = span_events(S3Settings(), start, start + timedelta(days=1))
    transactions = transactions.sort_values(["event_timestamp", "transaction_id"])
    if limit is not None:
        transactions = transactions.head(limit)
        labels = labels[labels["label_timestamp"] <= transactions["event_timestamp"].max()]
    items = feed(transactions, labels)
    feeds = {"in_order": items, "duplicated": items + items, "shuffled": shuffled(items)}
    run_id = f"replay-{new_run_id()}"
    env = dict(os.environ)
    workdir = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    runs = {mode: replay(mode, feeds[mode], start, run_id, env, workdir) for mode in modes}
    with console.status("point-in-time vectors from the offline store..."):
        served = read_logged(log_prefix(S3Settings(), None, f"{run_id}-{modes[0]}"))
        features = feature_names(open_store().get_feature_service(service))
        offline = offline_vectors(served, service)
        consistency = compare(served, offline, features)
    return {
        "transactions": len(transactions),
        "fraud_labels": len(labels),
        "runs": runs,
        "consistency": consistency,
        "served": served,
        "offline": offline,
    }


def main(
    day: Annotated[
        datetime | None,
        typer.Option(
            "--date",
            formats=["%Y-%m-%d"],
            help="The day to replay (default: the demo's held-back day).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1, help="Replay only the first N transactions of the day (and labels until then)."
        ),
    ] = None,
    compute: Annotated[
        bool,
        typer.Option(help="Ingest the day and compute its feature tables first (skip on a rerun)."),
    ] = True,
) -> None:
    logging.basicConfig(level=logging.WARNING)
    from feature_pipeline.generate.landing import held_back_day, read_landing_day
    from fraud_platform.model_registry import CHAMPION, alias_version, load_version
    from inference_pipeline.settings import ModelSettings

    started = time.perf_counter()
    models = ModelSettings()
    version = alias_version(models.name, CHAMPION)
    if version is None:
        console.print("no champion model: run `make demo` first")
        raise typer.Exit(2)
    booster, metadata = load_version(models.name, version)
    replay_day: date = day.date() if day else held_back_day(datetime.now(UTC).date())
    result = run_replay(replay_day, metadata["feature_service"], limit, compute=compute)
    served, offline = result["served"], result["offline"]
    truth = (
        served["transaction_id"]
        .isin(set(read_landing_day(replay_day)[1].query("is_fraud == 1")["transaction_id"]))
        .to_numpy()
        .astype(int)
    )
    ap = average_precisions(booster, metadata["features"], truth, served, offline)
    figures = replay_figures(replay_day, result, ap, version)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    report(figures)
    print(json.dumps(figures, default=str))


def average_precisions(
    booster: Any,
    features: list[str],
    truth: np.ndarray,
    served: pd.DataFrame,
    offline: pd.DataFrame,
) -> dict[str, float | None]:
    """The champion's average precision on the served and on the offline vectors (None
    when the replayed transactions hold no fraud)."""
    from sklearn.metrics import average_precision_score

    booster.set_param({"nthread": 2})
    ap = {}
    for kind, frame in (("online", served), ("offline", offline)):
        matrix = frame[features].to_numpy(dtype=np.float32)
        scores = np.asarray(booster.inplace_predict(matrix))
        ap[kind] = float(average_precision_score(truth, scores)) if truth.any() else None
    return ap


def replay_figures(
    replay_day: date, result: dict[str, Any], ap: dict[str, float | None], version: str
) -> dict[str, Any]:
    """The JSON line's figures (all but the total ``seconds``): consistency, average
    precisions, the three replays' state digests and their requests."""
    consistency, runs = result["consistency"], result["runs"]
    digests = {mode: r["digest"]["sha256"] for mode, r in runs.items()}
    return {
        "day": replay_day.isoformat(),
        "transactions": result["transactions"],
        "fraud_labels": result["fraud_labels"],
        "served": consistency["served"],
        "equal_share": consistency["equal_share"],
        "differing_per_feature": {
            k: v for k, v in consistency["differing_per_feature"].items() if v
        },
        "first_differences": consistency["first_differences"],
        "ap_online": ap["online"],
        "ap_offline": ap["offline"],
        "ap_equal_3dp": (
            None if None in ap.values() else round(ap["online"], 3) == round(ap["offline"], 3)
        ),
        "digest_in_order": digests["in_order"],
        "digest_duplicated": digests["duplicated"],
        "digest_shuffled": digests["shuffled"],
        "digests_equal": len(set(digests.values())) == 1,
        "state_keys": runs["in_order"]["digest"]["keys"],
        "replays": {
            mode: {k: r[k] for k in ("requests", "seconds", "backfill")} for mode, r in runs.items()
        },
        "model_version": version,
    }


def report(figures: dict[str, Any]) -> None:
    table = Table(
        title=f"Replay of {figures['day']}: served vectors against point-in-time "
        f"vectors ({figures['served']:,} transactions)"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("served vectors equal to offline (1e-9)", f"{figures['equal_share']:.4%}")
    for name, share in list(figures["differing_per_feature"].items())[:10]:
        table.add_row(f"  differing: {name}", f"{share:.2%}")
    for kind in ("online", "offline"):
        value = figures[f"ap_{kind}"]
        table.add_row(
            f"average precision, {kind} vectors", "-" if value is None else f"{value:.4f}"
        )
    for mode, replayed in figures["replays"].items():
        requests = replayed["requests"]
        table.add_row(
            f"{mode}: requests, p50 / p99 ms",
            f"{requests['scored']:,} + {requests['labels']:,} labels, "
            f"{requests['p50_ms']} / {requests['p99_ms']}",
        )
        table.add_row(f"{mode}: state digest", figures[f"digest_{mode}"][:16])
    table.add_row(
        "backfill: keys/s", f"{figures['replays']['in_order']['backfill']['keys_per_second']:,}"
    )
    Console().print(table)


if __name__ == "__main__":
    typer.run(main)
