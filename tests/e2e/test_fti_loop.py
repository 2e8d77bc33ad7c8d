"""The whole FTI loop on the real stack, through the project's Airflow DAGs (``dag.test()``).

A backfill of the feature pipeline, then two consecutive daily intervals, each followed by
batch inference, with the weekly training in between; then the scoring API on the trained
champion, fed the transactions of a held-back day that no pipeline has seen. Every stage is
checked on values: reconciled counts, new partitions, Redis updated, parity of online and
offline vectors, a model that beats the rule, predictions written, planted frauds above
normal transactions of the same cards.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np
import pendulum
import pytest

from fraud_platform.devstack.services import free_port
from tests.conftest import REPO_ROOT
from tests.inference.conftest import API_KEY, start_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.dags]

FIRST = date(2026, 4, 3)
BACKFILL_END = date(2026, 4, 17)
INTERVALS = (date(2026, 4, 18), date(2026, 4, 19))  # 2026-04-19 is a Sunday: the weekly cutoff
HELD_BACK = date(2026, 4, 20)
LABELS_UNTIL = date(2026, 4, 27)  # a week on: the test window's genuine labels have arrived
REDIS_DB = 6


def midnight(day: date) -> pendulum.DateTime:
    return pendulum.datetime(day.year, day.month, day.day, tz="UTC")


def run(dag_id: str, logical: date, conf: dict | None = None) -> dict[str, Any]:
    """One ``dag.test()`` run at ``logical`` midnight; each task's XCom value."""
    from fraud_demo.demo import run_dag

    return run_dag(dag_id, REPO_ROOT / "pipelines", conf, midnight(logical))


def card_redis_state(card_id: str) -> float | None:
    """The card's ``last_txn_timestamp`` as Redis holds it (via Feast's online read)."""
    from fraud_platform.feast_repo import open_store

    values = (
        open_store()
        .get_online_features(
            features=["card_transaction_features:last_txn_timestamp"],
            entity_rows=[{"card_id": card_id}],
        )
        .to_dict()
    )
    return values["last_txn_timestamp"][0]


@pytest.fixture(scope="module")
def loop(stack_env, airflow_db, tmp_path_factory) -> Iterator[dict[str, Any]]:
    from feature_pipeline import pipeline
    from feature_pipeline.feature_store import apply_definitions
    from fraud_platform.redis_client import redis_client

    folder = tmp_path_factory.mktemp("e2e")
    env = {
        "FRAUD_S3_PREFIX": f"{stack_env['FRAUD_S3_PREFIX']}/e2e",
        "FEAST_REGISTRY_PATH": f"sqlite:///{folder / 'registry.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "FRAUD_MODEL_NAME": f"fraud-detector-e2e-{uuid.uuid4().hex[:6]}",
        "FRAUD_MLFLOW_EXPERIMENT": f"fraud-detector-e2e-{uuid.uuid4().hex[:6]}",
        "REDIS_CONNECTION_STRING": stack_env["REDIS_CONNECTION_STRING"] + f",db={REDIS_DB}",
    }
    results: dict[str, Any] = {"env": env}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        with redis_client() as client:
            client.flushdb()
        results["generated"] = pipeline.generate(
            FIRST,
            (HELD_BACK - FIRST).days + 1,
            n_cards=400,
            n_merchants=200,
            fraud_rate=0.03,
            seed=5,
        )
        apply_definitions(check=False)
        results["backfill"] = run(
            "feature_pipeline",
            BACKFILL_END + timedelta(days=1),
            {"first_day": FIRST.isoformat(), "last_day": BACKFILL_END.isoformat()},
        )
        day1, day2 = INTERVALS
        from feature_pipeline.generate.landing import read_landing_day

        last_card = read_landing_day(day1)[0].sort_values("event_timestamp").iloc[-1]
        results["card"] = {
            "id": last_card.card_id,
            "before": card_redis_state(last_card.card_id),
            "event": last_card.event_timestamp.timestamp(),
        }
        results["interval_1"] = run("feature_pipeline", day1 + timedelta(days=1))
        results["card"]["after_1"] = card_redis_state(last_card.card_id)
        results["late_labels"] = pipeline.ingest(day2, LABELS_UNTIL, feeds=["labels"])
        results["training"] = run(
            "training", day2, {"train_days": 7, "test_days": 2, "label_delay_days": 7}
        )
        results["batch_1"] = run("batch_inference", day1 + timedelta(days=1))
        results["interval_2"] = run("feature_pipeline", day2 + timedelta(days=1))
        results["batch_2"] = run("batch_inference", day2 + timedelta(days=1))
        from feature_pipeline.parity import check_parity

        results["parity"] = check_parity(sample_size=100)
        from datetime import UTC, datetime

        from feature_pipeline.event_backfill import backfill

        # The event-fed views are served from the event state: rebuilt as of the held-back
        # day, which the API then scores.
        results["event_backfill"] = backfill(
            datetime.combine(HELD_BACK, datetime.min.time(), tzinfo=UTC)
        )
        port = free_port()
        api = start_api({**os.environ, "FRAUD_API_KEY": API_KEY}, port, folder / "api.log")
        try:
            results["api"] = score_held_back(f"http://127.0.0.1:{port}")
        finally:
            os.killpg(api.pid, signal.SIGTERM)
            api.wait(20)
        from benchmarks.staleness import run_replay

        # The held-back day again, in time order through /v1/score from a rebuilt state,
        # its labels through /v1/labels: served vectors against the point-in-time ones.
        results["replay"] = run_replay(HELD_BACK, "fraud_detection_v1", modes=("in_order",))
        yield results
        with redis_client() as client:
            client.flushdb()


