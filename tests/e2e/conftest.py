"""The end-to-end suite runs the DAGs: it shares the DAG suite's Airflow fixtures."""

from tests.dags.conftest import airflow_db, dagbag  # noqa: F401 (fixtures for this suite)
