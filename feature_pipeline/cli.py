"""``feature-pipeline``: the feature pipeline's steps from the command line.

Each command prints the step's metadata as JSON on stdout; logs go to stderr. A failing
Great Expectations gate prints its summary and exits with code 2.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

app = typer.Typer(help="Feature pipeline: landing -> bronze -> validated feature tables.")
err = Console(stderr=True)

Start = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First day (UTC).")]
End = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Last day, included.")]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)


def _emit(step: str, call: Any) -> None:
    from feature_pipeline.validation import ValidationGateError

    try:
        with err.status(f"{step}..."):
            result = call()
    except ValidationGateError as exc:
        err.print(f"[red]{step} stopped by a validation gate[/red]\n{exc}")
        raise typer.Exit(2) from exc
    print(json.dumps(result, indent=2, default=str))


def _day(value: datetime) -> date:
    return value.date()


@app.command()
def generate(
    start: Start,
    days: Annotated[int, typer.Option(min=1)] = 30,
    cards: Annotated[int, typer.Option(min=10)] = 5_000,
    merchants: Annotated[int, typer.Option(min=200)] = 1_000,
    transactions: Annotated[int | None, typer.Option(help="Target count.")] = None,
    fraud_rate: Annotated[float, typer.Option(min=0.0, max=0.2)] = 0.005,
    seed: int = 7,
) -> None:
    """Generate synthetic transactions, labels and reference data into landing/."""
    from feature_pipeline import pipeline

    result = pipeline.generate(_day(start), days, cards, merchants, transactions, fraud_rate,
                               seed, progress=True)
    result.pop("keys_written", None)
    print(json.dumps(result, indent=2, default=str))


@app.command()
def ingest(
    start: Start,
    end: End,
    source: Annotated[
        Path | None, typer.Option(exists=True, help="Column mapping of an external dataset.")
    ] = None,
) -> None:
    """Ingest landing files (or an external source) into bronze, with quarantine and gates."""
    from feature_pipeline import pipeline

    _emit("ingest", lambda: pipeline.ingest(_day(start), _day(end), source))


@app.command()
def compute(
    start: Start,
    end: End,
    extra_label_delay_days: Annotated[float, typer.Option(min=0.0)] = 0.0,
) -> None:
    """Compute and publish the feature tables of the window, through their gates."""
    from feature_pipeline import pipeline

    delay = timedelta(days=extra_label_delay_days)
    _emit("compute", lambda: pipeline.compute(_day(start), _day(end), delay))


@app.command()
def validate(start: Start, end: End) -> None:
    """Re-validate the published bronze and feature tables of the window."""
    from feature_pipeline import pipeline

    result = pipeline.validate(_day(start), _day(end))
    print(json.dumps(result, indent=2, default=str))
    if result["failed"]:
        err.print(f"[red]failed gates:[/red] {', '.join(result['failed'])}")
        raise typer.Exit(2)


@app.command()
def run(
    start: Start,
    end: End,
    source: Annotated[Path | None, typer.Option(exists=True)] = None,
    extra_label_delay_days: Annotated[float, typer.Option(min=0.0)] = 0.0,
) -> None:
    """Ingest and compute the window: the daily feature pipeline."""
    from feature_pipeline import pipeline

    delay = timedelta(days=extra_label_delay_days)
    _emit("run", lambda: pipeline.run(_day(start), _day(end), source, delay))
