"""
### Materialize online (hourly)

Loads the newest feature values up to the end of the data interval from the S3 feature
tables into the Redis online store. Each run continues from where the last one stopped
(Feast's materialization intervals in the shared registry), re-reading a small overlap for
rows that landed late; later event times always win in Redis, so overlaps and retries are
harmless. Logs rows, keys written, keys per second and duration.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from fraud_platform.dag_defaults import default_args


@dag(
    dag_id="materialize_online",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["feast", "redis", "online"],
    default_args=default_args(retries=3, retry_delay=timedelta(minutes=2)),
    doc_md=__doc__,
)
def materialize_online() -> None:
    @task
    def materialize_incremental() -> dict:
        from feature_pipeline.materialize import materialize

        end = get_current_context()["data_interval_end"]
        result = materialize(end=end, overlap=timedelta(minutes=15))
        return {k: result[k] for k in ("keys_written", "keys_per_s", "duration_s") if k in result}

    materialize_incremental()


materialize_online()
