"""The online event state on a real Redis: window edges against the offline kernels,
duplicates, arrival order, labels, a restart mid-replay and concurrent writers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import polars as pl
import pytest
import redis

from feature_pipeline.features.card_transactions import card_windows
from feature_pipeline.features.merchant_risk import merchant_windows
from feature_pipeline.features.windows import TS
from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.services import RedisService, free_port
from fraud_platform.event_features import CARD_WINDOWS, MERCHANT_WINDOWS, MICROS
from fraud_platform.event_state import (
    TransactionEvent,
    card_command,
    card_keys,
    delete_state,
    merchant_command,
    merchant_keys,
    state_commands,
    state_digest,
)
from fraud_platform.settings import RedisSettings
from inference_pipeline.redis_pipe import RedisPipe, RedisUnavailableError

pytestmark = pytest.mark.integration

T0 = 1_780_000_000 * MICROS
MINUTE, DAY = 60 * MICROS, 86_400 * MICROS
PASSWORD = "eventstate"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RedisService]:
    service = RedisService(
        name="redis-event-state",
        port=free_port(),
        config=StackConfig(dir=tmp_path_factory.mktemp("event-state")),
        process_name="redis-server",
        password=PASSWORD,
    )
    service.start()
    yield service
    service.stop()


@pytest.fixture
def client(server: RedisService) -> Iterator[redis.Redis]:
    with redis.Redis(port=server.port, password=PASSWORD) as connection:
        delete_state(connection)
        yield connection


def settings(server: RedisService) -> RedisSettings:
    return RedisSettings(connection_string=f"127.0.0.1:{server.port},password={PASSWORD}")


def execute(server: RedisService, commands: list[bytes]) -> list[Any]:
    """One pipeline on a new connection (which loads the scripts first)."""

    async def go() -> list[Any]:
        pipe = RedisPipe(settings(server), 10.0)
        try:
            return await pipe.execute(b"".join(commands), len(commands))
        finally:
            await pipe.close()

    return asyncio.run(go())


def event(
    i: int,
    card: str,
    merchant: str,
    at: int,
    amount: float = 10.0,
    lat: float | None = 1.0,
    lon: float | None = 2.0,
) -> TransactionEvent:
    return TransactionEvent(f"tx{i:05d}", card, merchant, at, amount, lat, lon)


def edge_events() -> list[TransactionEvent]:
    """Events exactly one window before a later one, ties at one instant, a missing
    location, and random ones over 40 days."""
    t = T0 + 40 * DAY
    events = [
        event(i, "c-edge", "m-edge", t - seconds * MICROS, 3.5)
        for i, seconds in enumerate((*CARD_WINDOWS.values(), *MERCHANT_WINDOWS.values()))
    ]
    events += [
        event(100, "c-edge", "m-edge", t, 1.25),
        event(101, "c-edge", "m-2", t, 2.5),
        event(102, "c-edge", "m-edge", t + 1, 7.0, None, None),
        # One id the prefix of another at one instant: the longer sorts last (as offline),
        # so its location is the last one the read at t + 3 sees.
        event(103, "c-edge", "m-edge", t + 2, 8.0, 10.0, 20.0),
        TransactionEvent("tx00103-b", "c-edge", "m-2", t + 2, 9.0, 30.0, 40.0),
        event(104, "c-edge", "m-edge", t + 3, 1.0),
    ]
    rng = random.Random(3)
    for j in range(400):
        at = T0 + rng.choice([0, 1]) * rng.randrange(0, 40 * DAY) + rng.choice([0, MINUTE])
        events.append(
            event(
                200 + j,
                f"c{rng.randrange(6)}",
                f"m{rng.randrange(3)}",
                at,
                round(rng.uniform(1, 300), 2),
                rng.uniform(-60, 60),
                rng.uniform(-100, 100),
            )
        )
    return sorted(events, key=lambda e: (e.at_us, e.transaction_id))


def offline_card_rows(events: list[TransactionEvent]) -> dict[tuple[str, int], dict]:
    frame = pl.DataFrame(
        [
            (e.transaction_id, e.card_id, e.merchant_id, e.amount, e.latitude, e.longitude, e.at_us)
            for e in events
        ],
        schema=["transaction_id", "card_id", "merchant_id", "amount", "latitude", "longitude", TS],
        orient="row",
    )
    return {(r["card_id"], r[TS]): r for r in card_windows(frame).iter_rows(named=True)}


def same(served: list[Any], offline: list[Any]) -> bool:
    """Equal values, floats to 1e-12 (Lua and Polars add in different orders)."""

    def close(a: Any, b: Any) -> bool:
        a = float(a) if isinstance(a, bytes) else a
        if a is None or b is None:
            return a is None and b is None
        return abs(a - b) <= 1e-12 * max(1.0, abs(b))

    return len(served) == len(offline) and all(map(close, served, offline))


def test_card_windows_equal_the_offline_kernel_at_the_edges(server, client) -> None:
    events = edge_events()
    replies = execute(server, [card_command("ra", e) for e in events])
    offline = offline_card_rows(events)
    checked = 0
    for e, reply in zip(events, replies, strict=True):
        row = offline[(e.card_id, e.at_us)]
        expected = [
            v
            for name in CARD_WINDOWS
            for v in (row[f"txn_count_{name}"], row[f"_sum_{name}"], row[f"amount_max_{name}"])
        ]
        expected += [
            row["distinct_merchants_24h"],
            row["_last_ts_us"],
            row["_last_amount"],
            row["_last_latitude"],
            row["_last_longitude"],
            row["_prev_ts_us"],
            row["_prev_latitude"],
            row["_prev_longitude"],
        ]
        assert same(reply[:-1], expected), (e, reply, expected)
        checked += 1
    assert checked == len(events)
    # The edge card at t: each window holds the events exactly w before for w up to its
    # own length (1d and 24h are one instant, 7d and 30d appear twice), none at t.
    at_t = next(r for e, r in zip(events, replies, strict=True) if e.transaction_id == "tx00101")
    assert [at_t[3 * i] for i in range(len(CARD_WINDOWS))] == [1, 2, 4, 6, 8]
    read = dict(zip([e.transaction_id for e in events], replies, strict=True))["tx00104"]
    last = 3 * len(CARD_WINDOWS) + 1  # the last transaction's instant, amount, location
    assert [float(v) for v in read[last + 1 : last + 4]] == [9.0, 30.0, 40.0]


def test_merchant_counts_equal_the_offline_kernel_with_labels_at_t(server, client) -> None:
    events = edge_events()
    t = T0 + 40 * DAY
    # Frauds known exactly at a transaction's instant, exactly a window before one, later.
    labels = [
        ("tx00100", "m-edge", t),
        ("tx00000", "m-edge", t - DAY),
        ("tx00101", "m-2", t + 5 * MINUTE),
    ]
    labels += [
        (e.transaction_id, e.merchant_id, e.at_us + 3 * DAY)
        for e in events[::7]
        if e.card_id != "c-edge"
    ]
    stream = sorted(
        [(e.at_us, 0, e) for e in events] + [(at, 1, (tid, m)) for tid, m, at in labels],
        key=lambda x: (x[0], x[1]),
    )
    commands, reads = [], []
    for at, kind, item in stream:
        if kind == 0:
            commands.append(merchant_command("ra", item.merchant_id, at, item.transaction_id))
            reads.append((item.merchant_id, at))
        else:
            commands.append(merchant_command("l", item[1], at, item[0]))
            reads.append(None)
    replies = execute(server, commands)
    frame = pl.DataFrame(
        [(e.merchant_id, e.at_us, 1, 0) for e in events] + [(m, at, 0, 1) for _, m, at in labels],
        schema=["merchant_id", TS, "_txn", "_fraud"],
        orient="row",
    )
    offline = {(r["merchant_id"], r[TS]): r for r in merchant_windows(frame).iter_rows(named=True)}
    for key, reply in zip(reads, replies, strict=True):
        if key is None:
            continue
        row = offline[key]
        assert reply[:-1] == [
            v
            for name in MERCHANT_WINDOWS
            for v in (row[f"txn_count_{name}"], row[f"fraud_count_{name}"])
        ]
    # The label known exactly at t is not counted at t.
    at_t = replies[reads.index(("m-edge", t))]
    assert at_t[1] == 1  # only the label a day before, in the 1-day window


def test_duplicates_change_nothing(server, client) -> None:
    events = edge_events()
    commands = [c for e in events for c in state_commands("ra", e)]
    first = execute(server, commands)
    before = state_digest(client)
    second = execute(server, commands)
    assert state_digest(client) == before
    assert all(reply[-1] == 0 for reply in second)
    assert sum(reply[-1] for reply in first[::2]) == len(events)
    # A retried request reads exactly what the first one read, for any instant whose
    # windows are still whole in the kept history (within a day of the newest event).
    newest = max(e.at_us for e in events)
    recent = [i for i, e in enumerate(events) if e.at_us >= newest - DAY]
    assert len(recent) > 10
    for i in recent:
        assert second[2 * i][:-1] == first[2 * i][:-1]
        assert second[2 * i + 1][:-1] == first[2 * i + 1][:-1]


def test_arrival_order_does_not_change_the_final_state(server, client) -> None:
    events = edge_events()
    execute(server, [c for e in events for c in state_commands("a", e)])
    in_order = state_digest(client)
    for seed in (1, 2):
        delete_state(client)
        shuffled = random.Random(seed).sample(events, len(events))
        execute(server, [c for e in shuffled for c in state_commands("a", e)])
        assert state_digest(client) == in_order


def test_thirty_day_history_stays_bounded(server, client) -> None:
    # One event a day for 90 days: only those within 31 days of the newest are kept.
    events = [event(i, "c-long", "m-long", T0 + i * DAY) for i in range(90)]
    execute(server, [c for e in events for c in state_commands("a", e)])
    card_events, card_ids = card_keys("c-long")
    assert client.zcard(card_events) == 31
    assert client.hlen(card_ids) == 32  # and the newest-instant field
    assert client.zcard(merchant_keys("m-long")[0]) == 31
    # An event older than the kept history is ignored, so arrival order still does not
    # matter: the state is what the in-order stream left.
    before = state_digest(client)
    assert execute(server, state_commands("a", event(999, "c-long", "m-long", T0))) == [[0], [0]]
    assert state_digest(client) == before


def merchant_fraud_30d(server: RedisService, merchant: str, at: int) -> int:
    return execute(server, [merchant_command("r", merchant, at, "-")])[0][5]


def test_a_label_counts_from_its_label_time_whenever_it_arrives(server, client) -> None:
    t = T0 + DAY
    txn = event(1, "c-l", "m-l", T0)
    execute(server, list(state_commands("a", txn)))
    # Scored before the label arrives: the transaction at t sees no fraud.
    later = event(2, "c-l", "m-l", t)
    assert execute(server, list(state_commands("ra", later)))[1][5] == 0
    # The label, known from t - 1 h, arrives after: a read at t now counts it (it was
    # known by then), a read at its own label time does not, and a second copy is a no-op.
    label = merchant_command("l", "m-l", t - 3600 * MICROS, txn.transaction_id)
    assert execute(server, [label, label]) == [[1], [0]]
    assert merchant_fraud_30d(server, "m-l", t) == 1
    assert merchant_fraud_30d(server, "m-l", t - 3600 * MICROS) == 0
    # A label that arrives before a later transaction is scored counts for it.
    assert execute(server, list(state_commands("ra", event(3, "c-l", "m-l", t + 1))))[1][5] == 1


def test_restart_mid_replay_loses_and_doubles_nothing(server, client, tmp_path) -> None:
    events = edge_events()
    execute(server, [c for e in events for c in state_commands("a", e)])
    reference = state_digest(client)
    delete_state(client)
    client.save()

    async def replay() -> int:
        pipe = RedisPipe(settings(server), 2.0)
        retries = 0
        try:
            for i in range(0, len(events), 20):
                batch = [c for e in events[i : i + 20] for c in state_commands("ra", e)]
                if i == 200:
                    # Redis goes down under the client (saving its data) and comes back.
                    await asyncio.to_thread(server.stop)
                    await asyncio.to_thread(server.start)
                while True:
                    try:
                        await pipe.execute(b"".join(batch), len(batch))
                        break
                    except RedisUnavailableError:
                        retries += 1
                        await asyncio.sleep(0.1)
        finally:
            await pipe.close()
        return retries

    retries = asyncio.run(replay())
    assert retries >= 1
    with redis.Redis(port=server.port, password=PASSWORD) as fresh:
        assert state_digest(fresh) == reference


def test_eight_concurrent_clients_on_one_card_lose_no_update(server, client) -> None:
    per_client = 100

    async def writer(k: int) -> list[Any]:
        pipe = RedisPipe(settings(server), 10.0)
        replies = []
        try:
            for i in range(per_client):
                e = event(k * 1000 + i, "c-hot", f"m{k}", T0 + (i * 8 + k) * MICROS, 1.0 + k)
                replies += await pipe.execute(b"".join(state_commands("ra", e)), 2)
        finally:
            await pipe.close()
        return replies

    async def all_writers() -> list[list[Any]]:
        return await asyncio.gather(*(writer(k) for k in range(8)))

    results = asyncio.run(all_writers())
    assert sum(reply[-1] for replies in results for reply in replies) == 2 * 8 * per_client
    read = execute(
        server, [card_command("r", replace(event(0, "c-hot", "m", T0 + DAY), transaction_id="-"))]
    )[0]
    assert read[3 * 2] == 8 * per_client  # the 24-hour count holds every event
    assert float(read[3 * 2 + 1]) == pytest.approx(per_client * sum(1.0 + k for k in range(8)))
    assert read[3 * len(CARD_WINDOWS)] == 8  # eight merchants
