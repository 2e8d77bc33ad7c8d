"""Faults of the feature pipeline on a small day, against the real S3 server and Spark:
a run killed by SIGKILL while it publishes, the S3 server stopped mid-ingest, a rerun,
two runs of the same date at once, and landing files that are garbage, empty, of another
schema, or large with a tenth of bad records. Every count comes from what S3 holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from feature_pipeline import bronze, pipeline
from feature_pipeline.publish import TableRef
from fraud_platform import layout
from fraud_platform.s3 import list_keys
from fraud_platform.settings import S3Settings
from tests.conftest import REPO_ROOT
from tests.faults.tables import digests, gzipped, put_landing, stored, transactions

pytestmark = pytest.mark.faults

DAY = date(2026, 5, 1)
DAY_ROWS = 2_000
BIG_ROWS = int(os.environ.get("FAULTS_BIG_ROWS", "1000000"))
LEASE_TTL = "4"
"""Seconds a dead run's lease blocks a rerun (120 in production): the rerun takes over."""


@pytest.fixture
def day(stack_env, spark, monkeypatch) -> int:
    """DAY's feeds landed by the generator (no bad record); returns the transactions."""
    monkeypatch.setenv("FRAUD_LEASE_TTL_SECONDS", LEASE_TTL)
    generated = pipeline.generate(DAY, 1, n_cards=300, n_merchants=200, n_transactions=DAY_ROWS)
    return generated["rows_written"]["transactions"]


def ingest(spark) -> dict:
    return pipeline.ingest(DAY, DAY, spark=spark, feeds=["transactions"])["feeds"]["transactions"]


def ingest_and_compute(spark) -> dict[str, str]:
    """Every feed of DAY (labels arrive up to 30 days later), its features, their digests."""
    pipeline.ingest(DAY, DAY, spark=spark, feeds=["transactions", "cards", "merchants"])
    pipeline.ingest(DAY, DAY + timedelta(days=30), spark=spark, feeds=["labels"])
    pipeline.compute(DAY, DAY, spark=spark)
    return digests(spark, DAY)


def cli_ingest(log_name: str, tmp_path) -> subprocess.Popen:
    """``feature-pipeline ingest`` of DAY as its own process (its own Spark driver)."""
    log = (tmp_path / log_name).open("wb")
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "feature-pipeline"),
            "ingest",
            "--start",
            str(DAY),
            "--end",
            str(DAY),
        ],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def staging(table: TableRef, s3: S3Settings) -> str:
    """The folder of every run's staging output of ``table``."""
    return s3.key(table.zone, layout.STAGING, table.name)


def staged_runs(keys: list[str]) -> set[str]:
    """The ids of the runs whose staging objects are among ``keys``
    (``<zone>/_staging/<table>/<run_id>/...``)."""
    marker = f"/{layout.STAGING}/"
    return {key.split(marker, 1)[1].split("/")[1] for key in keys if marker in key}


