"""``fraud-demo``: the end-to-end walk-through a newcomer runs with ``make demo``.

It starts the local stack and runs the project's Airflow DAGs in order with ``dag.test()``
(the same DAGs a scheduler runs), then prints what each stage produced. The DAGs' own logs
go to ``.local/logs/demo.log``; a failing step names its error and that log.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from feature_pipeline.generate.config import GeneratorConfig
from feature_pipeline.generate.landing import held_back_day, read_landing_day
from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.stack import LocalStack

app = typer.Typer(help="Run the fraud feature store's demo on the local stack.")


class StepFailed(RuntimeError):
    """A demo step failed; the message says which and why."""


@contextlib.contextmanager
def output_to(log_file: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (Spark's and Airflow's included) to a file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log_file.open("ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_dag(dag_id: str, dags_folder: Path, conf: dict[str, Any] | None = None,
            logical_date: datetime | None = None) -> dict:
    """Run one DAG in-process with ``dag.test()``; return each task's XCom value.

    The DAGs are parsed afresh for every run: ``dag.test(run_conf=...)`` leaves the conf
    in the DAG object's params, where a later run of the same object would find it.

    Raises:
        StepFailed: naming the failed tasks.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    if bag.import_errors:
        raise StepFailed(f"DAG import errors: {bag.import_errors}")
    run = bag.get_dag(dag_id).test(run_conf=conf, logical_date=logical_date)
    instances = run.get_task_instances()
    failed = [ti.task_id for ti in instances if str(ti.state) != "success"]
    if str(run.state) != "success":
        raise StepFailed(f"{dag_id} failed in tasks {failed}")
    return {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in instances}


class Demo:
    """Runs the steps in order, timing each and keeping their results for the summary."""

    def __init__(self, project_dir: Path, console: Console) -> None:
        self.project_dir = project_dir
        self.console = console
        self.log_file = project_dir / ".local" / "logs" / "demo.log"
        self.results: dict[str, Any] = {}
        self.timings: dict[str, float] = {}

    def step(self, name: str, action: Callable[[], Any]) -> Any:
        """Run one step with a live spinner and its elapsed time; stop the demo, naming
        the error and the log, if it fails."""
        started = time.perf_counter()
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                            TimeElapsedColumn(), console=self.console, transient=True)
        with progress:
            progress.add_task(name, total=None)
            try:
                with output_to(self.log_file):
                    result = action()
            except Exception as exc:
                progress.stop()
                self.console.print(f"[red]✗ {name}[/red]: {exc}")
                self.console.print(f"  the log to read: {self.log_file}")
                raise typer.Exit(1) from exc
        self.timings[name] = time.perf_counter() - started
        self.results[name] = result
        self.console.print(f"[green]✓[/green] {name} [dim]({self.timings[name]:.0f}s)[/dim]")
        return result


