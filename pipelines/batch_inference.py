"""
### Batch inference (daily)

Scores the data interval's day of bronze transactions with the registered `champion`
model, from the point-in-time features of the offline store (each transaction against the
state before it), and publishes `predictions/event_date=<day>/predictions.parquet` on S3 in
one write, with the model version and the features' times. Rerunning a day replaces its
predictions. Runs after the day's feature pipeline (it reads the day's feature rows).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from fraud_platform.dag_defaults import default_args


@dag(
    dag_id="batch_inference",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["inference", "batch", "xgboost"],
    default_args=default_args(retries=2, retry_delay=timedelta(minutes=5)),
    doc_md=__doc__,
)
def batch_inference() -> None:
    @task
    def score_day() -> dict:
        from inference_pipeline.batch import score_day as score

        day = get_current_context()["data_interval_start"].date()
        result = score(day)
        return {k: result[k] for k in ("day", "rows", "model_version", "declined",
                                       "reviewed", "key")}

    score_day()


batch_inference()
