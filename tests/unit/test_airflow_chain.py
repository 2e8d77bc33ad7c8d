"""The chain of DAG runs that ``make airflow-chain`` triggers for a day."""

from datetime import UTC, date, datetime

from fraud_demo.airflow_chain import chain


def test_the_chain_processes_the_day_in_pipeline_order() -> None:
    runs = chain(date(2026, 11, 13), {"train_days": 7})
    assert [run.dag_id for run in runs] == [
        "00_smoke_test_stack",
        "feature_pipeline",
        "materialize_online",
        "training",
        "batch_inference",
    ]
    # Every run is logically at the day's end, so each daily DAG's interval is the day.
    assert {run.logical for run in runs} == {datetime(2026, 11, 14, tzinfo=UTC)}


def test_training_is_cut_off_at_the_day_end_not_at_the_sunday_before() -> None:
    runs = {run.dag_id: run for run in chain(date(2026, 11, 13), {"train_days": 7})}
    training = runs.pop("training")
    assert training.conf == {"train_days": 7}
    assert training.interval == (
        datetime(2026, 11, 7, tzinfo=UTC),
        datetime(2026, 11, 14, tzinfo=UTC),
    )
    assert [run.interval for run in runs.values()] == [None] * 4
