"""Cold start: rebuild the online event state from the offline store.

A cold (or repaired) Redis holds no events, so every window would read empty. This applies
the bronze transactions of the last :data:`~fraud_platform.event_state.KEPT_SECONDS` before
``until`` and the fraud labels known in that span to the card and merchant states, with
the same per-key scripts as serving (``fraud_platform/lua/``), pipelined. The scripts are
idempotent by ``transaction_id`` and order-independent, so a rerun, or a backfill that
overlaps live traffic, changes nothing already applied; the state after it is the state
live traffic would have built.

:func:`repair` does the same for named cards and merchants only (the keys the consistency
report names): it applies their events again, which adds any the live path missed, or,
with ``reset``, first deletes their keys, which also removes events the offline store
does not have.

    feature-pipeline backfill-events --until 2026-04-20T00:00:00
    feature-pipeline repair-events --until 2026-04-20T00:00:00 --card c-1 --merchant m-7
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from fraud_platform import layout
from fraud_platform.event_state import (
    KEPT_SECONDS,
    TransactionEvent,
    card_keys,
    merchant_command,
    merchant_keys,
    micros,
    scripts,
    state_commands,
)
from fraud_platform.point_in_time import bronze_table, utc
from fraud_platform.redis_client import redis_client
from fraud_platform.settings import RedisSettings, S3Settings

log = logging.getLogger(__name__)

LABEL_LOOKBACK = timedelta(days=120)
"""How far before the span a labelled transaction may lie (as the feature pipeline reads)."""
CHUNK = 5_000
"""Commands per pipelined write."""


def span_events(
    s3: S3Settings, start: datetime, until: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transactions of ``[start, until)`` and fraud labels known in it, with merchants."""
    import pyarrow.dataset as ds

    columns = [
        "transaction_id",
        "card_id",
        "merchant_id",
        "amount",
        "latitude",
        "longitude",
        "channel",
        "event_timestamp",
    ]
    in_span = (ds.field("event_timestamp") >= pd.Timestamp(start)) & (
        ds.field("event_timestamp") < pd.Timestamp(until)
    )
    transactions = bronze_table(
        s3, layout.TRANSACTIONS, "event_date", start.date(), until.date(), columns, in_span
    ).to_pandas()
    labels = bronze_table(
        s3,
        layout.LABELS,
        "label_date",
        None,
        None,
        ["transaction_id", "is_fraud", "label_timestamp"],
    ).to_pandas()
    labels["label_timestamp"] = utc(labels["label_timestamp"])
    labels = labels[
        (labels["is_fraud"] == 1)
        & (labels["label_timestamp"] >= start)
        & (labels["label_timestamp"] < until)
    ]
    labelled = bronze_table(
        s3,
        layout.TRANSACTIONS,
        "event_date",
        (start - LABEL_LOOKBACK).date(),
        until.date(),
        ["transaction_id", "merchant_id"],
    ).to_pandas()
    labels = labels.merge(labelled.drop_duplicates("transaction_id"), on="transaction_id")
    transactions["event_timestamp"] = utc(transactions["event_timestamp"])
    return transactions, labels


def commands(transactions: pd.DataFrame, labels: pd.DataFrame) -> list[bytes]:
    """Every apply command: two per transaction (card, merchant), one per fraud label."""
    out: list[bytes] = []
    for row in transactions.itertuples(index=False):
        event = TransactionEvent(
            row.transaction_id,
            row.card_id,
            row.merchant_id,
            micros(row.event_timestamp),
            float(row.amount),
            None if pd.isna(row.latitude) else float(row.latitude),
            None if pd.isna(row.longitude) else float(row.longitude),
        )
        out.extend(state_commands("a", event))
    for row in labels.itertuples(index=False):
        out.append(
            merchant_command("l", row.merchant_id, micros(row.label_timestamp), row.transaction_id)
        )
    return out


