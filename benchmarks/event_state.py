"""Benchmark helpers: seed the online event state, and measure what it costs Redis.

- **State updates per second by one Redis core.** Events are applied pipelined (two script
  calls per transaction: card and merchant) from one client connection; the client-side
  rate is printed, and so is Redis's own: from ``INFO commandstats``, the microseconds the
  server spent per ``EVALSHA``, hence the events one core can apply per second when the
  client is not the limit (on this 2-core machine the Python client usually is).
- **Memory per card** at ``per_card`` events in 30 days: ``MEMORY USAGE`` of a sample of
  cards' keys.

Used by ``benchmarks/serving.py`` (which seeds the state its requests read) and runnable
alone against a scratch database:

    python -m benchmarks.event_state --cards 2000 --per-card 100
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import numpy as np
import typer

from fraud_platform.event_state import TransactionEvent, card_keys, micros, state_commands

SEED = 5
DB = 12


def events(
    cards: list[str], merchants: list[str], per_card: int, end: datetime, seed: int = SEED
) -> list[TransactionEvent]:
    """``per_card`` transactions per card spread over the 30 days before ``end``, in
    time order (as live traffic arrives)."""
    rng = np.random.default_rng(seed)
    n = len(cards) * per_card
    card = np.repeat(np.arange(len(cards)), per_card)
    at = micros(end) - rng.integers(1, 30 * 86_400 * 1_000_000, n)
    merchant = rng.integers(0, len(merchants), n)
    amount = np.round(rng.gamma(2.0, 30.0, n), 2)
    lat, lon = rng.uniform(35, 60, n), rng.uniform(-10, 30, n)
    order = np.argsort(at, kind="stable")
    return [
        TransactionEvent(
            f"seed-{i:09d}",
            cards[card[i]],
            merchants[merchant[i]],
            int(at[i]),
            float(amount[i]),
            float(lat[i]),
            float(lon[i]),
        )
        for i in order
    ]


def apply(client: Any, seeded: list[TransactionEvent], chunk: int = 2_000) -> dict[str, Any]:
    """Apply the events pipelined over one connection; client and server rates."""
    from fraud_platform.event_state import scripts

    for script in scripts():
        client.script_load(script.source)
    client.config_resetstat()
    connection = client.connection_pool.get_connection()
    started = time.perf_counter()
    try:
        for first in range(0, len(seeded), chunk):
            commands = [c for e in seeded[first : first + chunk] for c in state_commands("a", e)]
            connection.send_packed_command([b"".join(commands)])
            for _ in commands:
                connection.read_response()
    finally:
        client.connection_pool.release(connection)
    seconds = time.perf_counter() - started
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    usec_per_call = float(stats.get("usec_per_call", 0.0))
    return {
        "events": len(seeded),
        "seconds": round(seconds, 2),
        "client_events_per_s": round(len(seeded) / seconds),
        "redis_usec_per_call": round(usec_per_call, 2),
        # Two calls (card, merchant) per event: what one Redis core sustains.
        "redis_core_events_per_s": round(1e6 / (2 * usec_per_call)) if usec_per_call else None,
    }


def memory_per_card(client: Any, cards: list[str], sample: int = 200) -> dict[str, Any]:
    """Mean ``MEMORY USAGE`` (bytes) of a card's event keys, over a sample of cards."""
    sizes = [
        sum(client.memory_usage(key, samples=0) or 0 for key in card_keys(card))
        for card in cards[:sample]
    ]
    return {"cards_sampled": len(sizes), "bytes_per_card": round(float(np.mean(sizes)))}


def main(
    cards: Annotated[int, typer.Option(min=1)] = 2_000,
    per_card: Annotated[int, typer.Option(min=1)] = 100,
    merchants: Annotated[int, typer.Option(min=1)] = 500,
) -> None:
    """Seed a scratch Redis database (db 12, flushed before and after) and measure."""
    from fraud_platform.redis_client import redis_client

    names = [f"c{i:07d}" for i in range(cards)]
    seeded = events(
        names,
        [f"m{i:05d}" for i in range(merchants)],
        per_card,
        datetime.now(UTC).replace(microsecond=0) - timedelta(days=1),
    )
    with redis_client(db=DB, socket_timeout=600) as client:
        client.flushdb()
        try:
            figures = apply(client, seeded)
            figures.update(memory_per_card(client, names), cards=cards, per_card=per_card)
        finally:
            client.flushdb()
    print(
        f"state updates: {figures['client_events_per_s']:,} events/s from one pipelined "
        f"client; Redis {figures['redis_usec_per_call']} µs per call = "
        f"{figures['redis_core_events_per_s']:,} events/s per core; "
        f"{figures['bytes_per_card']:,} bytes per card at {per_card} events"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    typer.run(main)
