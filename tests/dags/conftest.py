"""Airflow for the DAG tests: the stack's AIRFLOW_HOME, a migrated metadata database, and
the DagBag of ``pipelines/``. Airflow is imported only after the environment is set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def airflow_db(stack_env: dict[str, str]) -> Path:
    """Migrate Airflow's metadata database (SQLite under .local) once; idempotent."""
    home = Path(stack_env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    db = home / "airflow.db"
    if not db.exists():
        subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
            check=True, capture_output=True,
        )
    return db


@pytest.fixture(scope="session")
def dagbag(airflow_db: Path):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import REPO_ROOT

    return DagBag(dag_folder=str(REPO_ROOT / "pipelines"))
