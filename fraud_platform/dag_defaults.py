"""Defaults shared by every Airflow DAG of the project.

Kept in the package (not in pipelines/) so that DAG files import it whether or not Airflow
has put the DAG folder on ``sys.path``. Importing it is cheap: no Airflow, no connections.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

OWNER = "fraud-platform"


def default_args(**overrides: Any) -> dict[str, Any]:
    """Owner and retries with exponential backoff; tasks are idempotent, so retrying is safe."""
    return {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        **overrides,
    }
