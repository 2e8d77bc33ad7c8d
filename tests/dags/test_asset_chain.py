"""The DAG chain driven by assets, through Airflow's own metadata database.

``dag.test()`` runs each DAG for real (Airflow's task runner, outlets, asset events, the
scheduler's queue of asset-triggered DAGs); the pipeline calls inside the tasks are
replaced by recorders, because this test is about orchestration: which DAG runs, for
which days, on which events. The calls themselves are tested with the real stack in
tests/integration, tests/inference and test_feature_pipeline_dag.py (a real run of
``feature_pipeline`` whose events that test checks too).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

import pendulum
import pytest

pytestmark = pytest.mark.dags


class Event(NamedTuple):
    id: int
    asset: str
    extra: dict


def _events(names: set[str], since: datetime) -> list[Event]:
    """Asset events of ``names`` recorded since ``since``, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.id, AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name.in_(names), AssetEvent.timestamp >= since)
            .order_by(AssetEvent.timestamp)
        ).all()
    return [Event(*row) for row in rows]


def _queued(dag_id: str) -> set[str]:
    """The assets whose update queued ``dag_id`` (the scheduler's asset queue)."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return set(
            session.scalars(
                select(AssetModel.name)
                .join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
                .where(AssetDagRunQueue.target_dag_id == dag_id)
            ).all()
        )


def _consume_like_the_scheduler(monkeypatch, names: set[str], since: datetime) -> None:
    """Make the next ``dag.test()`` run consume the queued events of ``names``, as the
    scheduler attaches them to an asset-triggered run (``dag.test`` makes manual runs)."""
    from airflow.models import dagrun
    from airflow.models.asset import AssetEvent

    original = dagrun.get_or_create_dagrun

    def with_events(**kwargs):
        run = original(**kwargs)
        session = kwargs["session"]
        ids = [event.id for event in _events(names, since)]
        run.consumed_asset_events.extend(session.get(AssetEvent, i) for i in ids)
        session.commit()
        return run

    monkeypatch.setattr(dagrun, "get_or_create_dagrun", with_events)


@pytest.fixture
def dagbag(airflow_db):
    """DAGs parsed for this test alone: ``dag.test(run_conf=...)`` leaves the conf in the
    DAG object's params, where the shared bag's later runs would find it."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import REPO_ROOT

    return DagBag(dag_folder=str(REPO_ROOT / "pipelines"))


@pytest.fixture
def consumers_unpaused(dagbag):
    """The consumer DAGs in the metadata database and unpaused: Airflow queues runs only
    for unpaused DAGs (no scheduler runs here, so nothing else starts). The DAG rows name
    their bundle, so the bundle rows go in first (a fresh database has none until some
    ``dag.test()`` or DAG processor writes them)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(dagbag, "dags-folder", None)
    consumers = ["training", "batch_inference", "drift_report", "consistency"]

    def pause(paused: bool) -> None:
        with create_session() as session:
            session.execute(
                update(DagModel).where(DagModel.dag_id.in_(consumers)).values(is_paused=paused)
            )

    pause(False)
    yield
    pause(True)


def _record(monkeypatch, module, name: str, result) -> list:
    calls: list = []

    def recorder(*args, **kwargs):
        calls.append(args or kwargs)
        return result(*args, **kwargs) if callable(result) else result

    monkeypatch.setattr(module, name, recorder)
    return calls


def test_a_backfilled_range_flows_through_scoring_and_the_drift_report(
    dagbag, consumers_unpaused, monkeypatch
) -> None:
    import feature_pipeline.materialize
    import feature_pipeline.pipeline
    import inference_pipeline.batch
    import inference_pipeline.consistency
    import inference_pipeline.drift_job

    silver = {
        "silver/card_transaction_features",
        "silver/merchant_risk_features",
        "silver/card_profile_features",
    }
    started = pendulum.now("UTC")
    _record(monkeypatch, feature_pipeline.pipeline, "ingest", {"feeds": {}})
    computed = _record(
        monkeypatch,
        feature_pipeline.pipeline,
        "compute",
        {"rows": {"card_transaction_features": 10}},
    )
    _record(
        monkeypatch,
        feature_pipeline.materialize,
        "materialize",
        {
            "end": "2026-06-04T00:00:00+00:00",
            "views": {},
            "rows": 0,
            "keys_written": 0,
            "keys_per_s": None,
            "duration_s": 0.0,
        },
    )

    # A backfill of two days in one run of the producer (its first_day/last_day params).
    producer = dagbag.get_dag("feature_pipeline").test(
        logical_date=pendulum.datetime(2026, 6, 4, tz="UTC"),
        run_conf={"first_day": "2026-06-02", "last_day": "2026-06-03"},
    )
    assert str(producer.state) == "success"
    assert computed == [(date(2026, 6, 2), date(2026, 6, 3))]
    events = _events(silver, started)
    assert {e.asset for e in events} == silver
    assert {(e.extra["first_day"], e.extra["last_day"]) for e in events} == {
        ("2026-06-02", "2026-06-03")
    }
    [online] = _events({"online_store"}, started)
    assert online.extra["end"] == "2026-06-04T00:00:00+00:00"
    # Both consumers are now due: the scheduler's queue holds every asset they need.
    assert _queued("batch_inference") == silver
    assert _queued("training") == silver
    assert _queued("consistency") == silver

    # Batch scoring, triggered by those events, scores each day they cover.
    scored = _record(
        monkeypatch,
        inference_pipeline.batch,
        "score_day",
        lambda day: {
            "day": day.isoformat(),
            "rows": 5,
            "model_version": "3",
            "declined": 0,
            "reviewed": 1,
            "key": f"predictions/{day}",
        },
    )
    _consume_like_the_scheduler(monkeypatch, silver, started)
    scoring = dagbag.get_dag("batch_inference").test(logical_date=None)
    assert str(scoring.state) == "success"
    assert scored == [(date(2026, 6, 2),), (date(2026, 6, 3),)]
    [predictions] = _events({"predictions"}, started)
    assert predictions.extra == {
        "first_day": "2026-06-02",
        "last_day": "2026-06-03",
        "model_versions": ["3"],
    }
    assert _queued("drift_report") == {"predictions"}

    # The drift report follows the predictions, over the same days.
    reported = _record(
        monkeypatch,
        inference_pipeline.drift_job,
        "report_days",
        lambda days: [{"day": d.isoformat(), "alerts": []} for d in days],
    )
    _consume_like_the_scheduler(monkeypatch, {"predictions"}, started)
    drift = dagbag.get_dag("drift_report").test(logical_date=None)
    assert str(drift.state) == "success"
    assert reported == [([date(2026, 6, 2), date(2026, 6, 3)],)]
    [report] = _events({"drift_report"}, started)
    assert report.extra == {"first_day": "2026-06-02", "last_day": "2026-06-03"}

    # The consistency report follows the feature tables, over the days they cover.
    compared = _record(
        monkeypatch,
        inference_pipeline.consistency,
        "report_days",
        lambda days, share: [{"day": d.isoformat(), "served": 0} for d in days],
    )
    _consume_like_the_scheduler(monkeypatch, silver, started)
    checked = dagbag.get_dag("consistency").test(logical_date=None)
    assert str(checked.state) == "success"
    assert compared == [([date(2026, 6, 2), date(2026, 6, 3)], 1.0)]
    [consistency] = _events({"consistency_report"}, started)
    assert consistency.extra == {"first_day": "2026-06-02", "last_day": "2026-06-03"}
