"""Materialization: the latest feature row of every key, from the S3 tables into Redis.

Feast's local engine turns every row into protobuf objects and every key into redis-py
commands, one Python call at a time (benchmarks/materialize.py measures it against this
module). This writer does the same job in bulk and writes exactly the layout Feast's Redis
online store reads (feast/infra/online_stores/redis.py):

- one hash per entity key, named ``serialize_entity_key(key, 3) + project``;
- one field per feature, named ``murmur3("<view>:<feature>")`` (4 bytes), holding the
  serialized ``feast.types.Value`` (empty for a null);
- ``_ts:<view>`` holding the serialized ``google.protobuf.Timestamp`` of the row's event
  time (microsecond precision, as Feast's writer stores it).

Steps per feature view: read the interval's rows from Parquet with Arrow (partition
pruning on ``event_date``), keep the latest row per key (event time, then ``created``,
the order Feast's offline store means to apply), encode the Redis commands of a whole
batch with numpy, then write with pipelining on one connection. Before a batch is
written, the stored ``_ts`` of its keys is read in the same pipeline and a key is written
only if its new event time is at least the stored one, so an older interval materialized
after a newer one (a backfill, a retried run) never overwrites newer values. Equal times
are rewritten, which lets a corrected rerun of a day (same event time, later ``created``)
replace what it corrects. The read and the write are two round trips, as in Feast's own
writer: two materializations of the same view at the same time could interleave between
them; Airflow runs this task with one active run per view.

The registry is updated as ``FeatureStore.materialize`` does it (the view goes to
``MATERIALIZING``, then ``apply_materialization`` records the interval and makes it
``AVAILABLE_ONLINE``), so ``feast materialize-incremental`` continues where this left off.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from fraud_platform.resp import encode
from fraud_platform.settings import RedisSettings, S3Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa
    from feast import FeatureStore, FeatureView

log = logging.getLogger(__name__)

DEFAULT_OVERLAP = timedelta(minutes=15)
DEFAULT_BATCH_ROWS = 20_000
"""Keys encoded and sent per pipeline round trip: about 15 MB of commands for the card
view, large enough to amortise the round trip, small enough to overlap encoding with
Redis's work on the previous batch."""

# Tags of feast.types.Value's oneof fields: (field number << 3) | wire type.
_VALUE_TAGS = {"int32": 0x18, "int64": 0x20, "double": 0x29, "float": 0x35, "bool": 0x38}


class MaterializationError(RuntimeError):
    """Materialization cannot proceed (unsupported definition, Redis error)."""


# --------------------------------------------------------------------------- encoding
#
# A batch of commands is assembled as a byte matrix, one row per key: each "slot" (the
# command name, the key, one feature's field and value, ...) owns a range of columns, and
# a boolean mask marks the bytes each row actually uses. The row-major compaction
# ``wide[mask]`` is then the batch's RESP stream, commands in row order. Everything is
# column-wise numpy: no Python work per key or per value.

Slot = tuple[bytes, "np.ndarray | None", "np.ndarray | None"]
"""``(prefix, payload, lengths)``: the prefix bytes, then a RESP bulk string of
``payload[i, :lengths[i]]`` per row; a constant when ``payload`` is None."""


