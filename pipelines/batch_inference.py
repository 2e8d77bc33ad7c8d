"""
### Batch inference (when the feature tables are updated)

Scores each day's bronze transactions with the registered `champion` model, from the
point-in-time features of the offline store (each transaction against the state before
it), and publishes `predictions/event_date=<day>/predictions.parquet` on S3 in one write,
with the model version, the features' times and the scored feature vectors. Rerunning a
day replaces its predictions.

**Assets.** Scheduled on the silver feature tables: the days it scores are those their
events cover (a backfill of the feature pipeline folds into one run over its days). A
manual run scores the `first_day`..`last_day` params, else the day before its logical
date. It updates the `predictions` asset, which the drift report is scheduled on.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from fraud_platform.dag_defaults import (
    ASSETS,
    SILVER_TABLES,
    days_extra,
    days_of_run,
    default_args,
)

SILVER = [
    Asset(name=f"silver/{table}", uri=ASSETS[f"silver/{table}"], group="feature-tables")
    for table in SILVER_TABLES
]
PREDICTIONS = Asset(name="predictions", uri=ASSETS["predictions"], group="predictions")


@dag(
    dag_id="batch_inference",
    schedule=SILVER[0] & SILVER[1] & SILVER[2],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["inference", "batch", "xgboost"],
    default_args=default_args(
        execution_timeout=timedelta(hours=1), retries=2, retry_delay=timedelta(minutes=5)
    ),
    doc_md=__doc__,
    params={
        "first_day": Param(
            None, type=["null", "string"], format="date", description="First day of a manual range."
        ),
        "last_day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Last day of a manual range, included.",
        ),
    },
)
def batch_inference() -> None:
    @task(outlets=[PREDICTIONS])
    def score_days(*, outlet_events=None) -> list[dict]:
        from fraud_platform.run_metrics import reported
        from inference_pipeline.batch import score_day

        days = days_of_run(get_current_context())
        results = reported(
            "batch_inference",
            "score_days",
            lambda: [score_day(day) for day in days],
            counts=lambda rs: [("predictions", "scored", sum(r["rows"] for r in rs))],
        )
        outlet_events[PREDICTIONS].extra = {
            **days_extra(days[0], days[-1]),
            "model_versions": sorted({str(r["model_version"]) for r in results}),
        }
        return [
            {k: r[k] for k in ("day", "rows", "model_version", "declined", "reviewed", "key")}
            for r in results
        ]

    score_days()


batch_inference()