def kill_when(run: subprocess.Popen, prefix: str, s3: S3Settings) -> None:
    """SIGKILL ``run`` as soon as a Parquet object shows up under ``prefix``."""
    deadline = time.monotonic() + 300
    while run.poll() is None and time.monotonic() < deadline:
        if any(k.endswith(".parquet") for k in list_keys(prefix + "/", s3)):
            os.killpg(run.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    run.wait(30)
    assert run.returncode == -signal.SIGKILL, f"the run ended on its own ({run.returncode})"


def test_kill_9_during_publish_leaves_no_partial_table_and_a_rerun_publishes_once(
    day, spark, fault, tmp_path
) -> None:
    outcome = fault(
        "kill -9 during publish",
        "`feature-pipeline ingest` as a process, SIGKILL while it stages; a second one "
        "SIGKILLed as soon as its first partition is published; then a rerun",
        "no partial table visible (each partition whole or absent, staging hidden); each "
        "next run takes over the dead lease and removes the dead run's staging; the rerun "
        "publishes every record once and leaves nothing behind",
    )
    s3 = S3Settings()
    table = bronze.TRANSACTIONS.bronze
    kill_when(cli_ingest("killed-staging.log", tmp_path), staging(table, s3), s3)
    first_run = staged_runs(stored(spark, bronze.TRANSACTIONS, DAY).leftovers)
    kill_when(cli_ingest("killed.log", tmp_path), table.key(s3), s3)
    after_kill = stored(spark, bronze.TRANSACTIONS, DAY)
    # What a reader sees: the bronze partition whole (published before the kill), the
    # quarantine's either whole or absent; staging and leases are not data.
    assert after_kill.duplicated == 0
    assert all(n == 1 for n in after_kill.files_per_partition.values())
    left_by_second = [k for k in after_kill.leftovers if f"/{layout.STAGING}/" in k]
    first_left = first_run & staged_runs(left_by_second)
    rerun = ingest(spark)
    final = stored(spark, bronze.TRANSACTIONS, DAY)
    removed = sum(
        o["stale_staging_removed"] for o in rerun["outputs"].values() if isinstance(o, dict)
    )
    outcome.records_lost = final.lost(day)
    outcome.records_duplicated = final.duplicated
    outcome.observed = (
        f"first run killed while staging, the second after publishing {after_kill.bronze} "
        f"bronze rows (all or nothing), with {len(left_by_second)} staging objects left "
        f"then, {len(first_left)} of them the first run's; rerun: read {rerun['read']}, "
        f"bronze {final.bronze}, files/partition "
        f"{sorted(set(final.files_per_partition.values()))}, removed {removed} staging "
        f"objects, {len(final.leftovers)} objects left (staging or lease)"
    )
    assert after_kill.bronze in (0, final.bronze) and final.bronze == rerun["bronze"]
    assert final.duplicated == 0 and final.lost(day) == 0
    assert set(final.files_per_partition.values()) == {1}
    # Each run took over its dead predecessor's leases and removed what it had staged:
    # the first run's staging was gone before the second was killed, and the rerun leaves
    # nothing behind, staging or lease.
    assert first_run and not first_left
    assert removed == len(left_by_second)
    assert final.leftovers == []


def test_s3_stopped_during_ingest_then_restarted_a_retry_reconciles(
    day, spark, local_stack, fault
) -> None:
    outcome = fault(
        "S3 server stopped during ingest",
        "MinIO stopped (SIGTERM) once the ingest holds its publish lease, restarted 5 s "
        "later; the run retried once if it failed (as the DAG's retry does)",
        "the run fails or rides it out; the retry succeeds; read = bronze + quarantined "
        "+ duplicates and S3 holds every record once",
    )
    s3 = S3Settings()
    attempts: list[str] = []

    def first_attempt() -> None:
        try:
            ingest(spark)
            attempts.append("ok")
        except Exception as exc:
            attempts.append(f"failed: {type(exc).__name__}")

    worker = threading.Thread(target=first_attempt)
    worker.start()
    deadline = time.monotonic() + 180
    while not list_keys(s3.key("_leases") + "/", s3) and time.monotonic() < deadline:
        time.sleep(0.05)
    local_stack.s3.stop()
    time.sleep(5)
    local_stack.s3.start()
    worker.join(600)
    result = ingest(spark) if attempts != ["ok"] else None
    final = stored(spark, bronze.TRANSACTIONS, DAY)
    outcome.records_lost = final.lost(day)
    outcome.records_duplicated = final.duplicated
    outcome.observed = (
        f"first attempt {attempts[0] if attempts else 'hung'}"
        + (
            f"; retry read {result['read']} = bronze {result['bronze']} + quarantined "
            f"{result['quarantined']} + duplicates {result['duplicates']}"
            if result
            else ""
        )
        + f"; S3 holds bronze {final.bronze}, quarantine {final.quarantined}; "
        f"{len(final.leftovers)} staging objects of the failed attempt left (hidden)"
    )
    assert final.lost(day) == 0 and final.duplicated == 0
    assert set(final.files_per_partition.values()) == {1}
    assert not [k for k in final.leftovers if "/_staging/" not in k]


def test_a_rerun_of_a_date_gives_identical_digests(day, spark, fault) -> None:
    outcome = fault(
        "rerun of a date",
        "ingest and compute DAY, digest every published table, run both again",
        "identical digests of bronze, quarantine and the feature tables (run-time columns "
        "`ingested_at`, `created` left out)",
    )
    first = ingest_and_compute(spark)
    second = ingest_and_compute(spark)
    final = stored(spark, bronze.TRANSACTIONS, DAY)
    outcome.records_lost = final.lost(day)
    outcome.records_duplicated = final.duplicated
    same = [name for name in first if first[name] == second[name]]
    outcome.observed = f"{len(same)}/{len(first)} tables with identical digests"
    outcome.details = {"digests": second}
    assert first == second
    assert final.lost(day) == 0 and final.duplicated == 0


def test_concurrent_runs_of_a_date_publish_once(day, spark, fault, tmp_path) -> None:
    outcome = fault(
        "concurrent runs of a date",
        "`feature-pipeline ingest` as a process and the same ingest in this process, at once",
        "the second to reach a partition waits for the first's lease (or fails naming it); "
        "the date is published once",
    )
    other = cli_ingest("concurrent.log", tmp_path)
    started = time.monotonic()
    mine = ingest(spark)
    mine_done = time.monotonic() - started
    other.wait(600)
    other_done = time.monotonic() - started
    log = (tmp_path / "concurrent.log").read_text(errors="replace")
    waited = "lease" in log.lower() and "wait" in log.lower()
    final = stored(spark, bronze.TRANSACTIONS, DAY)
    outcome.records_lost = final.lost(day)
    outcome.records_duplicated = final.duplicated
    outcome.observed = (
        f"in-process run done at {mine_done:.0f} s (bronze {mine['bronze']}), the process "
        f"exited {other.returncode} at {other_done:.0f} s"
        + (" after waiting for the lease" if waited else "")
        + f"; S3 holds bronze {final.bronze}, one file per partition"
    )
    assert other.returncode == 0 or "LeaseHeldError" in log
    assert final.lost(day) == 0 and final.duplicated == 0
    assert set(final.files_per_partition.values()) == {1} and not final.leftovers


def _garbage() -> tuple[bytes, int]:
    return os.urandom(64 * 1024), 1  # not gzip: one unreadable file, quarantined whole


def _empty() -> tuple[bytes, int]:
    return b"", 0


def _wrong_schema() -> tuple[bytes, int]:
    lines = [f'{{"id": {i}, "value": "x", "ts": 1777629600}}' for i in range(100)]
    return gzipped(["TxnID,Card,Amt", *lines]), 101


def _big() -> tuple[bytes, int]:
    lines, bad = transactions(DAY, BIG_ROWS, bad_share=0.1, seed=1)
    return gzipped(lines), bad


BAD_FILES = {
    "garbage bytes": (_garbage, "64 KiB of random bytes named .jsonl.gz"),
    "empty file": (_empty, "a 0-byte .jsonl.gz"),
    "wrong schema": (_wrong_schema, "100 JSON records of another schema and a CSV header"),
    "1M rows, 10% bad": (
        _big,
        f"{BIG_ROWS:,} transactions, every tenth bad (negative or non-numeric amount, no "
        "id, bad timestamp, duplicate id, cut JSON)",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_landing_file_is_quarantined_and_counted(kind, stack_env, spark, fault) -> None:
    make, description = BAD_FILES[kind]
    outcome = fault(
        f"landing file: {kind}",
        f"{description}, beside 500 good transactions of the day; ingest",
        "the run succeeds; bad records quarantined and counted; read = bronze + "
        "quarantined + duplicates; nothing lost",
    )
    good_lines, _ = transactions(DAY, 500, seed=2)
    good = len(good_lines)
    if kind == "1M rows, 10% bad":
        good = 0  # the big file is the day
    else:
        put_landing(DAY, "part-00000.jsonl.gz", gzipped(good_lines))
    body, bad = make()
    landed = BIG_ROWS if kind.startswith("1M") else good + bad
    good = landed - bad
    put_landing(DAY, "part-00001.jsonl.gz", body)
    started = time.monotonic()
    result = ingest(spark)
    seconds = time.monotonic() - started
    final = stored(spark, bronze.TRANSACTIONS, DAY)
    outcome.records_lost = final.lost(landed)
    outcome.records_duplicated = final.duplicated
    outcome.observed = (
        f"read {result['read']} = bronze {result['bronze']} + quarantined "
        f"{result['quarantined']} + duplicates {result['duplicates']} in {seconds:.0f} s; "
        f"reasons {result['quarantine_reasons']}"
    )
    assert result["read"] == landed
    assert result["read"] == result["bronze"] + result["quarantined"] + result["duplicates"]
    assert final.bronze == result["bronze"] == good and final.lost(landed) == 0
    assert final.duplicated == 0
