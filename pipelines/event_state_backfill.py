"""
### Event state backfill (on demand)

Rebuilds the online event state (the card and merchant windows that every scored
transaction and label updates) from the offline store: the bronze transactions of the
31 days before `until` and the fraud labels known in them, applied with the same per-key
scripts as serving. Run it on a cold or restored Redis before traffic. Idempotent:
applying an event twice changes nothing, so it may overlap live traffic.

**Repair.** With `cards` or `merchants` (the `to_repair` keys of a consistency report), only
their events are applied again, which adds those the live path missed; with `reset`, their
keys are deleted first, which also drops events the offline store does not have.

`until` defaults to the run's logical date. The batch-natured views (the card profile) stay
with `materialize_online`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from fraud_platform.dag_defaults import default_args


@dag(
    dag_id="event_state_backfill",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["redis", "online", "backfill"],
    default_args=default_args(retries=2, execution_timeout=timedelta(hours=2)),
    params={
        "until": Param(
            "", type="string", description="ISO instant (UTC); empty: the logical date."
        ),
        "cards": Param([], type="array", description="Repair only these cards."),
        "merchants": Param([], type="array", description="Repair only these merchants."),
        "reset": Param(False, type="boolean", description="Repair: delete the keys first."),
    },
    doc_md=__doc__,
)
def event_state_backfill() -> None:
    @task
    def backfill_event_state() -> dict:
        from datetime import datetime

        from feature_pipeline.event_backfill import rebuild

        context = get_current_context()
        until = context["params"].get("until")
        instant = (
            datetime.fromisoformat(until)
            if until
            else context["logical_date"] or context["data_interval_end"]
        )
        if instant.tzinfo is None:
            instant = pendulum.instance(instant, tz="UTC")
        params = context["params"]
        return rebuild(instant, params["cards"], params["merchants"], params["reset"])

    backfill_event_state()


event_state_backfill()
