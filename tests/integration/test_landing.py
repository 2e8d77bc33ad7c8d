"""The generator lands its feeds on the real local S3 server, and a rerun replaces them."""

from __future__ import annotations

import gzip
import json
from datetime import date

import pytest

from feature_pipeline.generate import GeneratorConfig, generate_to_landing
from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings

pytestmark = pytest.mark.integration

CONFIG = GeneratorConfig(n_cards=400, n_merchants=200, start_date=date(2025, 5, 1), days=3, seed=5)


def _landing_objects(s3: S3Settings) -> dict[str, bytes]:
    client = s3_client(s3)
    objects: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=s3.bucket, Prefix=s3.key("landing") + "/"
    ):
        for obj in page.get("Contents", []):
            objects[obj["Key"]] = client.get_object(Bucket=s3.bucket, Key=obj["Key"])["Body"].read()
    return objects


def _rows(objects: dict[str, bytes], feed: str) -> list[dict]:
    return [
        json.loads(line)
        for key, body in sorted(objects.items())
        if f"/{feed}/" in key
        for line in gzip.decompress(body).splitlines()
    ]


def test_generate_to_landing_writes_partitions_and_a_rerun_replaces_them(
    stack_env: dict[str, str],
) -> None:
    s3 = S3Settings()
    meta = generate_to_landing(CONFIG, s3)
    objects = _landing_objects(s3)

    assert sorted(objects) == meta["keys_written"]
    json.dumps(meta)  # JSON-safe, for XCom and the CLI
    n_tx = meta["rows"]["transactions"]
    assert meta["rows_written"] == {
        "cards": 400,
        "merchants": 200,
        "transactions": n_tx,
        "labels": n_tx,
    }
    assert meta["fraud"]["transactions"] > 0 and meta["rows_per_s"] > 0
    tx_keys = [k for k in objects if "/transactions/" in k]
    assert tx_keys == [
        s3.key("landing", "transactions", f"event_date=2025-05-0{d}", "part-00000.jsonl.gz")
        for d in (1, 2, 3)
    ]
    assert s3.key("landing", "reference", "cards", "part-00000.jsonl.gz") in objects
    assert all(k.endswith("/part-20250501-20250503.jsonl.gz") for k in objects if "/labels/" in k)

    transactions, labels = _rows(objects, "transactions"), _rows(objects, "labels")
    assert len(transactions) == len(labels) == n_tx
    assert {r["transaction_id"] for r in transactions} == {r["transaction_id"] for r in labels}
    assert all(r["event_timestamp"].endswith("Z") and "is_fraud" not in r for r in transactions)
    for key, body in objects.items():
        if "/transactions/" in key:
            day = key.split("event_date=")[1][:10]
            assert all(
                json.loads(line)["event_timestamp"].startswith(day)
                for line in gzip.decompress(body).splitlines()
            )
    assert sum(r["is_fraud"] for r in labels) == meta["fraud"]["transactions"]
    assert len(_rows(objects, "cards")) == 400

    # The same window again: same keys, same rows, nothing duplicated.
    again = generate_to_landing(CONFIG, s3)
    objects_again = _landing_objects(s3)
    assert sorted(objects_again) == sorted(objects) == again["keys_written"]
    assert objects_again == objects
    assert again["keys_deleted"] == []

    # Another seed for the same window: its labels fall on other dates; the first run's
    # label objects that were not rewritten are removed, so no label is left twice.
    other = generate_to_landing(CONFIG.model_copy(update={"seed": 6}), s3)
    objects_other = _landing_objects(s3)
    assert sorted(objects_other) == other["keys_written"]
    assert len(_rows(objects_other, "labels")) == len(_rows(objects_other, "transactions"))
