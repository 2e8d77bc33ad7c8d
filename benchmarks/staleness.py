"""Benchmark: how stale is serving? Online vectors of a replayed day against point-in-time ones.

After ``make demo`` Redis holds every card's and merchant's state as of the end of the last
ingested day, and the next day's transactions are still only in ``landing/`` (held back).
This replays that day the way serving sees it and the way training sees it:

- online: for every transaction of the day, the model's input vector read from Redis by
  the scoring API's own path (``inference_pipeline``: one pipelined read, the on-demand
  features from the request), i.e. the state of the end of the previous day, which is
  what serving answers with until the next materialization;
- offline: the day is ingested and its feature tables computed (the feature pipeline,
  without loading Redis), then ``get_historical_features`` gives each transaction the
  state just before it (``fraud_platform.point_in_time``), as in training.

It reports how often the two vectors differ (any feature, and per feature), and what the
difference costs: the champion's average precision on the day with online against
offline vectors. The gap is the price of hourly/daily materialization; closing it needs
features pushed on each transaction.

    python -m benchmarks.staleness            # the demo's held-back day

It ingests the held-back day into bronze and the feature tables (not into Redis); a rerun
of ``make demo`` resets it. The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

BATCH = 500


def online_vectors(transactions, plan) -> dict[str, list[Any]]:
    """Every transaction's features as the scoring API reads them, in batches."""
    from fraud_platform.settings import RedisSettings
    from inference_pipeline.redis_pipe import RedisPipe
    from inference_pipeline.schemas import Transaction
    from inference_pipeline.scoring import request_fields

    rows = [Transaction(transaction_id=r.transaction_id, card_id=r.card_id,
                        merchant_id=r.merchant_id, amount=float(r.amount),
                        timestamp=r.event_timestamp.to_pydatetime(),
                        latitude=None if math.isnan(r.latitude) else float(r.latitude),
                        longitude=None if math.isnan(r.longitude) else float(r.longitude))
            for r in transactions.itertuples()]

    async def read() -> dict[str, list[Any]]:
        pipe = RedisPipe(RedisSettings(), 5.0)
        values: dict[str, list[Any]] = {name: [] for name in plan.feature_names}
        try:
            for start in range(0, len(rows), BATCH):
                batch = rows[start:start + BATCH]
                keys = [{"card_id": t.card_id, "merchant_id": t.merchant_id} for t in batch]
                replies = await pipe.execute(*plan.pipeline(keys))
                decoded = plan.decode(replies, len(batch), request_fields(batch))
                for name in plan.feature_names:
                    values[name] += decoded.values[name]
        finally:
            await pipe.close()
        return values

    return asyncio.run(read())


def differs(online: np.ndarray, offline: np.ndarray) -> np.ndarray:
    """Element-wise: the values differ (both missing counts as equal)."""
    both_missing = np.isnan(online) & np.isnan(offline)
    close = np.isclose(online, offline, rtol=1e-9, atol=1e-9)
    return ~(both_missing | close)


def main(
    day: Annotated[datetime | None, typer.Option(
        "--date", formats=["%Y-%m-%d"],
        help="The day to replay (default: the demo's held-back day).")] = None,
) -> None:
    logging.basicConfig(level=logging.WARNING)
    from sklearn.metrics import average_precision_score

    from feature_pipeline import pipeline
    from feature_pipeline.generate.landing import held_back_day, read_landing_day
    from feature_pipeline.parity import materialized_until
    from fraud_platform.feast_repo import open_store
    from fraud_platform.model_registry import CHAMPION, alias_version, load_version
    from fraud_platform.point_in_time import historical_features, read_transactions
    from inference_pipeline.online_features import ServingPlan
    from inference_pipeline.settings import ModelSettings

    console = Console(stderr=True)
    started = time.perf_counter()
    store = open_store()
    models = ModelSettings()
    version = alias_version(models.name, CHAMPION)
    if version is None:
        console.print("no champion model: run `make demo` first")
        raise typer.Exit(2)
    booster, metadata = load_version(models.name, version)
    service = metadata["feature_service"]
    until = materialized_until(store, store.get_feature_service(service))
    replay: date = day.date() if day else held_back_day(datetime.now(UTC).date())
    console.print(f"Redis holds the state as of {until:%Y-%m-%d %H:%M} (materialized); "
                  f"replaying {replay}")

    with console.status(f"ingesting {replay} and computing its feature tables..."):
        pipeline.ingest(replay, replay)
        pipeline.compute(replay, replay)
    start = datetime(replay.year, replay.month, replay.day, tzinfo=UTC)
    transactions = read_transactions(start, start + timedelta(days=1))
    _, labels = read_landing_day(replay)
    frauds = set(labels.loc[labels["is_fraud"] == 1, "transaction_id"])
    truth = transactions["transaction_id"].isin(frauds).to_numpy().astype(int)

    plan = ServingPlan.resolve(store, service)
    features = metadata["features"]
    with console.status(f"reading {len(transactions):,} online vectors from Redis..."):
        online_values = online_vectors(transactions, plan)
    online = np.array([online_values[name] for name in features], dtype=np.float64).T
    with console.status("point-in-time vectors from the offline store..."):
        rows = transactions.rename(columns={"event_timestamp": "transaction_timestamp"})
        offline_frame = historical_features(store, rows, service).frame
    offline = offline_frame[features].to_numpy(dtype=np.float64)

    diff = differs(online, offline)
    per_feature = dict(sorted(
        ((name.split("__", 1)[1], float(share)) for name, share in
         zip(features, diff.mean(axis=0), strict=True)), key=lambda item: -item[1]))
    booster.set_param({"nthread": 2})
    scores = {kind: np.asarray(booster.inplace_predict(matrix.astype(np.float32)))
              for kind, matrix in (("online", online), ("offline", offline))}
    ap = {kind: float(average_precision_score(truth, s)) if truth.any() else None
          for kind, s in scores.items()}
    figures: dict[str, Any] = {
        "day": replay.isoformat(),
        "state_as_of": until.isoformat(),
        "transactions": len(transactions),
        "frauds": int(truth.sum()),
        "rows_with_any_difference": float(diff.any(axis=1).mean()),
        "features_differing_per_row_mean": float(diff.sum(axis=1).mean()),
        "top_differing_features": dict(list(per_feature.items())[:10]),
        "average_precision": ap,
        "average_precision_cost": (ap["offline"] - ap["online"]
                                   if None not in ap.values() else None),
        "model_version": version,
        "seconds": round(time.perf_counter() - started, 1),
    }
    table = Table(title=f"Online (state of {until:%Y-%m-%d}) against point-in-time vectors, "
                        f"{replay}, {len(transactions):,} transactions")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("rows whose vector differs", f"{figures['rows_with_any_difference']:.1%}")
    table.add_row("features differing per row (mean)",
                  f"{figures['features_differing_per_row_mean']:.1f} of {len(features)}")
    for name, share in figures["top_differing_features"].items():
        table.add_row(f"  {name}", f"{share:.1%}")
    for kind, value in ap.items():
        table.add_row(f"average precision, {kind} vectors",
                      "-" if value is None else f"{value:.4f}")
    Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    typer.run(main)
