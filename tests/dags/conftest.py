"""Airflow for the DAG tests: the stack's AIRFLOW_HOME, a migrated metadata database, and
the DagBag of ``pipelines/``. Airflow is imported only after the environment is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="session")
def airflow_db(stack_env: dict[str, str]) -> Path:
    from fraud_platform.airflow_local import ensure_airflow_db

    return ensure_airflow_db()


@pytest.fixture(scope="session")
def dagbag(airflow_db: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "pipelines"))
