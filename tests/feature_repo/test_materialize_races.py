"""Materialization racing other writers: two runs writing the same keys at once (the
hourly DAG and a backfill) and a ``feast apply`` made while a run is under way."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from feature_pipeline.feature_store import open_store
from feature_pipeline.online_writer import RedisFeatureWriter
from fraud_platform.redis_client import redis_client
from tests.feature_repo.conftest import AS_OF, DAY1, FeatureTables, redis_keys

pytestmark = pytest.mark.integration

VIEW = "merchant_risk_features"


@pytest.fixture(scope="module", autouse=True)
def _own_registry_and_keys(
    applied, feature_tables: FeatureTables, tmp_path_factory
) -> Iterator[None]:
    """These tests materialize and re-apply: they work on a copy of the suite's registry
    and delete the keys they load, so the suite's other tests still see a registry and a
    Redis that no run has touched (its parity test checks a first materialization)."""
    suite_registry = os.environ["FEAST_REGISTRY_PATH"].removeprefix("sqlite:///")
    copy = tmp_path_factory.mktemp("races-registry") / "registry.db"
    shutil.copy(suite_registry, copy)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEAST_REGISTRY_PATH", f"sqlite:///{copy}")
        yield
    with redis_client() as client:
        client.delete(*redis_keys(feature_tables, "fraud_detection"))


def rows(writer: RedisFeatureWriter, merchants: list[str], hours: list[int], marker: int):
    """One row per merchant at ``DAY1 + hours[i]``, every count feature = ``marker``."""
    import pyarrow as pa

    utc = pa.timestamp("us", tz="UTC")
    columns = {
        writer.key_column: pa.array(merchants),
        writer.timestamp_column: pa.array([DAY1 + timedelta(hours=h) for h in hours], utc),
    }
    for feature in writer.features:
        kind = pa.int64() if feature.kind.startswith("int") else pa.float64()
        columns[feature.column] = pa.array([marker] * len(merchants), kind)
    if writer.created_column:
        columns[writer.created_column] = pa.array([AS_OF] * len(merchants), utc)
    return pa.table(columns)


def test_two_concurrent_writers_of_interleaved_intervals_leave_the_newest_row(applied) -> None:
    store = open_store()
    writer = RedisFeatureWriter(store, store.get_feature_view(VIEW), batch_rows=64)
    merchants = [f"race-{uuid.uuid4().hex[:6]}-{i:05d}" for i in range(4000)]
    # The hourly run holds hours 0..23 of the day, the daily run 12..35: each one's row
    # is the newer for alternate keys.
    hourly = rows(writer, merchants, [23 if i % 2 else 11 for i in range(4000)], marker=1)
    daily = rows(writer, merchants, [12 if i % 2 else 35 for i in range(4000)], marker=2)
    results: dict[str, dict] = {}
    go = threading.Barrier(2)

    def run(name: str, table) -> None:
        go.wait()
        results[name] = writer.write(table)

    threads = [
        threading.Thread(target=run, args=args) for args in (("hourly", hourly), ("daily", daily))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        online = store.get_online_features(
            features=[f"{VIEW}:merchant_txn_count_1d"],
            entity_rows=[{"merchant_id": m} for m in merchants],
        ).to_dict()
        expected = [1 if i % 2 else 2 for i in range(4000)]
        wrong = [
            m
            for m, got, want in zip(
                merchants, online["merchant_txn_count_1d"], expected, strict=True
            )
            if got != want
        ]
        assert wrong == [], f"{len(wrong)} keys hold the older row"
        # Every key was written by the newer run, and skipped or overwritten by the other.
        written = results["hourly"]["keys_written"] + results["daily"]["keys_written"]
        assert 4000 <= written <= 8000
    finally:
        keys = writer.redis_keys(hourly)
        with redis_client() as client:
            client.delete(*[keys[0][i, : keys[1][i]].tobytes() for i in range(4000)])


def test_a_failed_run_does_not_revert_a_feast_apply_made_while_it_ran(applied, monkeypatch) -> None:
    from feast import FeatureViewState

    import feature_pipeline.materialize as materialization

    original = open_store().get_feature_view(VIEW).description
    # A view materialized before is AVAILABLE_ONLINE: a run moves it to MATERIALIZING and,
    # when it fails, back, which is where a copy read at its start would be written.
    materialization.materialize(AS_OF, DAY1, feature_views=[VIEW])

    def apply_meanwhile_then_fail(*args, **kwargs):
        other = open_store()
        view = other.get_feature_view(VIEW)
        view.description = "changed by a feast apply during the run"
        other.apply([view])
        raise OSError("the S3 server went away mid-run")

    monkeypatch.setattr(materialization, "read_latest", apply_meanwhile_then_fail)
    try:
        with pytest.raises(OSError, match="went away"):
            materialization.materialize(AS_OF, DAY1, feature_views=[VIEW])
        store = open_store()
        after = store.registry.get_feature_view(VIEW, store.project, allow_cache=False)
        assert after.description == "changed by a feast apply during the run"
        assert after.state != FeatureViewState.MATERIALIZING
    finally:
        store = open_store()
        view = store.get_feature_view(VIEW)
        view.description = original
        store.apply([view])
