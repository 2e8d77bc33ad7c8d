"""The hand-rolled pieces of the online read agree with Feast's and protobuf's own."""

from __future__ import annotations

import math

import pytest
from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from fraud_platform.resp import encode
from inference_pipeline.online_features import EntityPlan, ViewPlan, decode_value, key_function


@pytest.mark.parametrize(
    "proto",
    [
        Value(double_val=0.0),
        Value(double_val=-0.0),
        Value(double_val=123.456),
        Value(double_val=-1e300),
        Value(double_val=math.inf),
        Value(double_val=5e-324),
        Value(int64_val=0),
        Value(int64_val=1),
        Value(int64_val=300),
        Value(int64_val=-1),
        Value(int64_val=2**63 - 1),
        Value(int64_val=-(2**63)),
        Value(int32_val=-7),
        Value(int32_val=2**31 - 1),
        Value(float_val=1.5),
        Value(bool_val=True),
        Value(string_val="x"),
        Value(unix_timestamp_val=1_700_000_000),
    ],
)
def test_decoded_values_match_protobuf(proto: Value) -> None:
    expected = getattr(proto, proto.WhichOneof("val"))
    assert decode_value(proto.SerializeToString()) == expected


def test_missing_and_null_values_are_none() -> None:
    assert decode_value(None) is None
    assert decode_value(b"") is None
    assert math.isnan(decode_value(Value(double_val=math.nan).SerializeToString()))


@pytest.mark.parametrize("value", ["c000001", "", "ü-ß-漢字", "x" * 1000, "merchant 42"])
def test_redis_keys_are_feasts(value: str) -> None:
    key = EntityKey(join_keys=["card_id"], entity_values=[Value(string_val=value)])
    expected = _redis_key("fraud_detection", key, entity_key_serialization_version=3)
    assert key_function("fraud_detection", "card_id")(value) == expected


def test_hmget_command_is_the_resp_of_key_and_fields() -> None:
    plan = EntityPlan(
        "card_id", (ViewPlan("v", ("a",)),), (b"\x01\x02\x03\x04", "_ts:v"), key_of=str.encode
    )
    assert plan.command("c1") == encode("HMGET", "c1", b"\x01\x02\x03\x04", "_ts:v")
