"""
### Online/offline consistency (when the feature tables are updated)

Joins each day of served feature vectors the API logged (`FRAUD_FEATURE_LOG=true`) with
the point-in-time vectors the offline store gives the same transactions, the ones training
sees, and reports the share of vectors that differ, per feature. Writes
`monitoring/consistency/date=<day>/result.json` on S3 and pushes the equal share as a
gauge. The task fails (and the failure callback alerts) when a day is below
`min_equal_share`; every day's result is written first. A day with nothing logged is
reported with `served` 0.

**Assets.** Scheduled on the silver feature tables (a day's vectors can be compared once its
transactions and labels are computed); updates `consistency_report`. A manual run covers
the `first_day`..`last_day` params, else the day before its logical date.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from fraud_platform.dag_defaults import ASSETS, SILVER_TABLES, days_extra, days_of_run, default_args

SILVER = [
    Asset(name=f"silver/{table}", uri=ASSETS[f"silver/{table}"], group="feature-tables")
    for table in SILVER_TABLES
]
CONSISTENCY = Asset(name="consistency_report", uri=ASSETS["consistency_report"], group="monitoring")


@dag(
    dag_id="consistency",
    schedule=SILVER[0] & SILVER[1] & SILVER[2],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["monitoring", "consistency", "feast"],
    # An inconsistency is not transient: retrying would only repeat it.
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
        "min_equal_share": Param(
            1.0, type="number", minimum=0, maximum=1, description="Share of equal vectors required."
        ),
    },
)
def consistency() -> None:
    @task(outlets=[CONSISTENCY])
    def report_days(*, outlet_events=None) -> list[dict]:
        from fraud_platform.run_metrics import reported
        from inference_pipeline.consistency import report_days as run_reports

        context = get_current_context()
        days = days_of_run(context)
        share = float(context["params"]["min_equal_share"])
        results = reported("consistency", "report_days", lambda: run_reports(days, share))
        outlet_events[CONSISTENCY].extra = days_extra(days[0], days[-1])
        keep = ("day", "served", "found_offline", "equal_share")
        return [{k: r.get(k) for k in keep} for r in results]

    report_days()


consistency()
