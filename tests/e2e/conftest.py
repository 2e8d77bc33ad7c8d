"""The end-to-end suite runs the DAGs: it shares the DAG suite's Airflow fixtures."""

from tests.dags.conftest import airflow_db  # noqa: F401 (a fixture of this suite)
