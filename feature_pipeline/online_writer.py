"""The bulk writer of feature rows into Redis, in Feast's layout, newest event wins.

Feast's local engine turns every row into protobuf objects and every key into redis-py
commands, one Python call at a time (benchmarks/materialize.py measures it against this
writer). Here a batch's keys and values are encoded column-wise
(``fraud_platform.feast_redis``, ``fraud_platform.resp_matrix``) and sent as Lua scripts,
each of which compares and writes a slice of the batch atomically: for each key it reads the
stored ``_ts:<view>`` and writes the row only if its event time is at least the stored one.
An older interval materialized after a newer one (a backfill, a retried run, the hourly and
daily runs at once) therefore never overwrites newer values, even when two writers
interleave: the read and the write of a key cannot be separated by another client's write.
Equal times are rewritten, which lets a corrected rerun of a day (same event time, later
``created``) replace what it corrects.

A script runs :data:`SCRIPT_KEYS` keys: Redis runs nothing else meanwhile, so the slice is
kept small enough (about a millisecond) not to stall the scoring API's reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from feature_pipeline.materialize_error import MaterializationError
from feature_pipeline.resp_connection import RespConnection
from fraud_platform.feast_redis import (
    entity_key_prefix,
    entity_keys,
    timestamp_payload,
    value_payload,
)
from fraud_platform.resp_matrix import Scratch, Slot, assemble, compact
from fraud_platform.settings import RedisSettings

if TYPE_CHECKING:
    import pyarrow as pa
    from feast import FeatureStore, FeatureView
    from feast.repo_config import RepoConfig

DEFAULT_BATCH_ROWS = 20_000
"""Keys encoded per batch: large enough to amortise the encoding's numpy calls, small
enough to overlap encoding with Redis's work on the previous batch."""
SCRIPT_KEYS = 500
"""Keys per compare-and-write script (one atomic step of Redis)."""

# KEYS: the batch's hashes. ARGV[1]: fields per key (n, the last is _ts:<view>),
# ARGV[2]: key TTL in seconds (0: none), ARGV[3..n+2]: the field names, then each key's n
# values in the order of KEYS. Returns how many keys were written.
COMPARE_AND_WRITE = """
local function stamp(b)
  local seconds, nanos, i = 0, 0, 1
  while i <= #b do
    local tag = string.byte(b, i)
    i = i + 1
    local value, scale, byte = 0, 1, 128
    while byte >= 128 do
      byte = string.byte(b, i)
      i = i + 1
      value = value + (byte % 128) * scale
      scale = scale * 128
    end
    if tag == 8 then seconds = value elseif tag == 16 then nanos = value end
  end
  if seconds >= 9223372036854775808 then seconds = seconds - 18446744073709551616 end
  return seconds, nanos
end
local n, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local written = 0
for k = 1, #KEYS do
  local at = 2 + n + (k - 1) * n
  local stored = redis.call('HGET', KEYS[k], ARGV[2 + n])
  local newer = true
  if stored then
    local s1, n1 = stamp(ARGV[at + n])
    local s0, n0 = stamp(stored)
    newer = s1 > s0 or (s1 == s0 and n1 >= n0)
  end
  if newer then
    local args = {}
    for f = 1, n do
      args[2 * f - 1] = ARGV[2 + f]
      args[2 * f] = ARGV[at + f]
    end
    redis.call('HSET', KEYS[k], unpack(args))
    if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) end
    written = written + 1
  end
end
return written
"""


def event_micros(column: pa.ChunkedArray) -> np.ndarray:
    """Event times as microseconds since the epoch (UTC; naive times are UTC)."""
    import pyarrow as pa

    if not pa.types.is_timestamp(column.type):
        raise MaterializationError(f"event timestamp column has type {column.type}")
    values = column.to_numpy(zero_copy_only=False)
    return values.astype("datetime64[us]").astype(np.int64)


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


@dataclass(frozen=True)
class _Feature:
    name: str
    column: str
    kind: str
    field: bytes


_KINDS = {
    "Int32": "int32",
    "Int64": "int64",
    "Float64": "double",
    "Float32": "float",
    "Bool": "bool",
}


