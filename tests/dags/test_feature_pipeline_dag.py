"""``feature_pipeline`` run with ``dag.test()`` for one day on the real stack and Spark."""

from __future__ import annotations

import gzip
import os
from datetime import date

import pendulum
import pytest

from feature_pipeline import pipeline
from fraud_platform.redis_client import redis_client
from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings

pytestmark = [pytest.mark.dags, pytest.mark.integration]

REDIS_DB = 7


def test_daily_run_ingests_computes_and_materializes_its_interval(
    dagbag, spark, tmp_path, monkeypatch
) -> None:
    # A registry of this test's own, pointing at this test's S3 prefix, and a Redis database
    # of its own: generated card ids repeat across runs, and newer values already in Redis
    # rightly win over this test's older ones.
    monkeypatch.setenv("FEAST_REGISTRY_PATH", f"sqlite:///{tmp_path / 'registry.db'}")
    monkeypatch.setenv(
        "REDIS_CONNECTION_STRING", os.environ["REDIS_CONNECTION_STRING"] + f",db={REDIS_DB}"
    )
    with redis_client() as client:
        client.flushdb()
    from feature_pipeline.feature_store import apply_definitions, open_store

    apply_definitions(check=False)
    pipeline.generate(date(2026, 6, 1), days=2, n_cards=300, n_merchants=200, seed=11)
    s3 = S3Settings()
    landed = (
        s3_client(s3)
        .get_object(
            Bucket=s3.bucket,
            Key=s3.key("landing", "transactions", "event_date=2026-06-02", "part-00000.jsonl.gz"),
        )["Body"]
        .read()
    )
    expected = len(gzip.decompress(landed).splitlines())
    dag = dagbag.get_dag("feature_pipeline")
    # A manual run at 2026-06-03 00:00 covers the day before it: 2026-06-02.
    run = dag.test(logical_date=pendulum.datetime(2026, 6, 3, tz="UTC"))
    assert str(run.state) == "success"
    pulled = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
    ingested = pulled["ingest"]["transactions"]
    # The interval is 2026-06-02 only: exactly the second generated day, reconciled.
    assert ingested["read"] == expected > 0
    assert ingested["read"] == ingested["bronze"] + ingested["quarantined"] + ingested["duplicates"]
    assert pulled["compute"]["card_transaction_features"] > 0
    days = {
        r.event_date
        for r in spark.read.parquet(s3.s3a_uri("silver", "card_transaction_features"))
        .select("event_date")
        .distinct()
        .collect()
    }
    assert {str(d) for d in days} == {"2026-06-02"}
    # Redis now serves the day's newest values: every card of the day has a vector.
    assert pulled["materialize"]["keys_written"] > 0
    latest = (
        spark.read.parquet(s3.s3a_uri("silver", "card_transaction_features"))
        .orderBy("event_timestamp", ascending=False)
        .first()
    )
    online = (
        open_store()
        .get_online_features(
            features=["card_transaction_features:txn_count_24h"],
            entity_rows=[{"card_id": latest.card_id}],
        )
        .to_dict()
    )
    assert online["txn_count_24h"] == [latest.txn_count_24h]

    # The hourly DAG continues from the registry: the last materialization ended at
    # 2026-06-03 00:00, so a run for [00:00, 01:00) re-reads the 15-minute overlap before it.
    with redis_client() as client:
        client.flushdb()
    hourly = dagbag.get_dag("materialize_online").test(
        logical_date=pendulum.datetime(2026, 6, 3, 1, tz="UTC")
    )
    assert str(hourly.state) == "success"
    loaded = hourly.get_task_instances()[0].xcom_pull(task_ids="materialize_incremental")
    overlap = "event_timestamp >= '2026-06-02 23:45:00'"
    expected = sum(
        spark.read.parquet(s3.s3a_uri("silver", table))
        .where(overlap)
        .select(key)
        .distinct()
        .count()
        for table, key in (
            ("card_transaction_features", "card_id"),
            ("merchant_risk_features", "merchant_id"),
        )
    )
    # The card profiles are a snapshot, reloaded whole by every run (Redis was flushed).
    profiles = spark.read.parquet(s3.s3a_uri("silver", "card_profile_features")).count()
    assert loaded["keys_written"] == expected + profiles
    assert expected > 0
