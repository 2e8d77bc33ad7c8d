"""The feature pipeline against the real S3 server and Spark: quarantine reconciliation,
idempotent reruns, a failing gate that publishes nothing, and an external source."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pytest

from feature_pipeline import bronze, pipeline
from feature_pipeline.validation import ValidationGateError
from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings

pytestmark = pytest.mark.integration

DAY = date(2026, 5, 1)


def record(tid: str | None, **overrides) -> dict:
    base = {
        "transaction_id": tid,
        "card_id": "c1",
        "merchant_id": "m1",
        "amount": 12.5,
        "currency": "EUR",
        "merchant_category": "grocery",
        "channel": "card_present",
        "latitude": 48.85,
        "longitude": 2.35,
        "event_timestamp": "2026-05-01T10:00:00Z",
    }
    return {**base, **overrides}


def put_landing(feed: str, partition: str, lines: list[str]) -> None:
    s3 = S3Settings()
    body = gzip.compress(("\n".join(lines) + "\n").encode())
    key = s3.key("landing", feed, partition, "part-00000.jsonl.gz")
    s3_client(s3).put_object(Bucket=s3.bucket, Key=key, Body=body)


def objects(*parts: str) -> list[str]:
    s3 = S3Settings()
    listing = s3_client(s3).list_objects_v2(Bucket=s3.bucket, Prefix=s3.key(*parts) + "/")
    return [obj["Key"] for obj in listing.get("Contents", [])]


PLANTED = [
    *[
        json.dumps(record(f"t{i}", amount=10.0 + i, event_timestamp=f"2026-05-01T1{i}:00:00Z"))
        for i in range(5)
    ],
    json.dumps(record("t0", amount=99.0)),  # duplicate id
    json.dumps(record(None)),  # missing id
    json.dumps(record("t5", event_timestamp="yesterday at noon")),  # unparsable timestamp
    json.dumps(record("t6", event_timestamp="2099-01-01T00:00:00Z")),  # far future
    json.dumps(record("t7", amount=-3.0)),  # negative amount
    json.dumps(record("t8", amount="abc")),  # non-numeric amount
    json.dumps(record("t11", amount="Infinity")),  # not a finite amount
    '{"transaction_id": "t9", "amount": 1.0',  # malformed JSON
    "   ",  # blank: not a record
    json.dumps(record("t10", event_timestamp="2026-05-03T09:00:00Z")),  # outside the window
]


@pytest.fixture()
def planted(stack_env, spark):
    put_landing("transactions", f"event_date={DAY}", PLANTED)
    return spark


def test_quarantine_counts_reconcile_exactly(planted) -> None:
    result = pipeline.ingest(DAY, DAY, spark=planted)["feeds"]["transactions"]
    assert (result["read"], result["bronze"], result["quarantined"], result["duplicates"]) == (
        14,
        5,
        8,
        1,
    )
    assert result["read"] == result["bronze"] + result["quarantined"] + result["duplicates"]
    assert result["quarantine_reasons"] == {
        "duplicate": 1,
        "future_timestamp": 1,
        "malformed_json": 1,
        "missing_transaction_id": 1,
        "negative_amount": 1,
        "non_numeric_amount": 2,
        "outside_window": 1,
        "unparsable_timestamp": 1,
    }
    assert result["outputs"]["bronze/transactions"]["validation"]["success"] is True
    s3 = S3Settings()
    kept = planted.read.parquet(s3.s3a_uri("bronze", "transactions"))
    assert sorted(r.transaction_id for r in kept.collect()) == ["t0", "t1", "t2", "t3", "t4"]
    # The first of the duplicates (by time) is kept: t0's original amount, not 99.
    assert kept.where("transaction_id = 't0'").first().amount == 10.0
    quarantined = planted.read.parquet(s3.s3a_uri("quarantine", "transactions"))
    assert quarantined.count() == 9
    malformed = quarantined.where("reason = 'malformed_json'").first()
    assert malformed.raw_record.startswith('{"transaction_id": "t9"')


def test_rerun_replaces_instead_of_duplicating(planted) -> None:
    first = pipeline.ingest(DAY, DAY, spark=planted)["feeds"]["transactions"]
    second = pipeline.ingest(DAY, DAY, spark=planted)["feeds"]["transactions"]
    assert first["bronze"] == second["bronze"] == 5
    s3 = S3Settings()
    assert planted.read.parquet(s3.s3a_uri("bronze", "transactions")).count() == 5
    assert planted.read.parquet(s3.s3a_uri("quarantine", "transactions")).count() == 9
    data_files = [k for k in objects("bronze", "transactions") if k.endswith(".parquet")]
    assert [k.rsplit("/", 2)[-2:] for k in data_files] == [
        ["event_date=2026-05-01", "part-00000.parquet"]
    ]
    assert not objects("bronze", "_staging")


def test_failing_gate_stops_the_run_and_publishes_nothing(planted) -> None:
    pipeline.ingest(DAY, DAY, spark=planted)
    s3 = S3Settings()
    before = planted.read.parquet(s3.s3a_uri("bronze", "transactions")).count()
    # Valid records as far as the quarantine goes, but an unknown channel everywhere.
    put_landing(
        "transactions",
        f"event_date={DAY}",
        [json.dumps(record(f"x{i}", channel="teleport")) for i in range(20)],
    )
    with pytest.raises(ValidationGateError) as failure:
        bronze.ingest_feed(
            planted,
            bronze.TRANSACTIONS,
            DAY,
            DAY,
            s3,
            gate=lambda staged, counts: pipeline._validated(
                staged, "bronze_transactions", counts.bronze, None, s3
            ),
        )
    assert "channel" in str(failure.value)
    assert failure.value.report.success is False
    after = planted.read.parquet(s3.s3a_uri("bronze", "transactions"))
    assert after.count() == before
    assert after.where("channel = 'teleport'").count() == 0
    assert not objects("bronze", "_staging")
    assert objects("validation", "bronze_transactions")


def test_external_csv_source_with_a_label_column(stack_env, spark, tmp_path: Path) -> None:
    csv = tmp_path / "external.csv"
    csv.write_text(
        "TxnID,Card,Shop,Amt,Epoch,Fraud\n"
        "e1,k1,s1,10.50,1777629600,0\n"  # 2026-05-01T10:00:00Z
        "e2,k1,s2,99.99,1777633200,1\n"  # 2026-05-01T11:00:00Z
        "e3,k2,s1,abc,1777636800,0\n"  # non-numeric amount
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        f"path: {csv}\nformat: csv\ntimestamp_format: epoch_seconds\n"
        "columns:\n  transaction_id: TxnID\n  card_id: Card\n  merchant_id: Shop\n"
        "  amount: Amt\n  event_timestamp: Epoch\n"
        "label:\n  column: Fraud\n  delay_days: 3\n"
    )
    result = pipeline.ingest(DAY, DAY, source=mapping, spark=spark)["feeds"]
    txns, labels = result["transactions"], result["labels"]
    assert (txns["read"], txns["bronze"], txns["quarantined"]) == (3, 2, 1)
    assert txns["quarantine_reasons"] == {"non_numeric_amount": 1}
    s3 = S3Settings()
    rows = {
        r.transaction_id: r
        for r in spark.read.parquet(s3.s3a_uri("bronze", "transactions")).collect()
    }
    assert rows["e2"].amount == 99.99 and rows["e2"].card_id == "k1"
    assert rows["e2"].latitude is None and rows["e2"].channel is None
    assert str(rows["e1"].event_timestamp) == "2026-05-01 10:00:00"
    assert (labels["read"], labels["bronze"]) == (3, 3)
    known = {
        r.transaction_id: r for r in spark.read.parquet(s3.s3a_uri("bronze", "labels")).collect()
    }
    assert known["e2"].is_fraud == 1 and known["e1"].is_fraud == 0
    assert str(known["e2"].label_timestamp) == "2026-05-04 11:00:00"
