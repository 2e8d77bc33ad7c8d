"""``fraud-demo``: the end-to-end walk-through a newcomer runs with ``make demo``.

It starts the local stack and runs the project's Airflow DAGs in order with ``dag.test()``
(the same DAGs a scheduler runs), then prints what each stage produced. The DAGs' own logs
go to ``.local/logs/demo.log``; a failing step names its error and that log. How a step
runs is ``fraud_demo.runner``; the calls to the API ``fraud_demo.scoring``; the tables
``fraud_demo.report``.
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import Future
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from feature_pipeline.generate.config import GeneratorConfig
from feature_pipeline.generate.landing import held_back_day
from fraud_demo.report import drift_summary, examples_table, summarise, where_next
from fraud_demo.runner import Demo, in_background, run_dag
from fraud_demo.scoring import measure_latency, score_examples, wait_for_champion
from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.monitor import wait_for_scrape
from fraud_platform.devstack.stack import LocalStack

__all__ = ["app", "main", "run_dag"]

app = typer.Typer(help="Run the fraud feature store's demo on the local stack.")


@app.command()
def main(
    days: Annotated[int, typer.Option(min=14, help="Days of synthetic transactions.")] = 16,
    cards: Annotated[int, typer.Option(min=100, help="Cards in the synthetic population.")] = 1_000,
    fraud_rate: Annotated[float, typer.Option(help="Share of fraudulent transactions.")] = 0.02,
    project_dir: Annotated[
        Path | None, typer.Option(help="The repository root (default: the current folder).")
    ] = None,
) -> None:
    """The whole loop on the local stack: features, training, online scoring.

    Generates ``days`` days of transactions plus one more, held back, ending a week ago:
    the feature pipeline runs over the ``days`` (and loads Redis), the labels that arrived
    since are ingested (a genuine transaction is labelled only after a 7-day settlement
    window), a model is trained and registered on them, and the held-back day's
    transactions are then scored through the API, as new traffic would be, and go through
    the daily chain (features, batch scoring, the drift report against the training set).
    Each run starts from a clean landing zone and online store, so reruns give the same
    result.
    """
    console = Console()
    started = time.perf_counter()
    demo = Demo(project_dir or Path.cwd(), console)
    stack = start_stack(demo)
    today = datetime.now(UTC).date()
    held_back = held_back_day(today)
    last_day = held_back - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)
    generated, applied = generate_and_apply(demo, first_day, days, cards, fraud_rate)
    build_features(demo, first_day, last_day, today, generated, applied)
    # The API's start (about 10 s of imports and loading) overlaps the training; it serves
    # the champion it finds and follows the alias, so it picks up a newly promoted model.
    api_started = demo.step(
        "start the scoring API (inference-pipeline serve) in the background",
        lambda: in_background(
            lambda: stack.start_api(
                env={"FRAUD_MODEL_REFRESH_SECONDS": str(API_MODEL_REFRESH_SECONDS)}
            )
        ),
    )
    gate = train_and_register(demo, first_day, last_day)
    url = serve(demo, stack, api_started, gate.get("model_name"), held_back)
    drift = report_drift(demo, held_back)
    console.rule()
    console.print(
        f"[bold green]Demo finished[/bold green] in {time.perf_counter() - started:.0f}s."
        f" Logs: {demo.log_file}"
    )
    drift_summary(console, drift)
    where_next(console, url, stack)


def start_stack(demo: Demo) -> LocalStack:
    """Redis and S3 up, their settings in this process's environment, Airflow's database
    ready, Spark warming up, and the smoke-test DAG passed."""
    console = demo.console
    stack = LocalStack(StackConfig(dir=demo.project_dir / ".local"))
    demo.step("start the local stack (Redis, S3)", stack.up)
    os.environ.update(stack.environment())
    # Airflow's own chatter goes to the log; its warnings and errors remain there too.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    from fraud_platform.airflow_local import ensure_airflow_db

    demo.step("prepare Airflow's metadata database", ensure_airflow_db)
    demo.step("start Spark's JVM (it warms up in the background)", start_spark_in_background)
    smoke = demo.step("00_smoke_test_stack", lambda: run_dag("00_smoke_test_stack", demo.dags))
    console.print(f"  S3 ready: {smoke['s3_ready']['endpoint']} -> {smoke['s3_ready']['status']}")
    console.print(f"  Redis ping ok: {smoke['redis_ping']['redis']}")
    return stack


def generate_and_apply(
    demo: Demo, first_day: date, days: int, cards: int, fraud_rate: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A clean landing zone with ``days`` + 1 generated days, and the feature repo applied;
    what the generator and ``feast apply`` report."""
    from feature_pipeline import pipeline
    from feature_pipeline.feature_store import apply_definitions

    demo.step("reset the demo's data (landing zone, online store)", reset_demo_data)
    generated = demo.step(
        f"generate {days} + 1 days of transactions for {cards:,} cards into landing/",
        lambda: pipeline.generate(
            first_day,
            days + 1,
            n_cards=cards,
            n_merchants=max(200, cards // 10),
            fraud_rate=fraud_rate,
        ),
    )
    applied = demo.step(
        "feast apply: the feature repo into the registry", lambda: apply_definitions(check=False)
    )
    return generated, applied


def build_features(
    demo: Demo,
    first_day: date,
    last_day: date,
    today: date,
    generated: dict[str, Any],
    applied: dict[str, Any],
) -> None:
    """The feature pipeline's DAG over the demo's days, the labels that arrived since, and
    the online event state rebuilt as of the held-back day; their rows printed."""
    from feature_pipeline import pipeline
    from feature_pipeline.event_backfill import backfill

    console = demo.console
    held_back = last_day + timedelta(days=1)
    features = demo.step(
        f"feature_pipeline {first_day} .. {last_day}: bronze, gates, features, Redis",
        lambda: run_dag(
            "feature_pipeline",
            demo.dags,
            {"first_day": first_day.isoformat(), "last_day": last_day.isoformat()},
        ),
    )
    late_labels = demo.step(
        f"ingest the labels that arrived since, {last_day + timedelta(days=1)} .. "
        f"{today - timedelta(days=1)}",
        lambda: pipeline.ingest(
            last_day + timedelta(days=1), today - timedelta(days=1), feeds=["labels"]
        ),
    )
    rebuilt = demo.step(
        f"rebuild the online event state as of {held_back} from the offline store",
        lambda: backfill(datetime(held_back.year, held_back.month, held_back.day, tzinfo=UTC)),
    )
    console.print(
        f"  {rebuilt['transactions']:,} transactions and {rebuilt['fraud_labels']:,} "
        f"fraud labels into {rebuilt['keys']:,} keys "
        f"({rebuilt['keys_per_second']:,} keys/s)"
    )
    summarise(console, generated, features, first_day, last_day)
    console.print(
        f"  labels arrived after {last_day}: {late_labels['feeds']['labels']['bronze']:,}"
    )
    services = ", ".join(applied["feature_services"])
    if services:
        console.print(f"  feature services in the registry: {services}")


def train_and_register(demo: Demo, first_day: date, last_day: date) -> dict[str, Any]:
    """Train on the demo's days, print the metric table and the gate's decision, and return
    that decision (the training run's ``mlflow`` entry)."""
    from training_pipeline.cli import metric_table

    windows = training_windows(first_day, last_day)
    trained = demo.step(
        "train XGBoost on point-in-time features from Feast, register it in MLflow",
        lambda: train(windows),
    )
    demo.console.print(
        metric_table(trained, f"test window {windows['test_start']} .. {windows['test_end']}")
    )
    gate: dict[str, Any] = trained.get("mlflow", {})
    demo.console.print(
        f"  {gate.get('model_name')} v{gate.get('version')} -> "
        f"[bold]{gate.get('decision')}[/bold]: {gate.get('reason')}"
    )
    return gate


def serve(
    demo: Demo, stack: LocalStack, api_started: Future, model_name: str | None, held_back: date
) -> str:
    """Wait for the API to serve the champion, score held-back transactions through it and
    measure its latency; return its URL."""
    console = demo.console
    url = f"http://127.0.0.1:{stack.config.api_port}"
    headers = {"X-API-Key": stack.secrets["FRAUD_API_KEY"]}
    served = demo.step(
        "the scoring API serves the champion",
        lambda: wait_for_champion(api_started, url, model_name),
    )
    console.print(f"  {url} serves {served['name']} v{served['version']} (@{served['alias']})")
    observed(demo, stack, "before the traffic")
    examples = demo.step(
        f"score held-back transactions of {held_back} through /v1/score",
        lambda: score_examples(url, headers, held_back),
    )
    console.print(examples_table(examples))
    latency = measure_latency(console, url, headers, examples["bodies"])
    console.print(
        f"  serving latency over {latency['requests']:,} sequential requests: "
        f"p50 {latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms "
        f"(client side, HTTP included)"
    )
    observed(demo, stack, "after the traffic")
    return url


def report_drift(demo: Demo, held_back: date) -> dict[str, Any]:
    """The held-back day through the daily chain after its traffic: its transactions into
    bronze and its feature tables (batch scoring reads the state before each transaction;
    without the day's own rows it would read stale windows and report them as drift),
    batch-scored by the champion, and compared with the champion's training set. Scoring
    and the report push their metrics (the report its figures) as the DAGs' tasks do."""
    from feature_pipeline import pipeline
    from fraud_platform.run_metrics import reported
    from inference_pipeline.batch import score_day
    from inference_pipeline.drift_job import report_day

    demo.step(
        f"feature pipeline for {held_back}: its transactions into bronze, its features",
        lambda: (
            pipeline.ingest(held_back, held_back, feeds=["transactions"]),
            pipeline.compute(held_back, held_back),
        ),
    )
    demo.step(
        f"batch-score {held_back} with the champion (batch_inference)",
        lambda: reported(
            "batch_inference",
            "score_days",
            lambda: score_day(held_back),
            counts=lambda scored: [("predictions", "scored", scored["rows"])],
        ),
    )
    drift: dict[str, Any] = demo.step(
        f"drift report of {held_back} against the champion's training set (drift_report)",
        lambda: reported("drift_report", "report_days", lambda: report_day(held_back)),
    )
    return drift


def observed(demo: Demo, stack: LocalStack, when: str) -> None:
    """With the stack's Prometheus running (``make monitor`` built it), wait for its next
    scrape of the API: the scrapes before and after the traffic are what its rate() panels
    read."""
    if stack.config.monitoring_bin:
        after = time.time()
        demo.step(
            f"Prometheus scrapes the API {when}",
            lambda: wait_for_scrape(stack.config.prometheus_port, after=after),
        )


API_MODEL_REFRESH_SECONDS = 2
"""How often the demo's API checks the champion alias (the service's default is 30 s)."""


def start_spark_in_background() -> Future:
    """Build the feature pipeline's Spark session on a thread; return once its JVM runs.

    The rest of the JVM's start (about 10 s on 2 cores) then overlaps the steps before the
    feature pipeline, whose own ``getOrCreate`` waits for this session and reuses it (or,
    if the start failed, fails there with the same error). The JVM keeps the output of the
    step that launched it, so its logs go to the demo's log, not to the terminal.
    """
    from pyspark import SparkContext

    from fraud_platform.spark import build_spark_session

    started = in_background(lambda: build_spark_session("fraud-demo"))
    while SparkContext._gateway is None and not started.done():  # noqa: SLF001
        time.sleep(0.05)
    return started


LABEL_SETTLEMENT_DAYS = int(GeneratorConfig.model_fields["settlement_window_days"].default)
"""A generated genuine transaction is labelled once the settlement window passes."""
TEST_DAYS = 2


def training_windows(first_day: date, last_day: date) -> dict[str, date]:
    """Test on the last two days; train from the first day to the label delay's gap."""
    from training_pipeline.evaluate import windows_ending

    return windows_ending(
        last_day, TEST_DAYS, timedelta(days=LABEL_SETTLEMENT_DAYS), first_train_day=first_day
    )


def train(windows: dict[str, date]) -> dict[str, Any]:
    """The training pipeline over ``windows``, with the generator's settlement delay."""
    from training_pipeline import pipeline

    return pipeline.run(
        windows["train_start"],
        windows["train_end"],
        windows["test_start"],
        windows["test_end"],
        label_delay=timedelta(days=LABEL_SETTLEMENT_DAYS),
    )


def reset_demo_data() -> None:
    """Empty the landing zone and the online store: a rerun regenerates the same data,
    and nothing of an earlier run with other dates or sizes mixes into this one."""
    from fraud_platform.redis_client import redis_client
    from fraud_platform.s3 import delete_prefix
    from fraud_platform.settings import S3Settings

    s3 = S3Settings()
    delete_prefix(s3.key("landing") + "/", s3)
    with redis_client() as client:
        client.flushdb()


if __name__ == "__main__":
    app()
