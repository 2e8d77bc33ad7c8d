"""Publishing on bad days, against the real S3 server and Spark: a day whose landing
folder is missing leaves the published data as it was, and a second run of a date waits
for the first one's publish lease or fails naming it."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest

from feature_pipeline import pipeline
from feature_pipeline.lease import Lease, LeaseHeldError, LeaseSettings
from fraud_platform.s3 import delete_prefix
from fraud_platform.settings import S3Settings
from tests.integration.test_feature_pipeline import PLANTED, put_landing

pytestmark = pytest.mark.integration

DAY = date(2026, 5, 1)


def bronze_rows(spark) -> int:
    return spark.read.parquet(S3Settings().s3a_uri("bronze", "transactions")).count()


@pytest.fixture()
def published(stack_env, spark):
    """DAY's planted transactions, ingested and published once."""
    put_landing("transactions", f"event_date={DAY}", PLANTED)
    assert pipeline.ingest(DAY, DAY, spark=spark)["feeds"]["transactions"]["bronze"] == 5
    return spark


def test_a_missing_landing_folder_fails_and_leaves_published_data(published) -> None:
    s3 = S3Settings()
    delete_prefix(s3.key("landing", "transactions", f"event_date={DAY}") + "/", s3)
    with pytest.raises(pipeline.MissingInputError, match=f"transactions: {DAY}"):
        pipeline.ingest(DAY, DAY, spark=published)
    assert bronze_rows(published) == 5
    skipped = pipeline.ingest(DAY, DAY, spark=published, skip_missing_days=True)
    assert skipped["skipped_days"]["transactions"] == [DAY.isoformat()]
    assert bronze_rows(published) == 5


def test_a_second_run_of_a_date_waits_for_the_lease_then_fails_naming_the_holder(
    published, monkeypatch
) -> None:
    monkeypatch.setenv("FRAUD_LEASE_WAIT_SECONDS", "2")
    holder = Lease([f"bronze/transactions/{DAY}"], "the-other-run", S3Settings())
    holder.acquire()
    try:
        with pytest.raises(LeaseHeldError, match="the-other-run"):
            pipeline.ingest(DAY, DAY, spark=published)
    finally:
        holder.release()
    assert bronze_rows(published) == 5
    assert pipeline.ingest(DAY, DAY, spark=published)["feeds"]["transactions"]["bronze"] == 5


def test_a_lease_left_by_a_killed_run_is_taken_over_after_its_ttl(published) -> None:
    s3 = S3Settings()
    settings = LeaseSettings(ttl_seconds=1.5, wait_seconds=10)
    dead = Lease([f"bronze/transactions/{DAY}"], "killed-run", s3, settings)
    dead.acquire()
    dead._stop.set()  # the holder dies: no renewal, no release
    time.sleep(2)
    taker = Lease([f"bronze/transactions/{DAY}"], "rerun", s3, settings)
    taker.acquire()
    record = json.loads(
        taker._client.get_object(Bucket=s3.bucket, Key=taker._key(f"bronze/transactions/{DAY}"))[
            "Body"
        ].read()
    )
    taker.release()
    assert record["run_id"] == "rerun"
