"""Benchmark: materializing card features into Redis, our writer against Feast's engine.

Writes N cards' synthetic ``card_transaction_features`` rows (one row per card, all
columns of the real table) to S3 with pyarrow, applies the Feast repo into a throwaway
registry, then in one run materializes the same interval twice:

- ``feature_pipeline.materialize`` into Redis db 14;
- Feast's own local engine (``FeatureStore.materialize``, the engine behind
  ``feast materialize``) into Redis db 15, with the repo's ``feature_store.yaml``
  (``pull_latest_features`` and ``online_write_batch_size`` set), or with Feast's defaults
  (``--feast-defaults``).

Both are timed as the wall time of the call with the store already open (reading S3,
dedup, encoding, writing, registry updates). Prints keys/s of both and their ratio, Redis
bytes per card (``INFO memory`` before and after each), checks that both wrote identical
hashes for a sample of cards and that ``get_online_features`` reads the same values, and
ends with one JSON line.

    python benchmarks/materialize.py                 # 1,000,000 cards
    python benchmarks/materialize.py --cards 100000

Needs the local stack's environment (``set -a; . .local/stack.env; set +a``). It owns
Redis databases 14 and 15 (flushed before and after) and an S3 prefix under ``bench/``
(removed after unless ``--keep``).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

# Run as a script, this folder comes first on sys.path, and its feature_pipeline.py
# (the feature pipeline's benchmark) would shadow the package of the same name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

OURS_DB = 14
FEAST_DB = 15
DAY = datetime(2026, 10, 10, tzinfo=UTC)
VIEW = "card_transaction_features"


def card_table(cards: int, seed: int = 7):
    """One row per card, shaped like the pipeline's card_transaction_features."""
    import pyarrow as pa

    from fraud_platform.windows import CARD_WINDOWS

    rng = np.random.default_rng(seed)
    seconds = rng.integers(0, 86_400, cards)
    event = np.datetime64(DAY.replace(tzinfo=None), "s") + seconds.astype("timedelta64[s]")
    columns: dict[str, Any] = {
        "card_id": pa.array([f"c{i:07d}" for i in range(cards)]),
        "event_timestamp": pa.array(event.astype("datetime64[ns]")),
        "created": pa.array(np.full(cards, np.datetime64("2026-10-11T01:00:00", "ns"))),
    }
    counts = np.ones(cards, np.int64)
    for window in CARD_WINDOWS:
        counts = counts + rng.integers(0, 4, cards)
        amounts = np.round(rng.gamma(2.0, 30.0, cards) * counts, 2)
        columns[f"txn_count_{window}"] = pa.array(counts)
        columns[f"amount_sum_{window}"] = pa.array(amounts)
        columns[f"amount_mean_{window}"] = pa.array(np.round(amounts / counts, 2))
        columns[f"amount_max_{window}"] = pa.array(np.round(amounts / counts * 1.5, 2))
    first = rng.random(cards) < 0.1  # first transaction of the card: no previous step
    gap = rng.exponential(20_000.0, cards)
    distance = rng.exponential(15.0, cards)
    columns["distinct_merchants_24h"] = pa.array(rng.integers(1, 6, cards).astype(np.int32))
    columns["seconds_since_prev_txn"] = pa.array(
        np.where(first, np.nan, np.round(gap)), from_pandas=True
    )
    columns["distance_from_prev_km"] = pa.array(
        np.where(first, np.nan, np.round(distance, 3)), from_pandas=True
    )
    columns["speed_from_prev_kmh"] = pa.array(
        np.where(first, np.nan, np.round(distance / (np.round(gap) + 1) * 3600, 3)),
        from_pandas=True,
    )
    columns["last_latitude"] = pa.array(rng.uniform(35, 60, cards))
    columns["last_longitude"] = pa.array(rng.uniform(-10, 30, cards))
    columns["last_amount"] = pa.array(np.round(rng.gamma(2.0, 30.0, cards), 2))
    columns["last_txn_timestamp"] = pa.array(event.astype("datetime64[s]").astype(np.int64))
    return pa.table(columns)


def small_tables():
    """Profile and merchant tables of a few rows: `feast apply` needs every source."""
    import pyarrow as pa

    ts = pa.array(np.array(["2024-01-01T00:00:00"] * 2, "datetime64[ns]"))
    profile = pa.table(
        {
            "card_id": ["c0000000", "c0000001"],
            "event_timestamp": ts,
            "created": ts,
            "issue_timestamp": pa.array([1_704_067_200] * 2, pa.int64()),
            "credit_limit": [1000.0, 2000.0],
            "home_latitude": [40.0, 41.0],
            "home_longitude": [2.0, 3.0],
        }
    )
    merchant = {"merchant_id": ["m0", "m1"], "event_timestamp": ts, "created": ts}
    for window in ("1d", "7d", "30d"):
        merchant[f"txn_count_{window}"] = pa.array([1, 2], pa.int64())
        merchant[f"fraud_count_{window}"] = pa.array([0, 1], pa.int64())
        merchant[f"fraud_rate_{window}"] = [0.0, 0.5]
    return profile, pa.table(merchant)


