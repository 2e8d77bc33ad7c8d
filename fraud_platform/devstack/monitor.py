"""``python -m fraud_platform.devstack.monitor``: Prometheus on the local stack.

Starts Prometheus and its Pushgateway (built by ``scripts/install-prometheus.sh``) as
services of the local stack, with the compose stack's own ``prometheus.yml`` and rules,
then prints, panel by panel, the queries of the Grafana dashboard with what Prometheus
answers for them now. Grafana itself runs only in compose.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from fraud_platform.devstack.config import StackConfig
from fraud_platform.devstack.http_services import PROMETHEUS_DIR, REPO_ROOT
from fraud_platform.devstack.stack import LocalStack

DASHBOARD = REPO_ROOT / "docker" / "grafana" / "dashboards" / "fraud-feature-store.json"
API_JOB = "scoring-api"
PUSHGATEWAY_JOB = "pushgateway"
app = typer.Typer(add_completion=False, no_args_is_help=True)


def query(port: int, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]["result"]


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of the dashboard, in panel order."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def _show(sample: dict[str, Any]) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sample["metric"].items() if k != "__name__")
    return f"{{{labels}}} {float(sample['value'][1]):.6g}"


def wait_for_scrape(
    port: int, after: float, timeout: float = 40.0, jobs: tuple[str, ...] = (API_JOB,)
) -> bool:
    """Wait until Prometheus has scraped each of ``jobs`` (the scoring API by default) at
    a time later than ``after`` (epoch seconds), so that what they held by then is in the
    time series. False when no such scrapes came within ``timeout`` (Prometheus or a
    target is not running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # On the selector itself: timestamp() of a computed vector is the query's time.
            scraped = query(port, "timestamp(up)")
        except OSError:
            scraped = []
        fresh = {s["metric"].get("job") for s in scraped if float(s["value"][1]) > after}
        if fresh >= set(jobs):
            return True
        time.sleep(1)
    return False


@app.command()
def up(
    bin_dir: Annotated[
        Path, typer.Option(help="The folder of the prometheus and pushgateway executables.")
    ],
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a scrape of the API and the Pushgateway.")
    ] = 20,
) -> None:
    """Start Prometheus and the Pushgateway with the local stack (idempotent), then print
    the dashboard's queries with their current values."""
    stack = LocalStack(StackConfig(monitoring_bin=bin_dir))
    timings = stack.up()
    port = stack.config.prometheus_port
    for service in stack.monitoring:
        state = "started" if timings.get(service.name) else "already running"
        typer.echo(f"{service.name} {state} on http://127.0.0.1:{service.port}")
    typer.echo(
        f"the pipelines push to the Pushgateway through {stack.config.env_file} "
        f"(PROMETHEUS_PUSHGATEWAY_URL)"
    )
    # The API's latest counts and the latest pushes (the demo's drift report's, just
    # before it ended) into the series before reading them.
    jobs = (API_JOB, PUSHGATEWAY_JOB) if stack.api.pid() else (PUSHGATEWAY_JOB,)
    wait_for_scrape(port, after=time.time(), timeout=wait, jobs=jobs)
    for title, expr in panel_queries():
        typer.echo(f"\n# {title}\n{expr}")
        try:
            samples = query(port, expr)
        except OSError as error:
            typer.echo(f"  (query failed: {error})")
            continue
        for sample in samples[:8] or [{"metric": {}, "value": [0, "nan"]}]:
            typer.echo(f"  {_show(sample) if samples else '(no data yet)'}")


@app.command()
def down() -> None:
    """Stop the local Prometheus and Pushgateway (ours only)."""
    stopped = [s.name for s in LocalStack(StackConfig()).monitoring if s.stop()]
    typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def check(promtool: Annotated[Path, typer.Option(help="The promtool executable.")]) -> None:
    """``promtool check config`` and ``test rules`` over docker/prometheus/."""
    for args in (
        ["check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
        ["test", "rules", *map(str, sorted((PROMETHEUS_DIR / "tests").glob("*.yml")))],
    ):
        completed = subprocess.run([str(promtool), *args], cwd=PROMETHEUS_DIR, check=False)
        if completed.returncode:
            raise typer.Exit(completed.returncode)


if __name__ == "__main__":
    app()
