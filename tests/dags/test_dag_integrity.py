"""Every DAG in pipelines/ imports cleanly and follows the project's conventions."""

from __future__ import annotations

import pytest

from fraud_platform.dag_defaults import on_failure

pytestmark = pytest.mark.dags

EXPECTED_DAGS = {
    "00_smoke_test_stack",
    "feature_pipeline",
    "materialize_online",
    "training",
    "batch_inference",
    "drift_report",
    "consistency",
}


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_expected_dags_are_present(dagbag) -> None:
    assert set(dagbag.dag_ids) >= EXPECTED_DAGS


def test_every_dag_has_tags_owner_retries_and_docs(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner == "fraud-platform", f"{dag_id}.{task.task_id} owner"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_every_task_has_a_timeout_and_the_failure_callback(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            name = f"{dag_id}.{task.task_id}"
            assert task.execution_timeout is not None, f"{name} has no execution_timeout"
            assert task.execution_timeout.total_seconds() <= 3 * 3600, name
            assert on_failure in task.on_failure_callback, f"{name} has no failure callback"


def _outlets(dag) -> dict[str, set[str]]:
    return {task.task_id: {asset.name for asset in task.outlets} for task in dag.tasks}


def _asset_names(condition) -> set[str]:
    """The assets of a schedule's condition (an asset, or an all/any of conditions)."""
    if hasattr(condition, "objects"):
        return set().union(*(_asset_names(part) for part in condition.objects))
    return {condition.name}


def _scheduled_on(dag) -> set[str]:
    condition = getattr(dag.timetable, "asset_condition", None)
    return _asset_names(condition) if condition is not None else set()


def test_the_dags_are_chained_by_the_assets_they_produce(dagbag) -> None:
    silver = {
        "silver/card_transaction_features",
        "silver/merchant_risk_features",
        "silver/card_profile_features",
    }
    dags = dagbag.dags
    assert _outlets(dags["feature_pipeline"]) == {
        "ingest": set(),
        "compute": silver,
        "materialize": {"online_store"},
    }
    assert _outlets(dags["materialize_online"]) == {"materialize_incremental": {"online_store"}}
    assert _outlets(dags["training"]) == {"train_evaluate_register": {"registered_model"}}
    assert _outlets(dags["batch_inference"]) == {"score_days": {"predictions"}}
    assert _outlets(dags["drift_report"]) == {"report_days": {"drift_report"}}
    assert _outlets(dags["consistency"]) == {"report_days": {"consistency_report"}}
    # Consumers run when their inputs are updated, not at a guessed hour...
    assert _scheduled_on(dags["training"]) == silver
    assert _scheduled_on(dags["batch_inference"]) == silver
    assert _scheduled_on(dags["drift_report"]) == {"predictions"}
    assert _scheduled_on(dags["consistency"]) == silver
    # ... and every asset a DAG is scheduled on is produced by some task.
    produced = set().union(*(names for dag in dags.values() for names in _outlets(dag).values()))
    consumed = set().union(*(_scheduled_on(dag) for dag in dags.values()))
    assert consumed <= produced
    # The producers keep a time table, so that a date range can be backfilled.
    for dag_id in ("feature_pipeline", "materialize_online"):
        assert dags[dag_id].timetable.can_be_scheduled
        assert not _scheduled_on(dags[dag_id])
