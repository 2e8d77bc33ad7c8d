"""``python -m fraud_demo.airflow_chain``: one full chain of DAG runs through Airflow's
own REST API (v2), each waited for before the next starts.

For a running Airflow (``make airflow``): the smoke test, the feature pipeline for a day,
the hourly materialization of its last hour, the weekly training as of the following
midnight, then batch inference of the day. Each DAG is unpaused (a triggered run of a
paused DAG would wait forever), and the chain stops at the first run that does not
succeed, naming it. Unpausing also starts the DAG's schedule: Airflow creates a run for
its latest interval, which fails where no data landed for it (the demo's data ends a week
ago); the chain's own runs go first. The token comes from ``POST /auth/token`` with the
admin password that ``airflow standalone`` generated
(``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``) unless given.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import httpx
import typer
from rich.console import Console

app = typer.Typer(add_completion=False)
console = Console()
FINISHED = {"success", "failed"}


class Run(NamedTuple):
    """One run of the chain."""

    dag_id: str
    logical: datetime
    conf: dict[str, Any]
    interval: tuple[datetime, datetime] | None
    """None: the interval the DAG's schedule infers for the logical date."""


def chain(day: date, training: dict[str, Any]) -> list[Run]:
    """The runs for ``day``, in order."""
    after = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return [
        Run("00_smoke_test_stack", after, {}, None),
        Run("feature_pipeline", after, {}, None),  # the interval is the day before
        Run("materialize_online", after, {}, None),  # the day's last hour, again
        # Trained as of the day's end, not of the Sunday before it that @weekly infers.
        Run("training", after, training, (after - timedelta(days=7), after)),
        Run("batch_inference", after, {}, None),
    ]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def admin_password(airflow_home: Path, user: str) -> str:
    generated = airflow_home / "simple_auth_manager_passwords.json.generated"
    if not generated.is_file():
        raise typer.BadParameter(
            f"no {generated}: start Airflow with `make airflow`, or pass --password"
        )
    return json.loads(generated.read_text())[user]


class AirflowApi:
    """The few calls of Airflow's REST API the chain needs."""

    def __init__(self, url: str, user: str, password: str) -> None:
        token = httpx.post(
            f"{url}/auth/token", json={"username": user, "password": password}, timeout=30
        )
        token.raise_for_status()
        self.client = httpx.Client(
            base_url=f"{url}/api/v2",
            timeout=30,
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )

    def unpause(self, dag_id: str) -> None:
        self.client.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, run: Run) -> str:
        # run_after is the logical date, not now: the scheduler starts queued runs in the
        # order of run_after, so this run goes before the one for the latest interval that
        # unpausing the DAG makes its schedule create (max_active_runs is 1).
        dag_id, logical, interval = run.dag_id, run.logical, run.interval
        body = {"logical_date": _iso(logical), "run_after": _iso(logical), "conf": run.conf}
        if interval is not None:
            body |= {
                "data_interval_start": _iso(interval[0]),
                "data_interval_end": _iso(interval[1]),
            }
        response = self.client.post(f"/dags/{dag_id}/dagRuns", json=body)
        if response.status_code == 409:
            # One run per logical date: a rerun of the chain replaces a finished run (its
            # conf and interval may differ), and never one still in progress.
            runs = self.client.get(
                f"/dags/{dag_id}/dagRuns",
                params={"logical_date_gte": _iso(logical), "logical_date_lte": _iso(logical)},
            )
            runs.raise_for_status()
            existing = runs.json()["dag_runs"][0]
            if existing["state"] not in FINISHED:
                raise typer.BadParameter(
                    f"{dag_id} run {existing['dag_run_id']} for {_iso(logical)} is "
                    f"{existing['state']}: wait for it, or mark it failed, and rerun"
                )
            self.client.delete(
                f"/dags/{dag_id}/dagRuns/{existing['dag_run_id']}"
            ).raise_for_status()
            response = self.client.post(f"/dags/{dag_id}/dagRuns", json=body)
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def wait(self, dag_id: str, run_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.client.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            response.raise_for_status()
            state = response.json()["state"]
            if state in FINISHED:
                return state
            time.sleep(3)
        return "timed out"


@app.command()
def main(
    day: Annotated[
        datetime,
        typer.Option(
            "--date", formats=["%Y-%m-%d"], help="The day to process (its data must have landed)."
        ),
    ],
    url: Annotated[str, typer.Option(help="Airflow's API server.")] = "http://127.0.0.1:8080",
    user: Annotated[str, typer.Option()] = "admin",
    password: Annotated[str | None, typer.Option(help="Default: the generated one.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each run.")] = 1800,
    training: Annotated[
        str,
        typer.Option(
            help='Params of the training run, as JSON, e.g. \'{"train_days": 7, "test_days": 2}\' '
            "for the demo's two weeks of data."
        ),
    ] = "{}",
) -> None:
    """Trigger the chain of DAG runs for ``--date`` and wait for each in turn."""
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    api = AirflowApi(url, user, password or admin_password(home, user))
    for run in chain(day.date(), json.loads(training)):
        dag_id = run.dag_id
        run_id = api.trigger(run)
        api.unpause(dag_id)
        started = time.monotonic()
        with console.status(f"{dag_id} ({run_id}) running..."):
            state = api.wait(dag_id, run_id, timeout)
        took = time.monotonic() - started
        if state != "success":
            console.print(
                f"[red]✗ {dag_id}[/red] {state} after {took:.0f}s: see the run "
                f"{run_id} in the UI ({url})"
            )
            raise typer.Exit(1)
        console.print(f"[green]✓ {dag_id}[/green] {run_id} in {took:.0f}s")


if __name__ == "__main__":
    app()
