"""
### Drift report (when the day's predictions are published)

Compares each scored day (its feature vectors and scores, from batch scoring's
`predictions/`) with the champion's training set: per-feature drift (Evidently), the score
distribution, the share of missing features and, once labels have arrived, average
precision and recall at the review threshold. Writes `monitoring/drift/event_date=<day>/`
(an HTML report and a metrics table) on S3 and logs both to MLflow against the model
version. The task fails (and the failure callback alerts) when a threshold of
`FRAUD_DRIFT_*` is crossed; the report is written first.

**Assets.** Scheduled on `predictions`; updates `drift_report`. A manual run covers the
`first_day`..`last_day` params, else the day before its logical date.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from fraud_platform.dag_defaults import ASSETS, days_extra, days_of_run, default_args

PREDICTIONS = Asset(name="predictions", uri=ASSETS["predictions"], group="predictions")
DRIFT = Asset(name="drift_report", uri=ASSETS["drift_report"], group="monitoring")


@dag(
    dag_id="drift_report",
    schedule=[PREDICTIONS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["monitoring", "drift", "evidently"],
    # A drift alert is not transient: retrying would only repeat it.
    default_args=default_args(execution_timeout=timedelta(minutes=30), retries=1),
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
def drift_report() -> None:
    @task(outlets=[DRIFT])
    def report_days(*, outlet_events=None) -> list[dict]:
        from fraud_platform.run_metrics import reported
        from inference_pipeline.drift_job import report_days as run_reports

        days = days_of_run(get_current_context())
        summaries = reported("drift_report", "report_days", lambda: run_reports(days))
        outlet_events[DRIFT].extra = days_extra(days[0], days[-1])
        return summaries

    report_days()


drift_report()