def _check_online_store(config: RepoConfig) -> None:
    online = config.online_store
    if (
        getattr(online, "type", None) != "redis"
        or str(getattr(online, "redis_type", "redis")).rsplit(".", 1)[-1] != "redis"
    ):
        raise MaterializationError(
            "the fast writer supports a single Redis server (online_store type redis, "
            f"redis_type redis); use FeatureStore.materialize for {online!r}"
        )
    if config.entity_key_serialization_version != 3:
        raise MaterializationError("the fast writer writes entity key serialization v3")


class RedisFeatureWriter:
    """Writes one feature view's rows into Redis in Feast's layout, newest event wins.

    Args:
        store: The feature store whose config (project, online store, entity key
            serialization) defines the layout.
        view: The feature view.
        batch_rows: Keys per encoded batch.
    """

    def __init__(
        self, store: FeatureStore, view: FeatureView, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> None:
        from feast.infra.offline_stores.file_source import FileSource

        config = store.config
        _check_online_store(config)
        entities = [store.get_entity(name) for name in view.entities]
        if len(entities) != 1:
            raise MaterializationError(
                f"{view.name}: the fast writer supports views with one entity, not "
                f"{[e.name for e in entities]}"
            )
        entity = entities[0]
        self.view = view
        self.project = config.project
        self.batch_rows = batch_rows
        self.key_ttl = getattr(config.online_store, "key_ttl_seconds", None)
        self.redis = RedisSettings(connection_string=config.online_store.connection_string)
        self.join_key = entity.join_key
        self.key_type = entity.value_type.name
        if self.key_type not in ("STRING", "INT64"):
            raise MaterializationError(
                f"{view.name}: entity {entity.name} has type {self.key_type}; the fast "
                "writer encodes STRING and INT64 keys"
            )
        self._key_prefix = entity_key_prefix(self.join_key, self.key_type)
        source = view.batch_source
        if not isinstance(source, FileSource):
            raise MaterializationError(
                f"{view.name}: the fast writer reads Parquet file sources, not {source!r}"
            )
        reverse = {v: k for k, v in (source.field_mapping or {}).items()}
        self.key_column = reverse.get(self.join_key, self.join_key)
        self.timestamp_column = reverse.get(source.timestamp_field, source.timestamp_field)
        created = source.created_timestamp_column
        self.created_column = reverse.get(created, created) if created else None
        self._describe_features(config, reverse)

    def _describe_features(self, config: RepoConfig, reverse: dict[str, str]) -> None:
        """The features' source columns, value kinds and Redis fields, and ``_ts``'s."""
        from feast.infra.online_stores.helpers import _mmh3, compute_versioned_name

        view = self.view
        table_name = compute_versioned_name(
            view, config.registry.enable_online_feature_view_versioning
        )
        self.ts_field = f"_ts:{table_name}".encode()
        self.features: list[_Feature] = []
        for feature in view.features:
            kind = _KINDS.get(str(feature.dtype))
            if kind is None:
                raise MaterializationError(
                    f"{view.name}: feature {feature.name} has type {feature.dtype}, which "
                    f"the fast writer does not encode ({', '.join(_KINDS)})"
                )
            self.features.append(
                _Feature(
                    feature.name,
                    reverse.get(feature.name, feature.name),
                    kind,
                    _mmh3(f"{table_name}:{feature.name}"),
                )
            )

    @property
    def columns(self) -> list[str]:
        """The source columns a write needs."""
        columns = [self.key_column, self.timestamp_column, *(f.column for f in self.features)]
        if self.created_column:
            columns.append(self.created_column)
        return columns

    def redis_keys(
        self, table: pa.Table, widest: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each row's Redis key as a byte matrix and lengths (see
        :func:`fraud_platform.feast_redis.entity_keys`)."""
        return entity_keys(
            table[self.key_column], self.key_type, self._key_prefix, self.project, widest
        )

    def check_key_layout(self, table: pa.Table) -> None:
        """Compare the first row's key with Feast's own ``serialize_entity_key``."""
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        if not table.num_rows:
            return
        keys, lengths = self.redis_keys(table.slice(0, 1))
        value = table[self.key_column][0].as_py()
        proto = Value(string_val=value) if self.key_type == "STRING" else Value(int64_val=value)
        expected = (
            serialize_entity_key(EntityKey(join_keys=[self.join_key], entity_values=[proto]), 3)
            + self.project.encode()
        )
        if keys[0, : lengths[0]].tobytes() != expected:
            raise MaterializationError(
                f"{self.view.name}: the encoded Redis key differs from Feast's layout"
            )

    def _value_slots(self, batch: pa.Table, micros: np.ndarray) -> list[Slot]:
        """Each row's values as bulk strings: the features, then the event time."""
        slots: list[Slot] = [(b"", *value_payload(f.kind, batch[f.column])) for f in self.features]
        slots.append((b"", *timestamp_payload(micros)))
        return slots

    def _scripts(
        self,
        sha: bytes,
        keys: tuple[np.ndarray, np.ndarray],
        batch: pa.Table,
        micros: np.ndarray,
        scratch: tuple[Scratch, Scratch],
    ) -> list[bytes]:
        """The batch as EVALSHA commands of at most :data:`SCRIPT_KEYS` keys each."""
        rows = batch.num_rows
        key_wide, key_mask = assemble([(b"", *keys)], rows, scratch[0])
        arg_wide, arg_mask = assemble(self._value_slots(batch, micros), rows, scratch[1])
        key_stream, arg_stream = compact(key_wide, key_mask), compact(arg_wide, arg_mask)
        key_ends = np.r_[0, np.cumsum(key_mask.sum(axis=1))]
        arg_ends = np.r_[0, np.cumsum(arg_mask.sum(axis=1))]
        fields = len(self.features) + 1
        names = b"".join(_bulk(f.field) for f in self.features) + _bulk(self.ts_field)
        ttl = _bulk(str(int(self.key_ttl or 0)).encode())
        commands = []
        for start in range(0, rows, SCRIPT_KEYS):
            end = min(start + SCRIPT_KEYS, rows)
            count = end - start
            head = (
                b"*%d\r\n$7\r\nEVALSHA\r\n" % (3 + count + 2 + fields + count * fields)
                + _bulk(sha)
                + _bulk(b"%d" % count)
            )
            commands += [
                head,
                key_stream[key_ends[start] : key_ends[end]].tobytes(),
                _bulk(b"%d" % fields),
                ttl,
                names,
                arg_stream[arg_ends[start] : arg_ends[end]].tobytes(),
            ]
        return commands

    def write(self, table: pa.Table) -> dict[str, Any]:
        """Write ``table`` (at most one row per key) to Redis.

        Batches flow through one connection: while Redis runs batch k's scripts, this
        thread encodes batch k+1.

        Returns:
            Keys written, keys skipped because Redis holds a later event, and where the
            time went: encoding (this thread) and waiting for Redis.
        """
        from concurrent.futures import ThreadPoolExecutor

        import pyarrow.compute as pc

        self.check_key_layout(table)
        if not table.num_rows:
            return {"keys_written": 0, "keys_skipped": 0, "encode_s": 0.0, "wait_s": 0.0}
        micros = event_micros(table[self.timestamp_column])
        widest = None
        if self.key_type == "STRING":
            widest = pc.max(pc.binary_length(table[self.key_column])).as_py() or 0
        scratch = (Scratch(), Scratch())
        written, encoding, waiting = 0, 0.0, 0.0
        connection = RespConnection(self.redis)
        try:
            sha = connection.call("SCRIPT", "LOAD", COMPARE_AND_WRITE)
            with ThreadPoolExecutor(1, thread_name_prefix="redis-writer") as io:
                pending = None
                for start in range(0, table.num_rows, self.batch_rows):
                    began = time.perf_counter()
                    batch = table.slice(start, self.batch_rows)
                    scripts = self._scripts(
                        sha,
                        self.redis_keys(batch, widest),
                        batch,
                        micros[start : start + batch.num_rows],
                        scratch,
                    )
                    encoded = time.perf_counter()
                    written += sum(pending.result()) if pending else 0
                    waiting += time.perf_counter() - encoded
                    encoding += encoded - began
                    pending = io.submit(connection.exchange, scripts, len(scripts) // 6)
                began = time.perf_counter()
                if pending is None:
                    raise MaterializationError("no batch was sent for a non-empty table")
                written += sum(pending.result())
                waiting += time.perf_counter() - began
        finally:
            connection.close()
        return {
            "keys_written": written,
            "keys_skipped": table.num_rows - written,
            "encode_s": round(encoding, 3),
            "wait_s": round(waiting, 3),
        }
