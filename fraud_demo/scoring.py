"""The demo's calls to the scoring API: wait until it serves the new champion, score
held-back transactions, and measure the latency a client sees."""

from __future__ import annotations

import time
from concurrent.futures import Future
from datetime import date
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from feature_pipeline.generate.landing import read_landing_day
from fraud_demo.runner import StepFailed


def wait_for_champion(
    api_started: Future, url: str, model_name: str | None, timeout: float = 60.0
) -> dict[str, Any]:
    """Wait for the API started in the background to be ready with the registry's current
    champion; return the model it serves (``/readyz``'s ``model``).

    Raises:
        StepFailed: the API did not start, or did not serve the champion in time.
    """
    import httpx

    from fraud_platform.model_registry import CHAMPION, alias_version

    api_started.result()
    champion = alias_version(model_name, CHAMPION) if model_name else None
    if champion is None:
        raise StepFailed(f"no version of {model_name!r} has the alias {CHAMPION!r}")
    deadline = time.monotonic() + timeout
    while True:
        ready = httpx.get(f"{url}/readyz", timeout=5)
        model = ready.json().get("model") or {}
        if ready.status_code == 200 and str(model.get("version")) == champion:
            return model
        if time.monotonic() > deadline:
            raise StepFailed(
                f"the API serves {model or 'no model'} after {timeout:.0f}s, not "
                f"{model_name} v{champion}: {ready.json().get('detail', '')}"
            )
        time.sleep(0.2)


def score_examples(
    url: str, headers: dict[str, str], day: date, per_kind: int = 4
) -> dict[str, Any]:
    """Score planted frauds (one per scenario where possible) and normal transactions of
    the held-back day, which no feature table or Redis key has seen yet."""
    import httpx

    from inference_pipeline.schemas import request_body

    transactions, labels = read_landing_day(day)
    frauds = labels[labels["is_fraud"] == 1]
    chosen = (
        transactions.merge(frauds[["transaction_id", "fraud_scenario"]], on="transaction_id")
        .sort_values("event_timestamp")
        .drop_duplicates("fraud_scenario")
        .head(per_kind)
    )
    normal = transactions[~transactions["transaction_id"].isin(frauds["transaction_id"])]
    normal = normal[normal["card_id"].isin(chosen["card_id"])].drop_duplicates("card_id")
    if len(normal) < per_kind:
        normal = transactions[~transactions["transaction_id"].isin(frauds["transaction_id"])].head(
            per_kind
        )
    rows = [
        *chosen.assign(kind=chosen["fraud_scenario"]).itertuples(),
        *normal.head(per_kind).assign(kind="normal").itertuples(),
    ]
    bodies = [request_body(r) for r in rows]
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        scores = [client.post("/v1/score", json=body) for body in bodies]
    failed = [r.text for r in scores if r.status_code != 200]
    if failed:
        raise StepFailed(f"the API did not score: {failed[0]}")
    return {
        "rows": [
            (row.kind, body, response.json())
            for row, body, response in zip(rows, bodies, scores, strict=True)
        ],
        "bodies": [request_body(r) for r in transactions.head(500).itertuples()],
    }


def measure_latency(
    console: Console, url: str, headers: dict[str, str], bodies: list[dict], requests: int = 1_000
) -> dict[str, Any]:
    """Sequential requests over one connection, with a progress bar: p50 and p99."""
    import httpx
    import numpy as np

    timings = []
    with (
        httpx.Client(base_url=url, headers=headers, timeout=10) as client,
        Progress(
            TextColumn("measuring serving latency"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("latency", total=requests)
        for i in range(requests):
            started = time.perf_counter()
            client.post("/v1/score", json=bodies[i % len(bodies)]).raise_for_status()
            timings.append(time.perf_counter() - started)
            progress.advance(task)
    values = np.array(timings) * 1000
    return {
        "requests": requests,
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
    }
