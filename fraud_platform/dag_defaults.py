"""Defaults shared by every Airflow DAG of the project: retries, timeouts, the failure
callback, the assets that chain the DAGs, and the days an asset-triggered run covers.

Kept in the package (not in pipelines/) so that DAG files import it whether or not Airflow
has put the DAG folder on ``sys.path``. It imports no Airflow (the layering rule): assets
are described here by name and URI, and the DAG files build ``airflow.sdk.Asset`` from
them; the callback reads only the plain context mapping Airflow hands it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

OWNER = "fraud-platform"
log = logging.getLogger(__name__)

# The assets that chain the DAGs, by the data they stand for (name -> URI). The URIs are
# logical names in the layout's zones (bucket and prefix differ by environment, the data's
# identity does not). Each event's ``extra`` carries the days it covers.
SILVER_TABLES = ("card_transaction_features", "merchant_risk_features", "card_profile_features")
ASSETS: dict[str, str] = {
    **{f"silver/{table}": f"fraud://silver/{table}" for table in SILVER_TABLES},
    "online_store": "fraud://online/redis",
    "registered_model": "fraud://mlflow/fraud-detector",
    "predictions": "fraud://predictions",
    "drift_report": "fraud://monitoring/drift",
    "consistency_report": "fraud://monitoring/consistency",
}


def on_failure(context: Mapping[str, Any]) -> None:
    """Failure callback: one log line with the run's context, and a failure timestamp
    pushed to the Pushgateway (when configured) for the "pipeline failed" alert."""
    from fraud_platform.run_metrics import push_failure

    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    fields = {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": context.get("run_id"),
        "logical_date": str(context.get("logical_date")),
        "try_number": getattr(ti, "try_number", None),
        "exception": repr(context.get("exception")),
        "log_url": getattr(ti, "log_url", None),
    }
    log.error(
        "task failed: %s",
        " ".join(f"{k}={v}" for k, v in fields.items()),
        extra={"run_context": fields},
    )
    push_failure(str(dag_id), task_id)


def default_args(
    execution_timeout: timedelta = timedelta(hours=2), **overrides: Any
) -> dict[str, Any]:
    """Owner, retries with exponential backoff (tasks are idempotent, so retrying is safe),
    a timeout (a hung Spark job must not hold a pool slot forever) and the failure
    callback."""
    return {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": execution_timeout,
        "on_failure_callback": on_failure,
        **overrides,
    }


def days_extra(first: date, last: date) -> dict[str, str]:
    """The ``extra`` of an asset event that covers ``[first, last]``."""
    return {"first_day": first.isoformat(), "last_day": last.isoformat()}


def days_of_run(context: Mapping[str, Any]) -> list[date]:
    """The days an asset-triggered (or manual) run covers, from its task context."""
    extras = [
        event.extra for events in context["triggering_asset_events"].values() for event in events
    ]
    manual = context.get("data_interval_end") or context.get("logical_date")
    fallback = manual.date() - timedelta(days=1) if manual else None
    return days_to_process(extras, context.get("params") or {}, fallback)


def days_to_process(
    extras: Iterable[Mapping[str, Any]], params: Mapping[str, Any], fallback: date | None
) -> list[date]:
    """The days a run covers, in order.

    Airflow may fold several upstream events into one run (a backfill of a range emits one
    per day): the run covers the union of their days. A manual run names its range in the
    ``first_day``/``last_day`` params instead; with neither, ``fallback`` (the day before a
    manual run's logical date).
    """
    ranges = [
        (e["first_day"], e["last_day"]) for e in extras if e.get("first_day") and e.get("last_day")
    ]
    if params.get("first_day") and params.get("last_day"):
        ranges = [(params["first_day"], params["last_day"])]
    days: set[date] = set()
    for first, last in ranges:
        day, end = date.fromisoformat(str(first)), date.fromisoformat(str(last))
        while day <= end:
            days.add(day)
            day += timedelta(days=1)
    if not days and fallback is not None:
        days.add(fallback)
    return sorted(days)
