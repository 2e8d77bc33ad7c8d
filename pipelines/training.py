"""
### Training (weekly)

Builds a point-in-time training set from Feast (`fraud_detection_v1`, only labels known at
the run's cutoff), trains XGBoost, evaluates it beside the rule baseline on the latest test
week, logs everything to MLflow and registers the version; the `champion` alias moves only
if the new version beats the current champion on the same test window (otherwise it
becomes `challenger`). Windows, counted back from the data interval's end (the cutoff):
test = the last `test_days` days, then a gap equal to the label delay (labels of those days
are not known yet at training time), then `train_days` days of training data.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from fraud_platform.dag_defaults import default_args


@dag(
    dag_id="training",
    schedule=CronDataIntervalTimetable("@weekly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["training", "xgboost", "mlflow"],
    default_args=default_args(retries=1, retry_delay=timedelta(minutes=10)),
    doc_md=__doc__,
    params={
        "train_days": Param(28, type="integer", minimum=7, description="Days of training data."),
        "test_days": Param(7, type="integer", minimum=1, description="Days of test data."),
        "label_delay_days": Param(7, type="integer", minimum=0,
                                  description="Gap between training and test windows."),
    },
)
def training() -> None:
    @task
    def train_evaluate_register() -> dict:
        from training_pipeline import pipeline

        context = get_current_context()
        params = context["params"]
        cutoff = context["data_interval_end"].date()
        test_end = cutoff - timedelta(days=1)
        test_start = test_end - timedelta(days=params["test_days"] - 1)
        delay = timedelta(days=params["label_delay_days"])
        train_end = test_start - delay - timedelta(days=1)
        train_start = train_end - timedelta(days=params["train_days"] - 1)
        result = pipeline.run(train_start, train_end, test_start, test_end, label_delay=delay)
        keep = ("version", "alias", "champion_version", "metrics")
        return {k: result[k] for k in keep if k in result}

    train_evaluate_register()


training()