@app.command()
def main(
    days: Annotated[int, typer.Option(min=14, help="Days of synthetic transactions.")] = 16,
    cards: Annotated[int, typer.Option(min=100, help="Cards in the synthetic population.")
                     ] = 1_000,
    fraud_rate: Annotated[float, typer.Option(help="Share of fraudulent transactions.")
                          ] = 0.02,
    project_dir: Annotated[
        Path | None, typer.Option(help="The repository root (default: the current folder).")
    ] = None,
) -> None:
    """The whole loop on the local stack: features, training, online scoring.

    Generates ``days`` days of transactions plus one more, held back, ending a week ago:
    the feature pipeline runs over the ``days`` (and loads Redis), the labels that arrived
    since are ingested (a genuine transaction is labelled only after a 7-day settlement
    window), a model is trained and registered on them, and the held-back day's
    transactions are then scored through the API, as new traffic would be. Each run starts
    from a clean landing zone and online store, so reruns give the same result.
    """
    console = Console()
    project_dir = project_dir or Path.cwd()
    dags = project_dir / "pipelines"
    started = time.perf_counter()
    demo = Demo(project_dir, console)
    stack = LocalStack(StackConfig(dir=project_dir / ".local"))
    demo.step("start the local stack (Redis, S3)", stack.up)
    os.environ.update(stack.environment())
    # Airflow's own chatter goes to the log; its warnings and errors remain there too.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    from fraud_platform.airflow_local import ensure_airflow_db

    demo.step("prepare Airflow's metadata database", ensure_airflow_db)
    demo.step("start Spark's JVM (it warms up in the background)", start_spark_in_background)
    smoke = demo.step("00_smoke_test_stack", lambda: run_dag("00_smoke_test_stack", dags))
    console.print(f"  S3 ready: {smoke['s3_ready']['endpoint']} -> {smoke['s3_ready']['status']}")
    console.print(f"  Redis ping ok: {smoke['redis_ping']['redis']}")

    today = datetime.now(UTC).date()
    held_back = held_back_day(today)
    last_day = held_back - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)

    from feature_pipeline import pipeline

    demo.step("reset the demo's data (landing zone, online store)", reset_demo_data)
    generated = demo.step(
        f"generate {days} + 1 days of transactions for {cards:,} cards into landing/",
        lambda: pipeline.generate(first_day, days + 1, n_cards=cards,
                                  n_merchants=max(200, cards // 10), fraud_rate=fraud_rate),
    )
    from feature_pipeline.feature_store import apply_definitions

    applied = demo.step("feast apply: the feature repo into the registry",
                        lambda: apply_definitions(check=False))
    features = demo.step(
        f"feature_pipeline {first_day} .. {last_day}: bronze, gates, features, Redis",
        lambda: run_dag("feature_pipeline", dags, {"first_day": first_day.isoformat(),
                                                   "last_day": last_day.isoformat()}),
    )
    late_labels = demo.step(
        f"ingest the labels that arrived since, {last_day + timedelta(days=1)} .. "
        f"{today - timedelta(days=1)}",
        lambda: pipeline.ingest(last_day + timedelta(days=1), today - timedelta(days=1),
                                feeds=["labels"]),
    )
    summarise(console, generated, features, first_day, last_day)
    console.print(f"  labels arrived after {last_day}: "
                  f"{late_labels['feeds']['labels']['bronze']:,}")
    services = ", ".join(applied["feature_services"])
    if services:
        console.print(f"  feature services in the registry: {services}")

    # The API's start (about 10 s of imports and loading) overlaps the training; it serves
    # the champion it finds and follows the alias, so it picks up a newly promoted model.
    api_started = demo.step(
        "start the scoring API (inference-pipeline serve) in the background",
        lambda: in_background(lambda: stack.start_api(
            env={"FRAUD_MODEL_REFRESH_SECONDS": str(API_MODEL_REFRESH_SECONDS)})),
    )
    windows = training_windows(first_day, last_day)
    trained = demo.step(
        "train XGBoost on point-in-time features from Feast, register it in MLflow",
        lambda: train(windows),
    )
    from training_pipeline.cli import metric_table

    console.print(metric_table(trained, f"test window {windows['test_start']} .. "
                                        f"{windows['test_end']}"))
    gate = trained.get("mlflow", {})
    console.print(f"  {gate.get('model_name')} v{gate.get('version')} -> "
                  f"[bold]{gate.get('decision')}[/bold]: {gate.get('reason')}")

    url = f"http://127.0.0.1:{stack.config.api_port}"
    headers = {"X-API-Key": stack.secrets["FRAUD_API_KEY"]}
    served = demo.step("the scoring API serves the champion",
                       lambda: wait_for_champion(api_started, url, gate.get("model_name")))
    console.print(f"  {url} serves {served['name']} v{served['version']} "
                  f"(@{served['alias']})")
    examples = demo.step(f"score held-back transactions of {held_back} through /v1/score",
                         lambda: score_examples(url, headers, held_back))
    console.print(examples_table(examples))
    latency = measure_latency(console, url, headers, examples["bodies"])
    console.print(f"  serving latency over {latency['requests']:,} sequential requests: "
                  f"p50 {latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms "
                  f"(client side, HTTP included)")
    console.rule()
    console.print(f"[bold green]Demo finished[/bold green] in {time.perf_counter() - started:.0f}s."
                  f" Logs: {demo.log_file}")
    where_next(console, url, stack)


API_MODEL_REFRESH_SECONDS = 2
"""How often the demo's API checks the champion alias (the service's default is 30 s)."""


def in_background(action: Callable[[], Any]) -> Future:
    """Run ``action`` on its own thread; its result (or error) is the future's."""
    executor = ThreadPoolExecutor(1, thread_name_prefix="demo-background")
    future = executor.submit(action)
    executor.shutdown(wait=False)
    return future


def wait_for_champion(api_started: Future, url: str, model_name: str | None,
                      timeout: float = 60.0) -> dict[str, Any]:
    """Wait for the API started in the background to be ready with the registry's current
    champion; return the model it serves (``/readyz``'s ``model``).

    Raises:
        StepFailed: the API did not start, or did not serve the champion in time.
    """
    import httpx

    from fraud_platform.model_registry import CHAMPION, alias_version

    api_started.result()
    champion = alias_version(model_name, CHAMPION) if model_name else None
    if champion is None:
        raise StepFailed(f"no version of {model_name!r} has the alias {CHAMPION!r}")
    deadline = time.monotonic() + timeout
    while True:
        ready = httpx.get(f"{url}/readyz", timeout=5)
        model = ready.json().get("model") or {}
        if ready.status_code == 200 and str(model.get("version")) == champion:
            return model
        if time.monotonic() > deadline:
            raise StepFailed(f"the API serves {model or 'no model'} after {timeout:.0f}s, not "
                             f"{model_name} v{champion}: {ready.json().get('detail', '')}")
        time.sleep(0.2)


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
    """Test on the last two days; train on the days before them less a gap of the label
    delay (the model is trained as of the test window's start, when the labels of the
    gap's days were not known yet)."""
    test_start = last_day - timedelta(days=TEST_DAYS - 1)
    train_end = test_start - timedelta(days=LABEL_SETTLEMENT_DAYS + 1)
    return {"train_start": first_day, "train_end": train_end, "test_start": test_start,
            "test_end": last_day}


def train(windows: dict[str, date]) -> dict[str, Any]:
    from training_pipeline import pipeline

    return pipeline.run(windows["train_start"], windows["train_end"], windows["test_start"],
                        windows["test_end"],
                        label_delay=timedelta(days=LABEL_SETTLEMENT_DAYS))


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


def score_examples(url: str, headers: dict[str, str], day: date, per_kind: int = 4
                   ) -> dict[str, Any]:
    """Score planted frauds (one per scenario where possible) and normal transactions of
    the held-back day, which no feature table or Redis key has seen yet."""
    import httpx

    from inference_pipeline.schemas import request_body

    transactions, labels = read_landing_day(day)
    frauds = labels[labels["is_fraud"] == 1]
    chosen = (transactions.merge(frauds[["transaction_id", "fraud_scenario"]],
                                 on="transaction_id")
              .sort_values("event_timestamp").drop_duplicates("fraud_scenario")
              .head(per_kind))
    normal = transactions[~transactions["transaction_id"].isin(frauds["transaction_id"])]
    normal = normal[normal["card_id"].isin(chosen["card_id"])].drop_duplicates("card_id")
    if len(normal) < per_kind:
        normal = transactions[~transactions["transaction_id"].isin(
            frauds["transaction_id"])].head(per_kind)
    rows = [*chosen.assign(kind=chosen["fraud_scenario"]).itertuples(),
            *normal.head(per_kind).assign(kind="normal").itertuples()]
    bodies = [request_body(r) for r in rows]
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        scores = [client.post("/v1/score", json=body) for body in bodies]
    failed = [r.text for r in scores if r.status_code != 200]
    if failed:
        raise StepFailed(f"the API did not score: {failed[0]}")
    return {"rows": [(row.kind, body, response.json())
                     for row, body, response in zip(rows, bodies, scores, strict=True)],
            "bodies": [request_body(r) for r in transactions.head(500).itertuples()]}


def examples_table(examples: dict[str, Any]) -> Table:
    table = Table(title="Held-back transactions scored by the API", title_justify="left")
    for column in ("truth", "card", "amount", "fraud probability", "decision", "flags"):
        table.add_column(column, justify="right" if column in ("amount",
                                                                "fraud probability") else "left")
    for kind, body, score in examples["rows"]:
        flags = [name for name in ("card_unknown", "merchant_unknown") if score[name]]
        style = "red" if score["decision"] == "decline" else (
            "yellow" if score["decision"] == "review" else "green")
        table.add_row(kind, body["card_id"], f"{body['amount']:,.2f}",
                      f"{score['fraud_probability']:.4f}",
                      f"[{style}]{score['decision']}[/{style}]", ", ".join(flags) or "-")
    return table


def measure_latency(console: Console, url: str, headers: dict[str, str],
                    bodies: list[dict], requests: int = 1_000) -> dict[str, Any]:
    """Sequential requests over one connection, with a progress bar: p50 and p99."""
    import httpx
    import numpy as np

    timings = []
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client, Progress(
            TextColumn("measuring serving latency"), BarColumn(), MofNCompleteColumn(),
            console=console, transient=True) as progress:
        task = progress.add_task("latency", total=requests)
        for i in range(requests):
            started = time.perf_counter()
            client.post("/v1/score", json=bodies[i % len(bodies)]).raise_for_status()
            timings.append(time.perf_counter() - started)
            progress.advance(task)
    values = np.array(timings) * 1000
    return {"requests": requests, "p50_ms": float(np.percentile(values, 50)),
            "p99_ms": float(np.percentile(values, 99))}


def where_next(console: Console, url: str, stack: LocalStack) -> None:
    console.print("Where to look next:")
    console.print(f"  API docs        {url}/docs  (header X-API-Key: FRAUD_API_KEY in "
                  f"{stack.config.env_file})")
    console.print("  MLflow UI       make mlflow   -> http://127.0.0.1:5000")
    console.print("  Airflow UI      make airflow  -> http://127.0.0.1:8080")
    console.print("  stop everything make down")


def summarise(console: Console, generated: dict, features: dict, first: date, last: date) -> None:
    """Rows per stage, and where records went."""
    table = Table(title=f"Feature pipeline, {first} .. {last}")
    table.add_column("stage")
    table.add_column("rows", justify="right")
    table.add_column("detail")
    table.add_row("landing (generated)", f"{generated['rows']['transactions']:,}",
                  f"fraud rate {generated['fraud']['rate']:.2%}")
    for feed, counts in features["ingest"].items():
        table.add_row(f"bronze/{feed}", f"{counts['bronze']:,}",
                      f"read {counts['read']:,}, quarantined {counts['quarantined']:,}, "
                      f"duplicates {counts['duplicates']:,}")
    for name, rows in features["compute"].items():
        table.add_row(f"silver/{name}", f"{rows:,}", "validated by its gate")
    online = features["materialize"]
    table.add_row("redis (online store)", f"{online['keys_written']:,}",
                  f"keys written, {online['keys_per_s'] or 0:,} keys/s")
    console.print(table)


if __name__ == "__main__":
    app()
