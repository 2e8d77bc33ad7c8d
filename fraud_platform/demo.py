"""``fraud-demo``: the end-to-end walk-through a newcomer runs with ``make demo``.

It starts the local stack and runs the project's Airflow DAGs in order with ``dag.test()``
(the same DAGs a scheduler runs), printing the lines that show each stage worked.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.stack import LocalStack

app = typer.Typer(help="Run the fraud feature store's demo on the local stack.")
console = Console()


def _show_project_logs() -> None:
    """Show the pipelines' own INFO lines (not Airflow's chatter) on the console."""
    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("fraud_platform", "feature_pipeline", "training_pipeline", "inference_pipeline"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)


def run_dag(dag_id: str, dags_folder: Path) -> None:
    """Run one DAG in-process with ``dag.test()``; raise if any task failed."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    if bag.import_errors:
        raise typer.BadParameter(f"DAG import errors: {bag.import_errors}")
    run = bag.get_dag(dag_id).test()
    failed = [ti.task_id for ti in run.get_task_instances() if str(ti.state) != "success"]
    if str(run.state) != "success":
        console.print(f"[red]{dag_id} failed[/red] in tasks {failed}; the task errors are above.")
        raise typer.Exit(1)


@app.command()
def main(
    project_dir: Annotated[
        Path | None, typer.Option(help="The repository root (default: the current folder).")
    ] = None,
) -> None:
    """Start the stack and run the smoke test of the stack through Airflow."""
    project_dir = project_dir or Path.cwd()
    started = time.perf_counter()
    stack = LocalStack(StackConfig(dir=project_dir / ".local"))
    with console.status("Starting the local stack (Redis, S3)"):
        timings = stack.up()
    console.print(f"[green]stack up[/green] {timings}")
    os.environ.update(stack.environment())
    # Airflow's own chatter would bury the pipelines' lines; its warnings and errors remain.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    from fraud_platform.airflow_local import ensure_airflow_db

    with console.status("Preparing Airflow's metadata database"):
        ensure_airflow_db()
    _show_project_logs()
    console.rule("00_smoke_test_stack")
    run_dag("00_smoke_test_stack", project_dir / "pipelines")
    console.rule()
    console.print(f"[bold green]Demo finished[/bold green] in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    app()
