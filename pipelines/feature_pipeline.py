"""
### Feature pipeline (daily)

For the data interval's day: ingest the landing files of transactions, labels and reference
data into bronze (quarantine, deduplication, Great Expectations gate), compute the
point-in-time feature tables into silver (each through its gate), then materialize the
interval's newest values into the Redis online store (the Feast definitions must have been
applied: `feast apply` from CI, or `make feast-apply`). Every step publishes its
partitions atomically and replaces them on a rerun, so retries and backfills are safe.
A failing gate fails the task with the gate's summary; its results and data docs are kept
under `validation/` on S3.

**Assets.** `compute` updates the silver feature tables and `materialize` the online
store, each event carrying the days it covers (`first_day`, `last_day`): training and batch
scoring are scheduled on them. **Backfill** a range from the UI (Trigger > Backfill) or
`airflow backfill create --dag-id feature_pipeline --from-date 2026-06-01 --to-date
2026-06-07`, or in one run with the `first_day`/`last_day` params.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task

from fraud_platform.dag_defaults import ASSETS, SILVER_TABLES, days_extra, default_args

SILVER = [
    Asset(name=f"silver/{table}", uri=ASSETS[f"silver/{table}"], group="feature-tables")
    for table in SILVER_TABLES
]
ONLINE = Asset(name="online_store", uri=ASSETS["online_store"], group="online-store")


def _interval_days() -> tuple:
    """The days to process: the ``first_day``/``last_day`` params of a manual run (a
    backfill of a range in one run), else the data interval ``[start, end)``."""
    from datetime import date

    context = get_current_context()
    params = context["params"]
    if params.get("first_day") and params.get("last_day"):
        return date.fromisoformat(params["first_day"]), date.fromisoformat(params["last_day"])
    start, end = context["data_interval_start"], context["data_interval_end"]
    return start.date(), end.subtract(microseconds=1).date()


@dag(
    dag_id="feature_pipeline",
    # A run covers the day before it is scheduled: [data_interval_start, data_interval_end).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["feature", "spark", "great-expectations"],
    default_args=default_args(),
    doc_md=__doc__,
    params={
        "first_day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="First day of a manual range (default: the interval).",
        ),
        "last_day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Last day of a manual range, included.",
        ),
    },
)
def feature_pipeline() -> None:
    @task
    def ingest() -> dict:
        from feature_pipeline import pipeline
        from fraud_platform.run_metrics import reported

        first, last = _interval_days()
        result = reported(
            "feature_pipeline",
            "ingest",
            lambda: pipeline.ingest(first, last),
            counts=lambda r: [
                (feed, kind, value[kind])
                for feed, value in r["feeds"].items()
                for kind in ("read", "bronze", "quarantined", "duplicates")
            ],
        )
        return {
            name: {k: feed[k] for k in ("read", "bronze", "quarantined", "duplicates")}
            for name, feed in result["feeds"].items()
        }

    @task(outlets=SILVER)
    def compute(*, outlet_events=None) -> dict:
        from feature_pipeline import pipeline
        from fraud_platform.run_metrics import reported

        first, last = _interval_days()
        result = reported(
            "feature_pipeline",
            "compute",
            lambda: pipeline.compute(first, last),
            counts=lambda r: [(t, "written", n) for t, n in r["rows"].items()],
        )
        for asset in SILVER:
            outlet_events[asset].extra = days_extra(first, last)
        return result["rows"]

    @task(outlets=[ONLINE])
    def materialize(*, outlet_events=None) -> dict:
        from datetime import UTC, datetime, time, timedelta

        from feature_pipeline.materialize import materialize as load_online
        from fraud_platform.run_metrics import loaded_until, materialized_counts, reported

        first, last = _interval_days()
        start = datetime.combine(first, time.min, UTC)
        end = datetime.combine(last + timedelta(days=1), time.min, UTC)
        result = reported(
            "feature_pipeline",
            "materialize",
            lambda: load_online(end=end, start=start),
            counts=materialized_counts,
            loaded_until=loaded_until,
        )
        outlet_events[ONLINE].extra = {**days_extra(first, last), "end": result["end"]}
        return {k: result[k] for k in ("rows", "keys_written", "keys_per_s", "duration_s")}

    ingest() >> compute() >> materialize()


feature_pipeline()