def score_held_back(url: str) -> dict[str, Any]:
    """Every transaction of the held-back day through ``/v1/score/batch`` and its labels.
    Latency is measured by benchmarks/serving.py, not asserted here."""
    import httpx

    from feature_pipeline.generate.landing import read_landing_day
    from inference_pipeline.schemas import request_body

    transactions, labels = read_landing_day(HELD_BACK)
    fraud_ids = set(labels.loc[labels["is_fraud"] == 1, "transaction_id"])
    bodies = [request_body(row) for row in transactions.itertuples()]
    scores = []
    with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=30) as client:
        for start in range(0, len(bodies), 500):
            response = client.post(
                "/v1/score/batch", json={"transactions": bodies[start : start + 500]}
            )
            assert response.status_code == 200, response.text
            scores += response.json()["scores"]
    frame = transactions.assign(
        probability=[s["fraud_probability"] for s in scores],
        card_unknown=[s["card_unknown"] for s in scores],
        is_fraud=transactions["transaction_id"].isin(fraud_ids).astype(int),
    )
    return {"frame": frame}


def test_every_stage_reconciles_its_counts(loop) -> None:
    for run_name in ("backfill", "interval_1", "interval_2"):
        for feed, counts in loop[run_name]["ingest"].items():
            assert (
                counts["read"] == counts["bronze"] + counts["quarantined"] + counts["duplicates"]
            ), (run_name, feed)
        transactions = loop[run_name]["ingest"]["transactions"]["bronze"]
        card_rows = loop[run_name]["compute"]["card_transaction_features"]
        # One feature row per card and instant: simultaneous transactions share one.
        assert 0.99 * transactions <= card_rows <= transactions
    generated = loop["generated"]["rows_written"]["transactions"]
    ingested = sum(
        loop[r]["ingest"]["transactions"]["read"] for r in ("backfill", "interval_1", "interval_2")
    )
    held_back = len(loop["api"]["frame"])
    assert ingested + held_back == generated


def test_each_interval_publishes_its_day_and_updates_redis(loop) -> None:
    for run_name, day in zip(("interval_1", "interval_2"), INTERVALS, strict=True):
        assert loop[run_name]["ingest"]["transactions"]["bronze"] > 0
        assert loop[run_name]["materialize"]["keys_written"] > 0, (run_name, day)
    card = loop["card"]
    # The card's last transaction of the first interval reached Redis with that interval:
    # its row is the state before it, whose last transaction is the card's previous one.
    assert card["after_1"] is not None and card["after_1"] < card["event"]
    assert card["before"] is None or card["before"] <= card["after_1"]


def test_online_and_offline_vectors_are_equal(loop) -> None:
    parity = loop["parity"]
    assert parity["ok"], parity
    assert parity["rows_compared"] >= 50


def test_the_registered_champion_beats_the_rule(loop) -> None:
    trained = loop["training"]["train_evaluate_register"]
    assert trained["alias"] == "champion" and trained["version"] == "1"
    metrics = trained["metrics"]
    assert metrics["xgboost"]["average_precision"] > 2 * metrics["amount_rule"]["average_precision"]


def test_batch_inference_writes_each_days_predictions(loop) -> None:
    from inference_pipeline.batch import read_predictions

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRAUD_S3_PREFIX", loop["env"]["FRAUD_S3_PREFIX"])
        for run_name, ingest_run, day in (
            ("batch_1", "interval_1", INTERVALS[0]),
            ("batch_2", "interval_2", INTERVALS[1]),
        ):
            [summary] = loop[run_name]["score_days"]
            predictions = read_predictions(day)
            assert (
                summary["rows"]
                == len(predictions)
                == loop[ingest_run]["ingest"]["transactions"]["bronze"]
            )
            assert predictions["transaction_id"].is_unique
            assert set(predictions["model_version"]) == {"1"}
            assert predictions["fraud_probability"].between(0, 1).all()
            assert (predictions["features_as_of"] < predictions["transaction_timestamp"]).all()


def test_planted_frauds_score_above_normal_transactions_of_the_same_cards(loop) -> None:
    from sklearn.metrics import average_precision_score

    frame = loop["api"]["frame"]
    assert not frame["card_unknown"].any()
    base_rate = frame["is_fraud"].mean()
    assert 0 < base_rate < 0.2
    assert average_precision_score(frame["is_fraud"], frame["probability"]) > 3 * base_rate
    pairs = frame.groupby("card_id").filter(lambda g: g["is_fraud"].nunique() == 2)
    above = [
        g.loc[g["is_fraud"] == 1, "probability"].max()
        > g.loc[g["is_fraud"] == 0, "probability"].median()
        for _, g in pairs.groupby("card_id")
    ]
    assert above and np.mean(above) >= 0.6, above


def test_a_replayed_day_serves_exactly_the_offline_vectors(loop) -> None:
    replay = loop["replay"]
    consistency = replay["consistency"]
    assert consistency["served"] == replay["transactions"] > 100
    assert consistency["found_offline"] == consistency["served"]
    assert consistency["equal_share"] == 1.0, consistency["first_differences"]
    requests = replay["runs"]["in_order"]["requests"]
    assert requests["scored"] == replay["transactions"]
    assert requests["labels"] == replay["fraud_labels"]
