"""What runs killed mid-publish staged, removed by the next run of their partitions, against
the real S3 server: only runs whose lease the new run took over and that renew no lease of
their own lose their staging; a live run's staging and a dead run of other partitions stay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import pytest

from feature_pipeline import pipeline
from feature_pipeline.lease import Lease, LeaseSettings
from feature_pipeline.publish import TableRef, remove_dead_staging
from fraud_platform.s3 import list_keys, s3_client
from fraud_platform.settings import S3Settings
from tests.integration.test_feature_pipeline import PLANTED, put_landing

pytestmark = pytest.mark.integration

BRONZE = TableRef("bronze", "transactions", "event_date")
QUARANTINE = TableRef("quarantine", "transactions", "source_date")
SETTINGS = LeaseSettings(ttl_seconds=1.5, wait_seconds=10)
DAY = date(2026, 5, 1)


def stage_objects(table: TableRef, run_id: str, s3: S3Settings, days: list[str]) -> None:
    """What a run's Spark write leaves in its staging folder: data files and markers."""
    client = s3_client(s3)
    staging = table.staging_key(s3, run_id)
    keys = [f"{staging}/_SUCCESS"] + [f"{staging}/event_date={d}/part-0.parquet" for d in days]
    for key in keys:
        client.put_object(Bucket=s3.bucket, Key=key, Body=b"staged")


def staged_runs(table: TableRef, s3: S3Settings) -> set[str]:
    folder = s3.key(table.zone, "_staging", table.name) + "/"
    return {key[len(folder) :].split("/", 1)[0] for key in list_keys(folder, s3)}


def dead_lease(name: str, run_id: str, s3: S3Settings) -> None:
    """A lease whose holder was killed: taken, then never renewed nor released."""
    lease = Lease([name], run_id, s3, SETTINGS)
    lease.acquire()
    lease._stop.set()


@pytest.fixture()
def live_lease(stack_env) -> Iterator[None]:
    """A run alive on 2026-05-02 (renewing its lease) whose lease of 2026-05-05 was lost."""
    s3 = S3Settings()
    dead_lease("bronze/transactions/2026-05-05", "slow-run", s3)
    alive = Lease(["bronze/transactions/2026-05-02"], "slow-run", s3, SETTINGS)
    alive.acquire()
    try:
        yield
    finally:
        alive.release()


def test_only_dead_holders_of_the_taken_partitions_lose_their_staging(live_lease) -> None:
    s3 = S3Settings()
    dead_lease("bronze/transactions/2026-05-01", "killed-run", s3)
    dead_lease("bronze/transactions/2026-05-03", "other-dead-run", s3)
    stage_objects(BRONZE, "killed-run", s3, ["2026-05-01", "2026-05-04"])
    stage_objects(QUARANTINE, "killed-run", s3, ["2026-05-01"])
    stage_objects(BRONZE, "slow-run", s3, ["2026-05-02", "2026-05-05"])
    stage_objects(BRONZE, "other-dead-run", s3, ["2026-05-03"])
    time.sleep(SETTINGS.ttl_seconds + 0.5)
    names = ["bronze/transactions/2026-05-01", "bronze/transactions/2026-05-05"]
    rerun = Lease(names, "rerun", s3, SETTINGS)
    rerun.acquire()
    try:
        assert rerun.taken_over == {names[0]: "killed-run", names[1]: "slow-run"}
        dead = rerun.dead_runs()
        removed = remove_dead_staging([BRONZE, QUARANTINE], dead, s3)
    finally:
        rerun.release()
    assert dead == {"killed-run"}
    assert removed == {"bronze/transactions": 3, "quarantine/transactions": 2}
    assert staged_runs(BRONZE, s3) == {"slow-run", "other-dead-run"}
    assert staged_runs(QUARANTINE, s3) == set()


def test_a_rerun_removes_the_killed_runs_staging_and_counts_it(
    stack_env, spark, monkeypatch
) -> None:
    s3 = S3Settings()
    monkeypatch.setenv("FRAUD_LEASE_TTL_SECONDS", str(SETTINGS.ttl_seconds))
    put_landing("transactions", f"event_date={DAY}", PLANTED)
    dead_lease(f"bronze/transactions/{DAY}", "killed-run", s3)
    stage_objects(BRONZE, "killed-run", s3, [str(DAY)])
    stage_objects(QUARANTINE, "killed-run", s3, [str(DAY)])
    time.sleep(SETTINGS.ttl_seconds + 0.5)
    outputs = pipeline.ingest(DAY, DAY, spark=spark)["feeds"]["transactions"]["outputs"]
    assert outputs["bronze/transactions"]["stale_staging_removed"] == 2
    assert outputs["quarantine/transactions"]["stale_staging_removed"] == 2
    assert staged_runs(BRONZE, s3) == staged_runs(QUARANTINE, s3) == set()
    assert not list_keys(s3.key("_leases") + "/", s3)
