"""Feast's Redis layout, both ways: the one codec of entity keys and stored values.

Feast's Redis online store (feast/infra/online_stores/redis.py) keeps one hash per entity
key, named ``serialize_entity_key(key, 3) + project``; one field per feature holding the
serialized ``feast.types.Value`` (empty for a null); and ``_ts:<view>`` holding the
serialized ``google.protobuf.Timestamp`` of the row's event time. Going through Feast for
every key and value costs more than the Redis round trip, so this module reproduces the
formats for the types the project serves: column-wise for the materialization writer
(numpy, no protobuf object per value), value by value for the scoring API's reader. Both
are checked against Feast's own output (the parity tests byte for byte against Feast's
writer, ``tests/unit/inference_pipeline/test_online_features.py`` for the reader).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud_platform.resp_matrix import place

if TYPE_CHECKING:
    import pyarrow as pa


# Tags of feast.types.Value's oneof fields: (field number << 3) | wire type.
VALUE_TAGS = {"int32": 0x18, "int64": 0x20, "double": 0x29, "float": 0x35, "bool": 0x38}


def varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def tagged(tag: int, body: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    payload = np.empty((body.shape[0], body.shape[1] + 1), np.uint8)
    payload[:, 0] = tag
    payload[:, 1:] = body
    return payload, lengths + 1


def value_payload(kind: str, column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
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
        payload, lengths = tagged(VALUE_TAGS[kind], body, np.full(len(numbers), width))
    else:
        target = pa.bool_() if kind == "bool" else pa.int64()
        filled = pc.fill_null(column.cast(target, safe=False), False if kind == "bool" else 0)
        numbers = filled.to_numpy(zero_copy_only=False).astype(np.int64)
        if kind == "int32":
            numbers = numbers.astype(np.int32).astype(np.int64)
        body, lengths = varints(numbers.view(np.uint64))
        payload, lengths = tagged(VALUE_TAGS[kind], body, lengths)
    return payload, np.where(null, 0, lengths)


def timestamp_payload(micros: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Serialized ``google.protobuf.Timestamp`` (seconds, and nanos when not zero)."""
    seconds = np.floor_divide(micros, 1_000_000)
    nanos = (micros - seconds * 1_000_000) * 1000
    sec_bytes, sec_len = varints(seconds.view(np.uint64))
    nano_bytes, nano_len = varints(nanos.astype(np.uint64))
    has_nanos = nanos != 0
    payload = np.zeros((len(micros), 1 + sec_bytes.shape[1] + 1 + nano_bytes.shape[1]), np.uint8)
    payload[:, 0] = 0x08
    payload[:, 1 : 1 + sec_bytes.shape[1]] = sec_bytes
    offsets = 1 + sec_len
    if has_nanos.any():
        rows = np.arange(len(micros))
        payload[rows[has_nanos], offsets[has_nanos]] = 0x10
        place(payload, offsets + 1, nano_bytes, np.where(has_nanos, nano_len, 0))
    return payload, offsets + np.where(has_nanos, 1 + nano_len, 0)


def entity_key_prefix(join_key: str, key_type: str) -> bytes:
    """What every serialized entity key of ``join_key`` starts with (entity key
    serialization v3): the join key, then the value type."""
    from feast.infra.key_encoding_utils import serialize_entity_key_prefix
    from feast.protos.feast.types.Value_pb2 import ValueType as ValueTypeProto

    return serialize_entity_key_prefix([join_key]) + struct.pack(
        "<I", getattr(ValueTypeProto, key_type)
    )


def entity_keys(
    column: pa.ChunkedArray, key_type: str, prefix: bytes, project: str, widest: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each value's Redis key (``prefix``, value length, value, project) as a byte matrix
    and lengths.

    Args:
        column: The entity values (STRING or INT64).
        widest: Room for the longest key value (bytes); the column's longest by default.
            One width for all batches keeps their layout identical.
    """
    import pyarrow as pa

    column = column.combine_chunks()
    rows = len(column)
    if key_type == "STRING":
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
    start = len(prefix) + 4
    out = np.empty((rows, start + values.shape[1] + len(project)), np.uint8)
    out[:, : len(prefix)] = np.frombuffer(prefix, np.uint8)
    out[:, len(prefix) : start] = value_lengths.astype("<u4").view(np.uint8).reshape(rows, 4)
    out[:, start : start + values.shape[1]] = values
    project_bytes = np.broadcast_to(np.frombuffer(project.encode(), np.uint8), (rows, len(project)))
    place(out, start + value_lengths, project_bytes, np.full(rows, len(project)))
    return out, start + value_lengths + len(project)


def key_function(project: str, join_key: str) -> Callable[[str], bytes]:
    """``value -> Redis hash name`` of a single string join key, as Feast names it.

    Feast's ``_redis_key`` builds an ``EntityKey`` protobuf and serializes it for every
    call (about 20 µs). For one string key the result is a fixed head, the value's length
    (4 bytes, little endian), the value and the project: the head is taken from Feast's
    own output and the layout checked against it here, so a change of Feast's format
    falls back to calling Feast rather than to wrong keys.
    """
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    def feast_key(value: str) -> bytes:
        key = EntityKey(join_keys=[join_key], entity_values=[Value(string_val=value)])
        return _redis_key(project, key, entity_key_serialization_version=3)

    tail = project.encode()
    sample = feast_key("x")
    head = sample[: len(sample) - len(tail) - 5]
    pack = struct.Struct("<I").pack

    def fast_key(value: str) -> bytes:
        data = value.encode()
        return head + pack(len(data)) + data + tail

    checks = ("x", "card_000042", "ü-ß", "a" * 300)
    return fast_key if all(fast_key(v) == feast_key(v) for v in checks) else feast_key


_DOUBLE = struct.Struct("<d").unpack_from
_TAG_DOUBLE, _TAG_INT32, _TAG_INT64 = VALUE_TAGS["double"], VALUE_TAGS["int32"], VALUE_TAGS["int64"]


def decode_value(data: bytes | None) -> Any:
    """A stored ``feast.types.Value`` as a Python value; None for a missing or null one.

    Doubles and integers, the types of every served feature, are read directly from the
    protobuf wire format (a double is its tag and 8 bytes, an integer its tag and a
    varint); anything else is parsed by protobuf. ``tests/unit`` checks both paths
    against protobuf's own parser.
    """
    if not data:
        return None
    tag = data[0]
    if tag == _TAG_DOUBLE and len(data) == 9:
        return _DOUBLE(data, 1)[0]
    if tag in (_TAG_INT64, _TAG_INT32) and len(data) <= 11:
        value = shift = 0
        for byte in data[1:]:
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        return value - (1 << 64) if value >= 1 << 63 else value
    return _proto_value(data)


def _proto_value(data: bytes) -> Any:
    from feast.protos.feast.types.Value_pb2 import Value

    proto = Value.FromString(data)
    kind = proto.WhichOneof("val")
    return None if kind is None or kind == "null_val" else getattr(proto, kind)


def timestamp_seconds(data: bytes | None) -> float | None:
    """A stored ``google.protobuf.Timestamp`` as epoch seconds."""
    if not data:
        return None
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp.FromString(data)
    return stamp.seconds + stamp.nanos / 1e9


def clean(value: Any) -> Any:
    """NaN from an on-demand function is a missing value, as Feast returns it online."""
    return None if isinstance(value, float) and math.isnan(value) else value
