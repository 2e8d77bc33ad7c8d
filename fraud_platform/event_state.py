"""The online event state: per-card and per-merchant Redis keys that every event updates.

Each card and each merchant owns a few keys that share one hash tag (``{c:<card_id>}``,
``{m:<merchant_id>}``), so one Lua script (``fraud_platform/lua/``) touches one hash
slot and runs unchanged on Redis Cluster. A script reads the windows as of ``t`` and
applies the event atomically: idempotent by ``transaction_id`` (a second apply finds the id
and changes nothing), and the final state is the same in any arrival order (the kept events
are those newer than the newest instant ever applied minus :data:`KEPT_SECONDS`, a set that
does not depend on order). Why scripts and not ``MULTI``: the windows must be computed
from the events in Redis before the insert in the same atomic step, which a transaction
cannot do without a read round trip and ``WATCH`` retries.

This module builds the commands as RESP bytes (the scoring path sends them pre-encoded,
see ``inference_pipeline.redis_pipe``) and names the keys; the features are computed
from the replies by ``fraud_platform.event_features``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any, cast

from fraud_platform.event_features import (
    CARD_WINDOWS,
    DISTINCT_MERCHANTS_WINDOW,
    MERCHANT_WINDOWS,
    MICROS,
)
from fraud_platform.resp import encode

if TYPE_CHECKING:
    import redis

KEY_PREFIX = "es2"
"""The keys' prefix names the layout (event state, version 2): a layout change moves it, so
a new version never reads a state in another layout; ``backfill-events`` rebuilds it."""
KEPT_SECONDS = 31 * 86_400
"""History kept per key: the 30-day windows plus a day for late events, which then still
see their whole window. An event older than this behind the key's newest is ignored."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1, for ``EVALSHA`` (loaded on every new connection)."""

    name: str
    source: str

    @cached_property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()

    def load(self) -> bytes:
        return encode("SCRIPT", "LOAD", self.source)


@cache
def script(name: str) -> Script:
    return Script(name, resources.files("fraud_platform").joinpath(f"lua/{name}.lua").read_text())


def scripts() -> tuple[Script, Script]:
    return script("card"), script("merchant")


def micros(instant: datetime) -> int:
    """An aware instant as integer microseconds since the epoch (exact)."""
    return (instant - _EPOCH) // timedelta(microseconds=1)


def card_keys(card_id: str) -> tuple[str, str]:
    tag = f"{KEY_PREFIX}:{{c:{card_id}}}"
    return f"{tag}:t", f"{tag}:i"


def merchant_keys(merchant_id: str) -> tuple[str, str, str]:
    tag = f"{KEY_PREFIX}:{{m:{merchant_id}}}"
    return f"{tag}:t", f"{tag}:f", f"{tag}:n"


def _window_args(windows: dict[str, int]) -> list[str]:
    # The scripts find an event's windows from the longest down: they must ascend.
    if list(windows.values()) != sorted(set(windows.values())):
        raise ValueError(f"windows must be given shortest first, each once: {windows}")
    return [str(len(windows)), *(str(seconds * MICROS) for seconds in windows.values())]


_CARD_FIXED = [
    str(KEPT_SECONDS * MICROS),
    str(DISTINCT_MERCHANTS_WINDOW * MICROS),
    *_window_args(CARD_WINDOWS),
]
_MERCHANT_FIXED = [str(KEPT_SECONDS * MICROS), *_window_args(MERCHANT_WINDOWS)]


def _text(value: float | None) -> str:
    # repr gives the shortest string that parses back to the same double.
    return "" if value is None else repr(float(value))


@dataclass(frozen=True, slots=True)
class TransactionEvent:
    """What the event state needs of a transaction."""

    transaction_id: str
    card_id: str
    merchant_id: str
    at_us: int
    amount: float
    latitude: float | None
    longitude: float | None


def card_args(flags: str, event: TransactionEvent) -> list[str]:
    """The card script's ``EVALSHA`` arguments: ``flags`` "r", "a" or "ra" (read the state
    before, then apply)."""
    return [
        "EVALSHA",
        script("card").sha,
        "2",
        *card_keys(event.card_id),
        flags,
        str(event.at_us),
        *_CARD_FIXED,
        event.transaction_id,
        _text(event.amount),
        event.merchant_id,
        _text(event.latitude),
        _text(event.longitude),
    ]


def merchant_args(flags: str, merchant_id: str, at_us: int, transaction_id: str) -> list[str]:
    """The merchant script's ``EVALSHA`` arguments: "r", "a", "ra" for a transaction at
    ``at_us``; "l" for a fraud label of ``transaction_id`` known from ``at_us``."""
    return [
        "EVALSHA",
        script("merchant").sha,
        "3",
        *merchant_keys(merchant_id),
        flags,
        str(at_us),
        *_MERCHANT_FIXED,
        transaction_id,
    ]


def card_command(flags: str, event: TransactionEvent) -> bytes:
    return encode(*card_args(flags, event))


def merchant_command(flags: str, merchant_id: str, at_us: int, transaction_id: str) -> bytes:
    return encode(*merchant_args(flags, merchant_id, at_us, transaction_id))


def state_commands(flags: str, event: TransactionEvent) -> tuple[bytes, bytes]:
    """The card's and the merchant's command for one transaction."""
    return card_command(flags, event), merchant_command(
        flags, event.merchant_id, event.at_us, event.transaction_id
    )


def load_commands() -> tuple[bytes, int]:
    """``SCRIPT LOAD`` of every script: what a new connection sends first."""
    return b"".join(s.load() for s in scripts()), len(scripts())


def state_keys(client: redis.Redis) -> list[bytes]:
    """Every key of the event state, sorted (a scan: for tools and tests, not serving)."""
    return sorted(client.scan_iter(f"{KEY_PREFIX}:*", count=1000))


def delete_state(client: redis.Redis) -> int:
    """Delete every key of the event state (a rebuild starts from nothing)."""
    keys = state_keys(client)
    # redis-py's sync and async clients share annotations: the sync reply is an int.
    return sum(cast(int, client.unlink(*keys[i : i + 1000])) for i in range(0, len(keys), 1000))


def state_digest(client: redis.Redis) -> dict[str, Any]:
    """SHA-256 of the event state's content: keys sorted, members sorted, so two states
    with the same content have the same digest whatever order built them (a hash's
    encoding keeps insertion order, its content does not)."""
    digest = hashlib.sha256()
    keys = state_keys(client)
    for key in keys:
        kind = client.type(key)
        if kind == b"zset":
            content: Any = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"hash":
            # redis-py annotates keys as str (bytes work) and its sync reply as maybe awaitable.
            hash_content = cast("dict[bytes, bytes]", client.hgetall(key))  # type: ignore[arg-type]
            content = sorted(hash_content.items())
        else:
            content = client.get(key)
        digest.update(repr((key, kind, content)).encode())
    return {"sha256": digest.hexdigest(), "keys": len(keys)}
