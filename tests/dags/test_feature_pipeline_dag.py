"""``feature_pipeline`` run with ``dag.test()`` for one day on the real stack and Spark."""

from __future__ import annotations

import gzip
from datetime import date

import pendulum
import pytest

from feature_pipeline import pipeline
from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings

pytestmark = [pytest.mark.dags, pytest.mark.integration]


def test_daily_run_ingests_and_computes_its_interval(dagbag, spark) -> None:
    pipeline.generate(date(2026, 6, 1), days=2, n_cards=300, n_merchants=200, seed=11)
    s3 = S3Settings()
    landed = s3_client(s3).get_object(
        Bucket=s3.bucket,
        Key=s3.key("landing", "transactions", "event_date=2026-06-02", "part-00000.jsonl.gz"),
    )["Body"].read()
    expected = len(gzip.decompress(landed).splitlines())
    dag = dagbag.get_dag("feature_pipeline")
    # A manual run at 2026-06-03 00:00 covers the day before it: 2026-06-02.
    run = dag.test(logical_date=pendulum.datetime(2026, 6, 3, tz="UTC"))
    assert str(run.state) == "success"
    pulled = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
    ingested = pulled["ingest"]["transactions"]
    # The interval is 2026-06-02 only: exactly the second generated day, reconciled.
    assert ingested["read"] == expected > 0
    assert ingested["read"] == ingested["bronze"] + ingested["quarantined"] + ingested[
        "duplicates"]
    assert pulled["compute"]["card_transaction_features"] > 0
    days = {r.event_date for r in spark.read.parquet(
        s3.s3a_uri("silver", "card_transaction_features")).select("event_date").distinct()
        .collect()}
    assert {str(d) for d in days} == {"2026-06-02"}