def write_tables(cards: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from fraud_platform import layout
    from fraud_platform.s3 import arrow_filesystem
    from fraud_platform.settings import S3Settings

    s3 = S3Settings()
    fs = arrow_filesystem(s3)
    started = time.perf_counter()
    table = card_table(cards)
    built = time.perf_counter() - started
    day = DAY.date().isoformat()
    base = f"{s3.bucket}/{s3.key(layout.SILVER)}"
    pq.write_table(
        table,
        f"{base}/{layout.CARD_TRANSACTION_FEATURES}/event_date={day}/part-00000.parquet",
        filesystem=fs,
    )
    profile, merchant = small_tables()
    pq.write_table(
        profile, f"{base}/{layout.CARD_PROFILE_FEATURES}/part-00000.parquet", filesystem=fs
    )
    pq.write_table(
        merchant,
        f"{base}/{layout.MERCHANT_RISK_FEATURES}/event_date={day}/part-00000.parquet",
        filesystem=fs,
    )
    return {
        "build_s": round(built, 2),
        "write_s": round(time.perf_counter() - started - built, 2),
        "bytes_in_memory": table.nbytes,
    }


def with_db(connection_string: str, db: int) -> str:
    parts = [p for p in connection_string.split(",") if not re.match(r"\s*db=", p)]
    return ",".join([*parts, f"db={db}"])


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def used_memory(client) -> int:
    return int(client.info("memory")["used_memory"])


def hset_server_time(client) -> tuple[int, int]:
    """HSET calls and microseconds Redis has spent in them (server-wide counters)."""
    stats = client.info("commandstats").get("cmdstat_hset", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def server_us_per_hset(client, before: tuple[int, int]) -> float | None:
    calls, usec = hset_server_time(client)
    return round((usec - before[1]) / (calls - before[0]), 2) if calls > before[0] else None


def open_store_on(db: int, base_connection: str):
    os.environ["REDIS_CONNECTION_STRING"] = with_db(base_connection, db)
    from feature_pipeline.feature_store import open_store

    return open_store()


def compare_stores(ours, feast, redis_ours, redis_feast, cards: int, sample: int = 200) -> dict:
    """Byte-compare the hashes of sampled cards, then compare get_online_features."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    rng = np.random.default_rng(1)
    ids = [f"c{i:07d}" for i in rng.choice(cards, min(sample, cards), replace=False)]
    project = ours.project.encode()
    different_hashes = []
    for card in ids:
        key = (
            serialize_entity_key(
                EntityKey(join_keys=["card_id"], entity_values=[Value(string_val=card)]), 3
            )
            + project
        )
        if redis_ours.hgetall(key) != redis_feast.hgetall(key):
            different_hashes.append(card)
    features = [f"{VIEW}:{f.name}" for f in ours.get_feature_view(VIEW).features]
    rows = [{"card_id": card} for card in ids]
    online_ours = ours.get_online_features(features=features, entity_rows=rows).to_dict()
    online_feast = feast.get_online_features(features=features, entity_rows=rows).to_dict()
    return {
        "cards_compared": len(ids),
        "hashes_identical": not different_hashes,
        "different_hashes": different_hashes[:5],
        "online_features_identical": online_ours == online_feast,
    }


def main(
    cards: Annotated[int, typer.Option(help="Cards (one feature row each).")] = 1_000_000,
    batch_rows: Annotated[int, typer.Option(help="Keys per pipelined batch (ours).")] = 20_000,
    feast_defaults: Annotated[
        bool,
        typer.Option(
            help="Run Feast's engine with its default materialization settings "
            "(pull_latest_features off, one write batch)."
        ),
    ] = False,
    skip_feast: Annotated[bool, typer.Option(help="Only run our writer.")] = False,
    keep: Annotated[bool, typer.Option(help="Keep the S3 prefix and Redis data.")] = False,
) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    base_connection = os.environ["REDIS_CONNECTION_STRING"]
    os.environ["FRAUD_S3_PREFIX"] = f"bench/materialize-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-materialize-"))
    os.environ["FEAST_REGISTRY_PATH"] = f"sqlite:///{workdir / 'registry.db'}"

    from feature_pipeline.feature_store import apply_definitions
    from fraud_platform.redis_client import redis_client

    figures: dict[str, Any] = {
        "cards": cards,
        "batch_rows": batch_rows,
        "cpu_count": os.cpu_count(),
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    redis_ours = redis_client(db=OURS_DB, socket_timeout=600)
    redis_feast = redis_client(db=FEAST_DB, socket_timeout=600)
    start, end = DAY, DAY + timedelta(days=1)
    try:
        figures["data"] = write_tables(cards)
        print(f"wrote {cards:,} card rows in {figures['data']['write_s']}s")
        os.environ["REDIS_CONNECTION_STRING"] = with_db(base_connection, OURS_DB)
        apply_definitions()

        redis_ours.flushdb()
        redis_feast.flushdb()
        ours = open_store_on(OURS_DB, base_connection)
        figures["ours"] = measure_ours(ours, redis_ours, start, end, batch_rows)
        if not skip_feast:
            feast = open_store_on(FEAST_DB, base_connection)
            measure_feast(figures, feast, redis_feast, start, end, feast_defaults)
            figures["check"] = compare_stores(ours, feast, redis_ours, redis_feast, cards)
            print(f"check: {figures['check']}")
        figures["load_average_after"] = round(os.getloadavg()[0], 2)
    finally:
        if not keep:
            redis_ours.flushdb()
            redis_feast.flushdb()
            _remove_prefix()
    print(json.dumps(figures))


def measure_ours(
    ours: Any, redis_ours: Any, start: datetime, end: datetime, batch_rows: int
) -> dict[str, Any]:
    """Our writer's materialization of the view: time, keys/s, where the time went, Redis
    bytes and server time per key, and this process's CPU."""
    from feature_pipeline.materialize import materialize

    gc.collect()
    before = used_memory(redis_ours)
    hsets = hset_server_time(redis_ours)
    cpu = cpu_seconds()
    started = time.perf_counter()
    result = materialize(end, start, feature_views=[VIEW], store=ours, batch_rows=batch_rows)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    after = used_memory(redis_ours)
    view = result["views"][VIEW]
    figures = {
        "seconds": round(seconds, 2),
        "keys": view["keys"],
        "keys_per_s": round(view["keys"] / seconds),
        "read_s": view["read_s"],
        "encode_s": view["encode_s"],
        "wait_s": view["wait_s"],
        "redis_bytes_per_card": round((after - before) / max(view["keys"], 1), 1),
        "redis_us_per_hset": server_us_per_hset(redis_ours, hsets),
        "client_cpu_s": round(cpu, 2),
    }
    print(
        f"ours : {view['keys']:,} keys in {seconds:.2f}s = "
        f"{figures['keys_per_s']:,} keys/s "
        f"({figures['redis_bytes_per_card']} Redis bytes per card)"
    )
    return figures


def measure_feast(
    figures: dict[str, Any],
    feast: Any,
    redis_feast: Any,
    start: datetime,
    end: datetime,
    feast_defaults: bool,
) -> None:
    """Feast's own materialization of the view, measured as ours is, and the ratio; into
    ``figures`` (``feast_settings``, ``feast``, ``speedup``)."""
    if feast_defaults:
        from feast.repo_config import MaterializationConfig

        feast.config.materialization_config = MaterializationConfig()
    figures["feast_settings"] = feast.config.materialization_config.model_dump()
    gc.collect()
    before = used_memory(redis_feast)
    hsets = hset_server_time(redis_feast)
    cpu = cpu_seconds()
    started = time.perf_counter()
    feast.materialize(start, end, feature_views=[VIEW])
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    after = used_memory(redis_feast)
    keys = redis_feast.dbsize()
    figures["feast"] = {
        "seconds": round(seconds, 2),
        "keys": keys,
        "keys_per_s": round(keys / seconds),
        "redis_bytes_per_card": round((after - before) / max(keys, 1), 1),
        "redis_us_per_hset": server_us_per_hset(redis_feast, hsets),
        "client_cpu_s": round(cpu, 2),
    }
    figures["speedup"] = round(figures["ours"]["keys_per_s"] / figures["feast"]["keys_per_s"], 1)
    print(
        f"feast: {keys:,} keys in {seconds:.2f}s = "
        f"{figures['feast']['keys_per_s']:,} keys/s "
        f"({figures['feast']['redis_bytes_per_card']} Redis bytes per card)"
    )
    print(f"ratio: {figures['speedup']}x")


def _remove_prefix() -> None:
    from fraud_platform.s3 import delete_prefix
    from fraud_platform.settings import S3Settings

    settings = S3Settings()
    delete_prefix(settings.key() + "/", settings)


if __name__ == "__main__":
    typer.run(main)
