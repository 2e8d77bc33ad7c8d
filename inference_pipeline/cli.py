"""``inference-pipeline``: serve the scoring API, score a day in batch, or report on scored
days (drift, online/offline consistency)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Online and batch fraud scoring with the champion model.",
)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Processes (one per core at most).")] = 1,
    access_log: Annotated[bool, typer.Option(help="One JSON line per request.")] = True,
    proxy_headers: Annotated[
        bool, typer.Option(help="Trust X-Forwarded-* (only behind a load balancer).")
    ] = False,
    keep_alive: Annotated[
        int,
        typer.Option(
            help="Seconds an idle connection stays open; above the load balancer's idle "
            "timeout (30 s in terraform/), so the balancer, not the server, closes it."
        ),
    ] = 65,
) -> None:
    """Run the scoring API (uvicorn with uvloop and httptools), logging JSON lines that
    carry the request id. With several workers, metrics go through prometheus_client's
    multiprocess mode (a fresh ``PROMETHEUS_MULTIPROC_DIR`` unless one is given)."""
    import os

    import uvicorn

    from fraud_platform.logs import logging_config

    if workers > 1:
        _multiprocess_dir()
    # The app logs the access line itself, after the response (api.request_id); the
    # workers read the choice from the environment.
    os.environ["FRAUD_API_ACCESS_LOG"] = str(access_log).lower()
    uvicorn.run(
        "inference_pipeline.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=logging_config(),
        proxy_headers=proxy_headers,
        forwarded_allow_ips="*" if proxy_headers else None,
        server_header=False,
        # uvicorn's default (5 s) closes idle connections that a client or load balancer
        # may be reusing at that instant: the request is reset, not answered.
        timeout_keep_alive=keep_alive,
    )


def _multiprocess_dir() -> None:
    """Point the workers at an empty directory for their metric files (files of a previous
    server would be counted again)."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="fraud-api-metrics-"))
    if given:
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


@app.command()
def batch(
    day: Annotated[
        datetime,
        typer.Option("--date", formats=["%Y-%m-%d"], help="The day whose transactions to score."),
    ],
) -> None:
    """Score a day's transactions from the offline store into predictions/ on S3."""
    from fraud_platform.logs import start_command
    from inference_pipeline.batch import score_day

    start_command("inference-pipeline batch", day=day.date().isoformat())
    typer.echo(json.dumps(score_day(day.date()), indent=2, default=str))


def _days(first: datetime, last: datetime | None) -> list[date]:
    """The days from ``first`` to ``last`` (``first`` alone without it), both included."""
    end = (last or first).date()
    return [first.date() + timedelta(days=i) for i in range((end - first.date()).days + 1)]


@app.command()
def drift(
    first: Annotated[
        datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="The scored day to report on.")
    ],
    last: Annotated[
        datetime | None,
        typer.Option("--last-date", formats=["%Y-%m-%d"], help="Last day of a range (included)."),
    ] = None,
) -> None:
    """Drift report of scored days against the champion's training set; exits 1 when a
    threshold (``FRAUD_DRIFT_*``) is crossed, after writing the reports."""
    from fraud_platform.logs import start_command
    from inference_pipeline.drift_job import DriftAlert, report_days

    start_command("inference-pipeline drift", day=first.date().isoformat())
    try:
        summaries = report_days(_days(first, last))
    except DriftAlert as alert:
        typer.echo(f"drift alert: {alert}", err=True)
        raise typer.Exit(1) from alert
    typer.echo(json.dumps(summaries, indent=2, default=str))


@app.command()
def consistency(
    first: Annotated[
        datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="The logging day (UTC).")
    ],
    last: Annotated[
        datetime | None,
        typer.Option("--last-date", formats=["%Y-%m-%d"], help="Last day of a range (included)."),
    ] = None,
    min_equal_share: Annotated[
        float, typer.Option(help="The bar: the share of served vectors equal to offline.")
    ] = 1.0,
) -> None:
    """Served vectors of logged days against the offline point-in-time vectors; exits 1
    when a day is below the bar, after writing every day's result."""
    from fraud_platform.logs import start_command
    from inference_pipeline.consistency import ConsistencyAlert, report_days

    start_command("inference-pipeline consistency", day=first.date().isoformat())
    try:
        results = report_days(_days(first, last), min_equal_share)
    except ConsistencyAlert as alert:
        typer.echo(f"consistency alert: {alert}", err=True)
        raise typer.Exit(1) from alert
    typer.echo(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    app()