def apply(all_commands: list[bytes], settings: RedisSettings | None = None) -> int:
    """Send the commands pipelined in chunks; how many events they inserted."""
    inserted = 0
    with redis_client(settings, socket_timeout=60) as client:
        for script in scripts():
            client.script_load(script.source)
        connection = client.connection_pool.get_connection()
        try:
            for first in range(0, len(all_commands), CHUNK):
                chunk = all_commands[first : first + CHUNK]
                connection.send_packed_command([b"".join(chunk)])
                inserted += sum(connection.read_response()[-1] for _ in chunk)
        finally:
            client.connection_pool.release(connection)
    return inserted


def backfill(
    until: datetime, s3: S3Settings | None = None, settings: RedisSettings | None = None
) -> dict[str, Any]:
    """Rebuild the event state as of ``until`` (exclusive) from bronze.

    Returns:
        JSON-safe counts: transactions, labels, cards, merchants, keys (Redis keys of the
        state), inserted events, seconds, keys per second.
    """
    started = time.perf_counter()
    start = until - timedelta(seconds=KEPT_SECONDS)
    transactions, labels = span_events(s3 or S3Settings(), start, until)
    read = time.perf_counter() - started
    all_commands = commands(transactions, labels)
    inserted = apply(all_commands, settings)
    seconds = time.perf_counter() - started
    cards = transactions["card_id"].nunique()
    merchants = pd.concat([transactions["merchant_id"], labels["merchant_id"]]).nunique()
    keys = 2 * cards + 3 * merchants
    result = {
        "until": until.isoformat(),
        "transactions": len(transactions),
        "fraud_labels": len(labels),
        "cards": int(cards),
        "merchants": int(merchants),
        "keys": int(keys),
        "inserted": inserted,
        "read_seconds": round(read, 2),
        "seconds": round(seconds, 2),
        "entities_per_second": round((cards + merchants) / max(seconds - read, 1e-9)),
        "keys_per_second": round(keys / max(seconds - read, 1e-9)),
    }
    log.info("event state backfilled: %s", result)
    return result


def repair(
    until: datetime,
    cards: list[str],
    merchants: list[str],
    reset: bool = False,
    s3: S3Settings | None = None,
    settings: RedisSettings | None = None,
) -> dict[str, Any]:
    """Apply again the events of the span that touch the named cards' and merchants' state.

    Without ``reset`` this is safe beside live traffic: it only adds missing events. With
    it, the keys are deleted first, so events the live path applied after ``until`` are
    gone from them until they are applied again (run it with ``until`` at the newest
    instant bronze holds, when the key can wait for the next backfill or replay).
    """
    start = until - timedelta(seconds=KEPT_SECONDS)
    transactions, labels = span_events(s3 or S3Settings(), start, until)
    transactions = transactions[
        transactions["card_id"].isin(cards) | transactions["merchant_id"].isin(merchants)
    ]
    labels = labels[labels["merchant_id"].isin(merchants)]
    deleted = 0
    if reset:
        keys = [k for c in cards for k in card_keys(c)] + [
            k for m in merchants for k in merchant_keys(m)
        ]
        with redis_client(settings) as client:
            # One key per command: on Redis Cluster the keys lie in different slots.
            deleted = sum(int(client.unlink(key)) for key in keys)
    inserted = apply(commands(transactions, labels), settings)
    result = {
        "until": until.isoformat(),
        "cards": len(cards),
        "merchants": len(merchants),
        "transactions": len(transactions),
        "fraud_labels": len(labels),
        "keys_deleted": deleted,
        "inserted": inserted,
    }
    log.info("event state repaired: %s", result)
    return result


def rebuild(
    until: datetime, cards: list[str], merchants: list[str], reset: bool = False
) -> dict[str, Any]:
    """The whole event state as of ``until`` or, when keys are named, only theirs."""
    if cards or merchants:
        return repair(until, cards, merchants, reset)
    return backfill(until)
