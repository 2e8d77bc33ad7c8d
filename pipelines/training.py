"""
### Training (when the feature tables are updated)

Builds a point-in-time training set from Feast (`fraud_detection_v1`, only labels known at
the run's cutoff), trains XGBoost, evaluates it beside the rule baseline on the latest test
week, logs everything to MLflow and registers the version; the `champion` alias moves only
if the new version beats the current champion on the same test window (otherwise it
becomes `challenger`). Windows, counted back from the cutoff: test = the last `test_days`
days, then a gap equal to the label delay (labels of those days are not known yet at
training time), then `train_days` days of training data.

**Assets.** Scheduled on the silver feature tables: it runs once all three have been
updated, with the cutoff the day after the newest day their events cover (a manual run:
the end of its data interval). It updates the `registered_model` asset with the version
and the alias it got.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from fraud_platform.dag_defaults import ASSETS, SILVER_TABLES, days_of_run, default_args

SILVER = [
    Asset(name=f"silver/{table}", uri=ASSETS[f"silver/{table}"], group="feature-tables")
    for table in SILVER_TABLES
]
MODEL = Asset(name="registered_model", uri=ASSETS["registered_model"], group="model")


@dag(
    dag_id="training",
    schedule=SILVER[0] & SILVER[1] & SILVER[2],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["training", "xgboost", "mlflow"],
    default_args=default_args(
        execution_timeout=timedelta(hours=3), retries=1, retry_delay=timedelta(minutes=10)
    ),
    doc_md=__doc__,
    params={
        "train_days": Param(28, type="integer", minimum=7, description="Days of training data."),
        "test_days": Param(7, type="integer", minimum=1, description="Days of test data."),
        "label_delay_days": Param(
            7, type="integer", minimum=0, description="Gap between training and test windows."
        ),
    },
)
def training() -> None:
    @task(outlets=[MODEL])
    def train_evaluate_register(*, outlet_events=None) -> dict:
        from fraud_platform.run_metrics import reported
        from training_pipeline import pipeline

        context = get_current_context()
        params = context["params"]
        # The newest day the run covers is the last day before the cutoff.
        days = days_of_run(context)
        result = reported(
            "training",
            "train_evaluate_register",
            lambda: pipeline.run_until(
                days[-1],
                params["test_days"],
                timedelta(days=params["label_delay_days"]),
                params["train_days"],
            ),
        )
        outlet_events[MODEL].extra = {
            k: str(result[k]) for k in ("version", "alias") if k in result
        }
        keep = ("version", "alias", "champion_version", "metrics")
        return {k: result[k] for k in keep if k in result}

    train_evaluate_register()


training()
