"""Every DAG in pipelines/ imports cleanly and follows the project's conventions."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.dags

EXPECTED_DAGS = {"00_smoke_test_stack", "feature_pipeline", "materialize_online", "training",
                 "batch_inference"}


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
