"""
### Materialize online (hourly)

Loads the newest feature values up to the end of the data interval from the S3 feature
tables into the Redis online store. Each run continues from where the last one stopped
(Feast's materialization intervals in the shared registry), re-reading a small overlap for
rows that landed late; later event times always win in Redis, so overlaps and retries are
harmless. Logs rows, keys written, keys per second and duration, pushes them (and the time
each feature view is loaded up to) to the Pushgateway, and updates the `online_store` asset.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, get_current_context, task

from fraud_platform.dag_defaults import ASSETS, default_args

ONLINE = Asset(name="online_store", uri=ASSETS["online_store"], group="online-store")


@dag(
    dag_id="materialize_online",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["feast", "redis", "online"],
    # Shorter than the hour between runs: a stuck load must not delay the next one.
    default_args=default_args(
        execution_timeout=timedelta(minutes=45), retries=3, retry_delay=timedelta(minutes=2)
    ),
    doc_md=__doc__,
)
def materialize_online() -> None:
    @task(outlets=[ONLINE])
    def materialize_incremental(*, outlet_events=None) -> dict:
        from feature_pipeline.materialize import materialize
        from fraud_platform.run_metrics import loaded_until, materialized_counts, reported

        end = get_current_context()["data_interval_end"]
        result = reported(
            "materialize_online",
            "materialize_incremental",
            lambda: materialize(end=end, overlap=timedelta(minutes=15)),
            counts=materialized_counts,
            loaded_until=loaded_until,
        )
        outlet_events[ONLINE].extra = {"end": result["end"]}
        return {k: result[k] for k in ("keys_written", "keys_per_s", "duration_s") if k in result}

    materialize_incremental()


materialize_online()
