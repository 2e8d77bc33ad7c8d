"""Airflow on the local stack: the metadata database under AIRFLOW_HOME, made on demand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def ensure_airflow_db() -> Path:
    """Run ``airflow db migrate`` once for the local AIRFLOW_HOME (SQLite); idempotent.

    Returns:
        The path of the SQLite database.
    """
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    db = home / "airflow.db"
    if not db.exists():
        subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
            check=True,
            capture_output=True,
        )
    return db