@cache
def _bulk_headers(max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """RESP bulk headers (``$<n>`` and CRLF) for n in 0..max_len, as a padded byte
    matrix and their lengths."""
    headers = [b"$%d\r\n" % n for n in range(max_len + 1)]
    width = max(len(h) for h in headers)
    table = np.zeros((max_len + 1, width), np.uint8)
    for n, header in enumerate(headers):
        table[n, : len(header)] = np.frombuffer(header, np.uint8)
    return table, np.array([len(h) for h in headers], np.int64)


def _place(dst: np.ndarray, offsets: np.ndarray, src: np.ndarray, lengths: np.ndarray) -> None:
    """``dst[i, offsets[i] + k] = src[i, k]`` for ``k < lengths[i]``, row by row."""
    rows = np.arange(dst.shape[0])
    for k in range(src.shape[1]):
        selected = lengths > k
        if not selected.any():
            break
        dst[rows[selected], offsets[selected] + k] = src[selected, k]


def _slot_width(slot: Slot) -> int:
    prefix, payload, _ = slot
    if payload is None:
        return len(prefix)
    return len(prefix) + _bulk_headers(payload.shape[1])[0].shape[1] + payload.shape[1] + 2


def _fill(wide: np.ndarray, mask: np.ndarray, slot: Slot, known: Any) -> Any:
    """Write one slot into its columns of the batch matrix and mark the bytes used.

    Args:
        known: What the previous batch left in these columns (the state this returns),
            None if nothing. When every value of the slot has the same length in this
            batch and the last one, the prefix, header, line end and mask are already in
            place and only the values are written.

    Returns:
        The state of the columns for the next batch.
    """
    prefix, payload, lengths = slot
    start = len(prefix)
    if known is None and start:
        wide[:, :start] = np.frombuffer(prefix, np.uint8)
    if payload is None:
        if known is None:
            mask[:, :start] = True
        return "constant"
    rows, width = payload.shape
    if not rows:
        return known
    headers, header_lengths = _bulk_headers(width)
    length = int(lengths[0])
    if np.all(lengths == length):
        header = int(header_lengths[length])
        end = start + header + length
        state = ("fixed", length)
        if known != state:
            wide[:, start : start + header] = headers[length, :header]
            wide[:, end : end + 2] = (13, 10)
            mask[:] = False
            mask[:, : end + 2] = True
        wide[:, start + header : end] = payload[:, :length]
        return state
    header_width = header_lengths[lengths]
    if np.all(header_width == header_width[0]):
        # Every length has the same number of digits: the values start in one column.
        first = int(header_width[0])
        wide[:, start : start + first] = headers[lengths, :first]
        wide[:, start + first : start + first + width] = payload
        ends = start + first + lengths
    else:
        wide[:, start : start + headers.shape[1]] = headers[lengths]
        offsets = start + header_width
        _place(wide, offsets, payload, lengths)
        ends = offsets + lengths
    index = np.arange(rows)
    wide[index, ends] = 13
    wide[index, ends + 1] = 10
    mask[:] = np.arange(mask.shape[1])[None, :] < (ends + 2)[:, None]
    return "variable"


class _Scratch:
    """The batch matrix and mask, allocated once and reused from batch to batch.

    A fresh 20 MB array per batch costs more in page faults than filling it, and with
    the same layout (slot widths) the constant bytes of a slot stay valid: a batch only
    writes what changed (see ``_fill``).
    """

    def __init__(self) -> None:
        self._wide = np.empty((0, 0), np.uint8)
        self._mask = np.zeros((0, 0), bool)
        self._layout: tuple[int, ...] | None = None
        self._rows = 0
        self.states: list[Any] = []

    def take(self, rows: int, widths: list[int]) -> tuple[np.ndarray, np.ndarray]:
        width = sum(widths)
        if rows > self._wide.shape[0] or width > self._wide.shape[1]:
            shape = (max(rows, self._wide.shape[0]), max(width, self._wide.shape[1]))
            self._wide = np.empty(shape, np.uint8)
            self._mask = np.zeros(shape, bool)
            self._layout = None
        if self._layout != tuple(widths) or rows > self._rows:
            self._layout, self._rows = tuple(widths), rows
            self.states = [None] * len(widths)
        return self._wide[:rows, :width], self._mask[:rows, :width]


def _assemble(slots: list[Slot], rows: int,
              scratch: _Scratch | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The batch matrix and its mask of used bytes."""
    scratch = scratch or _Scratch()
    widths = [_slot_width(slot) for slot in slots]
    wide, mask = scratch.take(rows, widths)
    at = 0
    for i, (slot, width) in enumerate(zip(slots, widths, strict=True)):
        columns = slice(at, at + width)
        scratch.states[i] = _fill(wide[:, columns], mask[:, columns], slot, scratch.states[i])
        at += width
    return wide, mask


def _compact(wide: np.ndarray, mask: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """The used bytes of the kept rows, row after row: the batch's RESP commands."""
    if keep is not None and not keep.all():
        return wide[keep][mask[keep]]
    return wide[mask]


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints of unsigned 64-bit values: a (rows, 10) byte matrix and lengths.

    Negative int32 and int64 values are passed as their 64-bit two's complement, which is
    how protobuf encodes them (10 bytes).
    """
    values = values.astype(np.uint64, copy=False)
    lengths = np.ones(len(values), np.int64)
    for k in range(1, 10):
        lengths += values >= (np.uint64(1) << np.uint64(7 * k))
    out = np.empty((len(values), 10), np.uint8)
    for k in range(10):
        group = ((values >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        out[:, k] = group | ((lengths > k + 1).astype(np.uint8) << 7)
    return out, lengths


def _tagged(tag: int, body: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    payload = np.empty((body.shape[0], body.shape[1] + 1), np.uint8)
    payload[:, 0] = tag
    payload[:, 1:] = body
    return payload, lengths + 1


def _value_payload(kind: str, column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Serialized ``feast.types.Value`` of each value; length 0 (an empty Value) for null.

    NaN counts as null, as in Feast's writer (``pd.isnull``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    null = column.is_null().to_numpy(zero_copy_only=False)
    if kind in ("double", "float"):
        numbers = pc.fill_null(column.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        null = null | np.isnan(numbers)
        dtype, width = ("<f8", 8) if kind == "double" else ("<f4", 4)
        body = numbers.astype(dtype).view(np.uint8).reshape(-1, width)
        payload, lengths = _tagged(_VALUE_TAGS[kind], body, np.full(len(numbers), width))
    else:
        target = pa.bool_() if kind == "bool" else pa.int64()
        filled = pc.fill_null(column.cast(target, safe=False), False if kind == "bool" else 0)
        numbers = filled.to_numpy(zero_copy_only=False).astype(np.int64)
        if kind == "int32":
            numbers = numbers.astype(np.int32).astype(np.int64)
        body, lengths = _varints(numbers.view(np.uint64))
        payload, lengths = _tagged(_VALUE_TAGS[kind], body, lengths)
    return payload, np.where(null, 0, lengths)


def _timestamp_payload(micros: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Serialized ``google.protobuf.Timestamp`` (seconds, and nanos when not zero)."""
    seconds = np.floor_divide(micros, 1_000_000)
    nanos = (micros - seconds * 1_000_000) * 1000
    sec_bytes, sec_len = _varints(seconds.view(np.uint64))
    nano_bytes, nano_len = _varints(nanos.astype(np.uint64))
    has_nanos = nanos != 0
    payload = np.zeros((len(micros), 1 + sec_bytes.shape[1] + 1 + nano_bytes.shape[1]), np.uint8)
    payload[:, 0] = 0x08
    payload[:, 1 : 1 + sec_bytes.shape[1]] = sec_bytes
    offsets = 1 + sec_len
    if has_nanos.any():
        rows = np.arange(len(micros))
        payload[rows[has_nanos], offsets[has_nanos]] = 0x10
        _place(payload, offsets + 1, nano_bytes, np.where(has_nanos, nano_len, 0))
    return payload, offsets + np.where(has_nanos, 1 + nano_len, 0)


def _timestamp_nanos(data: bytes) -> int:
    """Nanoseconds since the epoch in a serialized ``google.protobuf.Timestamp``."""
    seconds = nanos = 0
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if tag == 0x08:
            seconds = value - (1 << 64) if value >= 1 << 63 else value
        elif tag == 0x10:
            nanos = value
    return seconds * 1_000_000_000 + nanos


# --------------------------------------------------------------------------- Redis

_NIL = b"$-1\r\n"


class _RespConnection:
    """A bare Redis connection: send pre-encoded batches, read their replies in bulk.

    redis-py encodes and parses one command at a time in Python. Here a batch's HSET
    replies (integers, one line each) are checked with one numpy scan, and the HGET
    replies with hiredis, or at once when they are all nil (keys not in Redis yet).
    """

    def __init__(self, settings: RedisSettings) -> None:
        kwargs = settings.client_kwargs()
        sock = socket.create_connection(
            (settings.host, settings.port), timeout=kwargs.get("socket_connect_timeout") or 10
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if kwargs.get("ssl"):
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=settings.host)
        sock.settimeout(kwargs.get("socket_timeout") or 300)
        self._sock = sock
        self._buffer = bytearray()
        if kwargs.get("password"):
            auth = [kwargs["username"]] if kwargs.get("username") else []
            self.call("AUTH", *auth, kwargs["password"])
        if kwargs.get("db"):
            self.call("SELECT", str(kwargs["db"]))

    def call(self, *args: str | bytes) -> Any:
        """One command, its reply."""
        self._sock.sendall(encode(*args))
        return self._read_with_hiredis(1)[0]

    def exchange(self, buffers: list[np.ndarray], integers: int,
                 bulks: int) -> list[bytes | None]:
        """Send ``buffers``; read ``integers`` integer replies, then ``bulks`` bulk replies."""
        for data in buffers:
            if len(data):
                self._sock.sendall(data)
        self._read_integers(integers)
        return self._read_bulks(bulks)

    def _receive(self) -> None:
        chunk = self._sock.recv(4 << 20)
        if not chunk:
            raise MaterializationError("Redis closed the connection")
        self._buffer += chunk

    def _line_ends(self, count: int) -> np.ndarray:
        return np.flatnonzero(np.frombuffer(self._buffer, np.uint8) == 10)[:count]

    def _first_bytes(self, starts: np.ndarray) -> np.ndarray:
        return np.frombuffer(self._buffer, np.uint8)[starts]

    def _read_integers(self, count: int) -> None:
        while count:
            if not self._buffer:
                self._receive()
                continue
            ends = self._line_ends(count)
            if not len(ends):
                self._receive()
                continue
            starts = np.r_[0, ends[:-1] + 1]
            heads = self._first_bytes(starts)
            if (heads != ord(":")).any():
                at = int(starts[np.flatnonzero(heads != ord(":"))[0]])
                line = bytes(self._buffer[at : self._buffer.index(b"\r\n", at)])
                raise MaterializationError(
                    f"Redis replied with an error: {line.decode(errors='replace')}"
                )
            del self._buffer[: int(ends[-1]) + 1]
            count -= len(ends)

    def _read_bulks(self, count: int) -> list[bytes | None]:
        if not count:
            return []
        expected = _NIL * count
        while True:
            have = min(len(self._buffer), len(expected))
            if self._buffer[:have] != expected[:have]:
                break
            if have == len(expected):
                del self._buffer[:have]
                return [None] * count
            self._receive()
        return self._read_with_hiredis(count)

    def _read_with_hiredis(self, count: int) -> list[Any]:
        import hiredis

        reader = hiredis.Reader()
        if self._buffer:
            reader.feed(bytes(self._buffer))
            self._buffer.clear()
        replies: list[Any] = []
        while len(replies) < count:
            reply = reader.gets()
            if reply is False:
                chunk = self._sock.recv(4 << 20)
                if not chunk:
                    raise MaterializationError("Redis closed the connection")
                reader.feed(chunk)
                continue
            if isinstance(reply, hiredis.ReplyError):
                raise MaterializationError(f"Redis replied with an error: {reply}")
            replies.append(reply)
        if reader.has_data():
            raise MaterializationError("Redis sent more replies than commands")
        return replies

    def close(self) -> None:
        self._sock.close()


# --------------------------------------------------------------------------- the writer


@dataclass(frozen=True)
class _Feature:
    name: str
    column: str
    kind: str
    field: bytes


_KINDS = {"Int32": "int32", "Int64": "int64", "Float64": "double", "Float32": "float",
          "Bool": "bool"}


class RedisFeatureWriter:
    """Writes one feature view's rows into Redis in Feast's layout, newest event wins.

    Args:
        store: The feature store whose config (project, online store, entity key
            serialization) defines the layout.
        view: The feature view.
        batch_rows: Keys per pipelined batch.
    """

    def __init__(self, store: FeatureStore, view: FeatureView,
                 batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        from feast.infra.key_encoding_utils import serialize_entity_key_prefix
        from feast.infra.offline_stores.file_source import FileSource
        from feast.infra.online_stores.helpers import _mmh3, compute_versioned_name
        from feast.protos.feast.types.Value_pb2 import ValueType as ValueTypeProto

        config = store.config
        online = config.online_store
        if getattr(online, "type", None) != "redis" or str(
            getattr(online, "redis_type", "redis")
        ).rsplit(".", 1)[-1] != "redis":
            raise MaterializationError(
                "the fast writer supports a single Redis server (online_store type redis, "
                f"redis_type redis); use FeatureStore.materialize for {online!r}"
            )
        if config.entity_key_serialization_version != 3:
            raise MaterializationError("the fast writer writes entity key serialization v3")
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
        self.key_ttl = getattr(online, "key_ttl_seconds", None)
        self.redis = RedisSettings(connection_string=online.connection_string)
        self.join_key = entity.join_key
        self.key_type = entity.value_type.name
        if self.key_type not in ("STRING", "INT64"):
            raise MaterializationError(
                f"{view.name}: entity {entity.name} has type {self.key_type}; the fast "
                "writer encodes STRING and INT64 keys"
            )
        value_type = getattr(ValueTypeProto, self.key_type)
        self._key_prefix = serialize_entity_key_prefix([self.join_key]) + struct.pack(
            "<I", value_type
        )
        source = view.batch_source
        if not isinstance(source, FileSource):
            raise MaterializationError(
                f"{view.name}: the fast writer reads Parquet file sources, not {source!r}"
            )
        mapping = source.field_mapping or {}
        reverse = {v: k for k, v in mapping.items()}
        self.key_column = reverse.get(self.join_key, self.join_key)
        self.timestamp_column = reverse.get(source.timestamp_field, source.timestamp_field)
        created = source.created_timestamp_column
        self.created_column = reverse.get(created, created) if created else None
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
            self.features.append(_Feature(
                feature.name, reverse.get(feature.name, feature.name), kind,
                _mmh3(f"{table_name}:{feature.name}"),
            ))

    @property
    def columns(self) -> list[str]:
        """The source columns a write needs."""
        columns = [self.key_column, self.timestamp_column, *(f.column for f in self.features)]
        if self.created_column:
            columns.append(self.created_column)
        return columns

    def redis_keys(self, table: pa.Table,
                   widest: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each row's Redis key as a byte matrix and lengths.

        Args:
            table: The rows.
            widest: Room for the longest key value (bytes); the batch's longest by
                default. One width for all batches keeps their layout identical.
        """
        import pyarrow as pa

        column = table[self.key_column].combine_chunks()
        rows = len(column)
        if self.key_type == "STRING":
            binary = column.cast(pa.large_binary())
            offsets = np.frombuffer(binary.buffers()[1], np.int64)[
                binary.offset : binary.offset + rows + 1
            ]
            data = np.frombuffer(binary.buffers()[2], np.uint8) if rows else np.zeros(1, np.uint8)
            value_lengths = np.diff(offsets)
            if widest is None:
                widest = int(value_lengths.max()) if rows else 0
            gather = np.minimum(offsets[:-1, None] + np.arange(widest), max(len(data) - 1, 0))
            values = data[gather] if widest else np.zeros((rows, 0), np.uint8)
        else:
            numbers = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
            values = numbers.astype("<i8").view(np.uint8).reshape(rows, 8)
            value_lengths = np.full(rows, 8, np.int64)
        prefix, project = self._key_prefix, self.project.encode()
        start = len(prefix) + 4
        out = np.empty((rows, start + values.shape[1] + len(project)), np.uint8)
        out[:, : len(prefix)] = np.frombuffer(prefix, np.uint8)
        out[:, len(prefix) : start] = value_lengths.astype("<u4").view(np.uint8).reshape(rows, 4)
        out[:, start : start + values.shape[1]] = values
        project_bytes = np.broadcast_to(np.frombuffer(project, np.uint8), (rows, len(project)))
        _place(out, start + value_lengths, project_bytes, np.full(rows, len(project)))
        return out, start + value_lengths + len(project)

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
        expected = serialize_entity_key(
            EntityKey(join_keys=[self.join_key], entity_values=[proto]), 3
        ) + self.project.encode()
        if keys[0, : lengths[0]].tobytes() != expected:
            raise MaterializationError(
                f"{self.view.name}: the encoded Redis key differs from Feast's layout"
            )

    def _hset_slots(self, batch: pa.Table, keys: tuple[np.ndarray, np.ndarray],
                    micros: np.ndarray) -> list[Slot]:
        fields = len(self.features) + 1
        slots: list[Slot] = [(b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * fields), *keys)]
        for feature in self.features:
            prefix = b"$%d\r\n%s\r\n" % (len(feature.field), feature.field)
            slots.append((prefix, *_value_payload(feature.kind, batch[feature.column])))
        ts_prefix = b"$%d\r\n%s\r\n" % (len(self.ts_field), self.ts_field)
        slots.append((ts_prefix, *_timestamp_payload(micros)))
        if self.key_ttl:
            ttl = str(int(self.key_ttl)).encode()
            slots.append((b"*3\r\n$6\r\nEXPIRE\r\n", *keys))
            slots.append((b"$%d\r\n%s\r\n" % (len(ttl), ttl), None, None))
        return slots

    def _hget(self, keys: tuple[np.ndarray, np.ndarray],
              scratch: _Scratch | None = None) -> np.ndarray:
        field = b"$%d\r\n%s\r\n" % (len(self.ts_field), self.ts_field)
        slots: list[Slot] = [(b"*3\r\n$4\r\nHGET\r\n", *keys), (field, None, None)]
        return _compact(*_assemble(slots, len(keys[1]), scratch))

    @staticmethod
    def _newer(stored: list[bytes | None], micros: np.ndarray) -> np.ndarray:
        """Rows whose event time is at least the one Redis holds for their key."""
        keep = np.ones(len(stored), bool)
        if not any(stored):
            return keep
        nanos = micros * 1000
        for i, value in enumerate(stored):
            if value and int(nanos[i]) < _timestamp_nanos(value):
                keep[i] = False
        return keep

    def write(self, table: pa.Table) -> dict[str, int]:
        """Write ``table`` (at most one row per key) to Redis.

        Batches flow through one connection: while Redis applies batch k (and reads the
        stored times of batch k+1's keys), this thread encodes batch k+1.

        Returns:
            Keys written, keys skipped because Redis holds a later event, and where the
            time went: encoding (this thread) and waiting for Redis.
        """
        from concurrent.futures import ThreadPoolExecutor

        import pyarrow.compute as pc

        self.check_key_layout(table)
        if not table.num_rows:
            return {"keys_written": 0, "keys_skipped": 0, "encode_s": 0.0, "wait_s": 0.0}
        micros = _event_micros(table[self.timestamp_column])
        commands_per_key = 2 if self.key_ttl else 1
        starts = list(range(0, table.num_rows, self.batch_rows))
        written = skipped = 0
        encoding = waiting = 0.0
        widest = None
        if self.key_type == "STRING":
            widest = pc.max(pc.binary_length(table[self.key_column])).as_py() or 0
        scratch, hget_scratch = _Scratch(), _Scratch()

        def hget(keys: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
            return self._hget(keys, hget_scratch)

        connection = _RespConnection(self.redis)
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="redis-writer") as io:
                keys = self.redis_keys(table.slice(0, self.batch_rows), widest)
                pending = io.submit(connection.exchange, [hget(keys)], 0, len(keys[1]))
                for position, start in enumerate(starts):
                    began = time.perf_counter()
                    batch = table.slice(start, self.batch_rows)
                    batch_micros = micros[start : start + batch.num_rows]
                    wide, mask = _assemble(self._hset_slots(batch, keys, batch_micros),
                                           batch.num_rows, scratch)
                    following = None
                    if position + 1 < len(starts):
                        following = self.redis_keys(
                            table.slice(starts[position + 1], self.batch_rows), widest
                        )
                    encoded = time.perf_counter()
                    stored = pending.result()
                    waited = time.perf_counter()
                    keep = self._newer(stored, batch_micros)
                    buffers = [_compact(wide, mask, keep)]
                    if following is not None:
                        buffers.append(hget(following))
                    kept = int(keep.sum())
                    pending = io.submit(connection.exchange, buffers, kept * commands_per_key,
                                        len(following[1]) if following is not None else 0)
                    written += kept
                    skipped += batch.num_rows - kept
                    keys = following
                    encoding += (encoded - began) + (time.perf_counter() - waited)
                    waiting += waited - encoded
                began = time.perf_counter()
                pending.result()
                waiting += time.perf_counter() - began
        finally:
            connection.close()
        return {"keys_written": written, "keys_skipped": skipped,
                "encode_s": round(encoding, 3), "wait_s": round(waiting, 3)}


def _event_micros(column: pa.ChunkedArray) -> np.ndarray:
    """Event times as microseconds since the epoch (UTC; naive times are UTC)."""
    import pyarrow as pa

    if not pa.types.is_timestamp(column.type):
        raise MaterializationError(f"event timestamp column has type {column.type}")
    values = column.to_numpy(zero_copy_only=False)
    return values.astype("datetime64[us]").astype(np.int64)


# --------------------------------------------------------------------------- reading


def _aware(value: datetime) -> datetime:
    """``value`` in UTC as a plain ``datetime`` (naive means UTC). Airflow passes
    pendulum's DateTime, whose arithmetic drops a ``datetime.timezone`` tzinfo."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(aware.date(), aware.timetz())


def read_latest(writer: RedisFeatureWriter, start: datetime, end: datetime,
                s3: S3Settings | None = None) -> tuple[pa.Table, int]:
    """The latest row per key with ``start <= event time <= end`` (bounds included, as in
    Feast's file offline store), with ``created`` breaking ties.

    Returns:
        The rows (one per key) and the number of rows read.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fraud_platform.s3 import arrow_filesystem

    s3 = s3 or S3Settings()
    source = writer.view.batch_source
    filesystem = arrow_filesystem(s3, source.s3_endpoint_override or None)
    dataset = ds.dataset(source.path.removeprefix("s3://"), filesystem=filesystem,
                         format="parquet", partitioning="hive")
    ts_type = dataset.schema.field(writer.timestamp_column).type
    start, end = _aware(start), _aware(end)

    def bound(value: datetime) -> pa.Scalar:
        return pa.scalar(value if ts_type.tz else value.replace(tzinfo=None), type=ts_type)

    when = ds.field(writer.timestamp_column)
    condition = (when >= bound(start)) & (when <= bound(end))
    if "event_date" in dataset.schema.names and "event_date" not in writer.columns:
        # Hive partitions of the feature tables: read only the days of the interval.
        condition &= (ds.field("event_date") >= start.date().isoformat()) & (
            ds.field("event_date") <= end.date().isoformat()
        )
    table = dataset.to_table(columns=writer.columns, filter=condition)
    latest = latest_rows(table, writer.key_column, writer.timestamp_column,
                         writer.created_column)
    return latest, table.num_rows


def latest_rows(table: pa.Table, key: str, timestamp: str,
                created: str | None = None) -> pa.Table:
    """One row per key: the latest event time, then the latest ``created`` (as Feast's
    offline store intends: a rerun's row replaces the one it corrects). Rows without a
    key are dropped; the order of the input does not matter."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = table.filter(pc.is_valid(table[key]))
    if not table.num_rows:
        return table
    encoded = pc.dictionary_encode(table[key].combine_chunks())
    if len(encoded.dictionary) == table.num_rows:
        return table  # one row per key already (an hourly run, mostly)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    event = _event_micros(table[timestamp])
    # A null `created` sorts first (NaT is the smallest int64).
    made = _event_micros(table[created]) if created else np.zeros(len(event), np.int64)
    order = np.lexsort((made, event, codes))
    ordered = codes[order]
    last = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
    return table.take(pa.array(order[last]))


# --------------------------------------------------------------------------- registry


def _start_materializing(store: FeatureStore, view: FeatureView) -> Any:
    """Move the view to MATERIALIZING as Feast does; returns the state to restore."""
    from feast import FeatureViewState

    state = getattr(view, "state", None)
    if state == FeatureViewState.MATERIALIZING:
        return FeatureViewState.GENERATED
    if state is not None and state != FeatureViewState.STATE_UNSPECIFIED:
        if not state.can_transition_to(FeatureViewState.MATERIALIZING):
            raise MaterializationError(
                f"{view.name} cannot move from {state.name} to MATERIALIZING"
            )
        view.state = FeatureViewState.MATERIALIZING
        store.registry.apply_feature_view(view, store.project, commit=True)
    return state


def _restore_state(store: FeatureStore, view: FeatureView, state: Any) -> None:
    from feast import FeatureViewState

    if state is not None and state != FeatureViewState.STATE_UNSPECIFIED:
        view.state = state
        store.registry.apply_feature_view(view, store.project, commit=True)


def _interval(view: FeatureView, end: datetime, start: datetime | None,
              overlap: timedelta) -> tuple[datetime, datetime]:
    """The interval to read: ``[start, end]``, or incremental from the last end.

    A view tagged ``snapshot`` (a table rewritten whole, such as the card profiles, whose
    event times are issue dates) is read whole, one TTL back from ``end``, whatever the
    start: only then does a run load every row the snapshot changed.
    """
    end = _aware(end)
    if (view.tags or {}).get("snapshot") == "true" and view.ttl:
        return end - view.ttl, end
    if start is not None:
        return _aware(start), end
    last = view.most_recent_end_time
    if last is not None:
        return _aware(last) - overlap, end
    if view.ttl and view.ttl.total_seconds() > 0:
        # First run: as Feast, go back one TTL; from `end` rather than from now, so that
        # backfilling a past interval reads the data before it.
        return end - view.ttl, end
    return datetime(1970, 1, 1, tzinfo=UTC), end


def materialize(
    end: datetime,
    start: datetime | None = None,
    overlap: timedelta = DEFAULT_OVERLAP,
    *,
    feature_views: Sequence[str] | None = None,
    store: FeatureStore | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> dict[str, Any]:
    """Load the latest feature values up to ``end`` into Redis.

    Args:
        end: Last event time to load (included). Timezone-naive means UTC.
        start: First event time to load. When omitted, each view continues from the end
            of its last materialization minus ``overlap`` (or one TTL before ``end`` the
            first time), like ``feast materialize-incremental``.
        overlap: How far before the last end to re-read, for rows that landed late.
        feature_views: Names of the views to load; all online views by default.
        store: The feature store; :func:`feature_pipeline.feature_store.open_store` by
            default.
        batch_rows: Keys per pipelined batch.

    Returns:
        JSON-safe metadata per view and in total: interval, rows read, keys, keys written
        and skipped (older than what Redis holds), duration and keys per second.
    """
    from feature_pipeline.feature_store import open_store

    started = time.perf_counter()
    store = store or open_store()
    views = [v for v in store.list_feature_views() if v.online]
    if feature_views is not None:
        wanted = set(feature_views)
        unknown = wanted - {v.name for v in views}
        if unknown:
            raise MaterializationError(f"no online feature views named {sorted(unknown)}")
        views = [v for v in views if v.name in wanted]
    s3 = S3Settings()
    results: dict[str, Any] = {}
    for view in views:
        view_started = time.perf_counter()
        view_start, view_end = _interval(view, end, start, overlap)
        if view_start > view_end:
            log.info("%s: nothing to do, %s is after %s", view.name, view_start, view_end)
            continue
        writer = RedisFeatureWriter(store, view, batch_rows)
        previous_state = _start_materializing(store, view)
        try:
            latest, rows_read = read_latest(writer, view_start, view_end, s3)
            read_s = time.perf_counter() - view_started
            counts = writer.write(latest)
        except BaseException:
            _restore_state(store, view, previous_state)
            raise
        store.registry.apply_materialization(view, store.project, view_start, view_end)
        duration = time.perf_counter() - view_started
        results[view.name] = {
            "start": view_start.isoformat(),
            "end": view_end.isoformat(),
            "rows": rows_read,
            "keys": latest.num_rows,
            **counts,
            "read_s": round(read_s, 3),
            "duration_s": round(duration, 3),
            "keys_per_s": round(latest.num_rows / duration) if duration > 0 else None,
        }
        log.info("%s: %d rows, %d keys (%d written, %d older than stored) in %.2fs, %s keys/s",
                 view.name, rows_read, latest.num_rows, counts["keys_written"],
                 counts["keys_skipped"], duration, results[view.name]["keys_per_s"])
    duration = time.perf_counter() - started
    keys = sum(r["keys"] for r in results.values())
    working = sum(r["duration_s"] for r in results.values())
    return {
        "end": _aware(end).isoformat(),
        "views": results,
        "rows": sum(r["rows"] for r in results.values()),
        "keys": keys,
        "keys_written": sum(r["keys_written"] for r in results.values()),
        "duration_s": round(duration, 3),
        # Over the views' own durations, without opening the store (imports, registry).
        "keys_per_s": round(keys / working) if working > 0 else None,
    }


_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def _command(
    end: Annotated[datetime, typer.Option(formats=_FORMATS, help="Last event time (UTC).")],
    start: Annotated[
        datetime | None,
        typer.Option(formats=_FORMATS, help="First event time; default: incremental."),
    ] = None,
    overlap_minutes: Annotated[int, typer.Option(min=0, help="Re-read before the last end.")] = 15,
    view: Annotated[list[str] | None, typer.Option(help="Only these views (repeatable).")] = None,
) -> None:
    """Materialize the feature tables into Redis; prints the result as JSON."""
    import json
    import sys

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    result = materialize(end, start, timedelta(minutes=overlap_minutes), feature_views=view)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(_command)
