"""How the demo runs its steps: each with a spinner and its time, its output (Spark's and
Airflow's included) sent to the demo's log, a failure named with that log; Airflow DAGs
run in-process with ``dag.test()``, and slow starts on a thread of their own."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


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


def run_dag(
    dag_id: str,
    dags_folder: Path,
    conf: dict[str, Any] | None = None,
    logical_date: datetime | None = None,
) -> dict:
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
        self.dags = project_dir / "pipelines"
        self.results: dict[str, Any] = {}
        self.timings: dict[str, float] = {}

    def step(self, name: str, action: Callable[[], Any]) -> Any:
        """Run one step with a live spinner and its elapsed time; stop the demo, naming
        the error and the log, if it fails."""
        started = time.perf_counter()
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
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


def in_background(action: Callable[[], Any]) -> Future:
    """Run ``action`` on its own thread; its result (or error) is the future's."""
    executor = ThreadPoolExecutor(1, thread_name_prefix="demo-background")
    future = executor.submit(action)
    executor.shutdown(wait=False)
    return future
