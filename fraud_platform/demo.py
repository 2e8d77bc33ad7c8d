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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

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


def run_dag(dag_id: str, dags_folder: Path, conf: dict[str, Any] | None = None) -> dict:
    """Run one DAG in-process with ``dag.test()``; return each task's XCom value.

    Raises:
        StepFailed: naming the failed tasks.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    if bag.import_errors:
        raise StepFailed(f"DAG import errors: {bag.import_errors}")
    run = bag.get_dag(dag_id).test(run_conf=conf)
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
        started = time.perf_counter()
        with self.console.status(f"{name}..."):
            try:
                with output_to(self.log_file):
                    result = action()
            except Exception as exc:
                self.console.print(f"[red]✗ {name}[/red]: {exc}")
                self.console.print(f"  the log to read: {self.log_file}")
                raise typer.Exit(1) from exc
        self.timings[name] = time.perf_counter() - started
        self.results[name] = result
        self.console.print(f"[green]✓[/green] {name} [dim]({self.timings[name]:.0f}s)[/dim]")
        return result


@app.command()
def main(
    days: Annotated[int, typer.Option(help="Days of synthetic transactions.")] = 14,
    cards: Annotated[int, typer.Option(help="Cards in the synthetic population.")] = 2_000,
    project_dir: Annotated[
        Path | None, typer.Option(help="The repository root (default: the current folder).")
    ] = None,
) -> None:
    """Start the stack and run the pipelines' DAGs end to end on synthetic data."""
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
    smoke = demo.step("00_smoke_test_stack", lambda: run_dag("00_smoke_test_stack", dags))
    console.print(f"  S3 ready: {smoke['s3_ready']['endpoint']} -> {smoke['s3_ready']['status']}")
    console.print(f"  Redis ping ok: {smoke['redis_ping']['redis']}")

    last_day = datetime.now(UTC).date() - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)

    from feature_pipeline import pipeline

    generated = demo.step(
        f"generate {days} days of transactions for {cards:,} cards into landing/",
        lambda: pipeline.generate(first_day, days, n_cards=cards,
                                  n_merchants=max(200, cards // 10)),
    )
    from feature_pipeline.feature_store import apply_definitions

    applied = demo.step("feast apply: the feature repo into the registry",
                        lambda: apply_definitions(check=False))
    features = demo.step(
        "feature_pipeline: bronze, quarantine, gates, feature tables, Redis",
        lambda: run_dag("feature_pipeline", dags, {"first_day": first_day.isoformat(),
                                                   "last_day": last_day.isoformat()}),
    )
    summarise(console, generated, features, first_day, last_day)
    services = ", ".join(applied["feature_services"])
    if services:
        console.print(f"  feature services in the registry: {services}")
    console.rule()
    console.print(f"[bold green]Demo finished[/bold green] in {time.perf_counter() - started:.0f}s."
                  f" Logs: {demo.log_file}")


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
