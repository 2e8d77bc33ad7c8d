"""Benchmark: cold start, the online event state of N cards rebuilt from the offline store.

Writes ``--cards`` cards' transactions (``--per-card`` each, in the 30 days before
``until``, over ``--merchants`` merchants) and 1% of them as fraud labels as bronze
Parquet on S3 (under a ``bench/`` prefix, the layout the feature pipeline publishes), then
runs ``feature_pipeline.event_backfill.backfill`` against a scratch Redis database (db 12,
flushed before and after): the read of bronze from S3, the commands, and the pipelined
apply with the serving scripts, exactly as a cold Redis is rebuilt.

For scale, the same events are then applied again from memory, into the emptied
database, by ``benchmarks/event_state.apply`` (no S3 read, no command building): the
ceiling of the apply on this machine. Prints a table, then one JSON line with keys/s,
cards/s, the seconds of each phase, the sizes, the memory the state takes in Redis (cards
and merchants, per card) and the driver's peak resident memory.

    python -m benchmarks.cold_start --cards 100000 --per-card 10

Needs the local stack's environment (``set -a; . .local/stack.env; set +a``).
"""

from __future__ import annotations

import json
import resource
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from benchmarks.event_state import DB, apply, events
from fraud_platform import layout
from fraud_platform.event_state import TransactionEvent
from fraud_platform.settings import RedisSettings, S3Settings

console = Console(stderr=True)


def write_bronze(s3: S3Settings, seeded: list[TransactionEvent], until: datetime) -> int:
    """The events as the bronze transactions and labels tables; the bytes written."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fraud_platform.s3 import arrow_filesystem

    at = pd.to_datetime([e.at_us for e in seeded], unit="us", utc=True)
    transactions = pd.DataFrame(
        {
            "transaction_id": [e.transaction_id for e in seeded],
            "card_id": [e.card_id for e in seeded],
            "merchant_id": [e.merchant_id for e in seeded],
            "amount": [e.amount for e in seeded],
            "latitude": [e.latitude for e in seeded],
            "longitude": [e.longitude for e in seeded],
            "channel": "pos",
            "event_timestamp": at,
            "event_date": at.strftime("%Y-%m-%d"),
        }
    )
    fraud = transactions.sample(frac=0.01, random_state=3)
    label_at = (fraud["event_timestamp"] + pd.Timedelta(days=2)).clip(
        upper=pd.Timestamp(until) - pd.Timedelta(seconds=1)
    )
    labels = pd.DataFrame(
        {
            "transaction_id": fraud["transaction_id"],
            "is_fraud": 1,
            "label_timestamp": label_at,
            "label_date": label_at.dt.strftime("%Y-%m-%d"),
        }
    )
    filesystem = arrow_filesystem(s3)
    written = 0
    for table, frame, partition in (
        (layout.TRANSACTIONS, transactions, "event_date"),
        (layout.LABELS, labels, "label_date"),
    ):
        root = s3.uri(layout.BRONZE, table).removeprefix("s3://")
        ds.write_dataset(
            pa.Table.from_pandas(frame, preserve_index=False),
            root,
            format="parquet",
            partitioning=[partition],
            partitioning_flavor="hive",
            filesystem=filesystem,
            existing_data_behavior="delete_matching",
        )
        written += sum(f.size for f in filesystem.get_file_info(_selector(root)) if f.is_file)
    return written


def _selector(root: str) -> Any:
    from pyarrow.fs import FileSelector

    return FileSelector(root, recursive=True)


def _remove(s3: S3Settings) -> None:
    from fraud_platform.s3 import s3_client

    client = s3_client(s3)
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=s3.bucket, Prefix=f"{s3.prefix}/"
    ):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=s3.bucket, Delete={"Objects": keys})


def measure(cards: int, per_card: int, merchants: int) -> dict[str, Any]:
    """Write bronze, rebuild the state from it, then apply the same events from memory."""
    from feature_pipeline.event_backfill import backfill
    from fraud_platform.redis_client import redis_client

    base = S3Settings()
    s3 = S3Settings(
        prefix="/".join(p for p in (base.prefix, f"bench/cold-{uuid.uuid4().hex[:8]}") if p)
    )
    until = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    names = [f"c{i:07d}" for i in range(cards)]
    seeded = events(names, [f"m{i:05d}" for i in range(merchants)], per_card, until)
    redis = RedisSettings()
    scratch = RedisSettings(
        connection_string=f"{redis.connection_string.get_secret_value()},db={DB}"
    )
    try:
        with console.status(f"writing {len(seeded):,} bronze transactions..."):
            size = write_bronze(s3, seeded, until)
        with redis_client(scratch, socket_timeout=600) as client:
            client.flushdb()
            empty = int(client.info("memory")["used_memory"])
            with console.status("rebuilding the event state from bronze..."):
                rebuilt = backfill(until, s3=s3, settings=scratch)
            memory = int(client.info("memory")["used_memory"]) - empty
            client.flushdb()
            with console.status("applying the same events from memory..."):
                ceiling = apply(client, seeded)
            client.flushdb()
    finally:
        _remove(s3)
    return {
        "cards": cards,
        "per_card": per_card,
        "merchants": merchants,
        "transactions": rebuilt["transactions"],
        "fraud_labels": rebuilt["fraud_labels"],
        "bronze_bytes": size,
        "keys": rebuilt["keys"],
        "read_seconds": rebuilt["read_seconds"],
        "seconds": rebuilt["seconds"],
        "keys_per_s": round(rebuilt["keys"] / rebuilt["seconds"]),
        "cards_per_s": round(cards / rebuilt["seconds"]),
        "apply_keys_per_s": rebuilt["keys_per_second"],
        # The whole state (cards and merchants) per card.
        "redis_state_bytes": memory,
        "redis_bytes_per_card": round(memory / cards),
        "in_memory_apply_seconds": ceiling["seconds"],
        "in_memory_events_per_s": ceiling["client_events_per_s"],
        "ratio_to_in_memory_apply": round(rebuilt["seconds"] / ceiling["seconds"], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(
    cards: Annotated[int, typer.Option(min=1)] = 100_000,
    per_card: Annotated[int, typer.Option(min=1)] = 10,
    merchants: Annotated[int, typer.Option(min=1)] = 5_000,
) -> None:
    """Rebuild the event state of ``cards`` cards from bronze on S3 and print the rates."""
    started = time.perf_counter()
    figures = measure(cards, per_card, merchants)
    figures["wall_seconds"] = round(time.perf_counter() - started, 1)
    table = Table(title=f"cold start: {cards:,} cards, {per_card} events each")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name in (
        "transactions",
        "fraud_labels",
        "bronze_bytes",
        "keys",
        "read_seconds",
        "seconds",
        "keys_per_s",
        "cards_per_s",
        "redis_bytes_per_card",
        "in_memory_apply_seconds",
        "ratio_to_in_memory_apply",
        "peak_rss_mb",
    ):
        value = figures[name]
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    typer.run(main)
