"""``feature-pipeline``: the feature pipeline's steps from the command line.

Each command prints the step's metadata as JSON on stdout; logs go to stderr as JSON
lines with the run's id (``fraud_platform.logs``). A failing Great Expectations gate prints
its summary and exits with code 2.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(help="Feature pipeline: landing -> bronze -> validated feature tables.")
err = Console(stderr=True)

Start = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First day (UTC).")]
End = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Last day, included.")]


@app.callback()
def main(
    ctx: typer.Context, verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False
) -> None:
    """Logs as JSON lines on stderr, each with the run's id and command."""
    from fraud_platform.logs import start_command

    start_command(f"feature-pipeline {ctx.invoked_subcommand}", verbose, quiet=["py4j"])


def _emit(step: str, call: Any) -> None:
    from pydantic import ValidationError

    from feature_pipeline.sources import SourceError
    from feature_pipeline.validation import ValidationGateError

    try:
        with err.status(f"{step}..."):
            result = call()
    except ValidationGateError as exc:
        err.print(f"[red]{step} stopped by a validation gate[/red]\n{exc}")
        raise typer.Exit(2) from exc
    except (SourceError, ValidationError) as exc:
        # A source or mapping the user can fix: the reason, not a traceback.
        err.print(
            f"[red]{step}: the source cannot be read as mapped:[/red] {exc}",
            highlight=False,
            soft_wrap=True,
        )
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

    result = pipeline.generate(
        _day(start), days, cards, merchants, transactions, fraud_rate, seed, progress=True
    )
    result.pop("keys_written", None)
    print(json.dumps(result, indent=2, default=str))


@app.command()
def ingest(
    start: Start,
    end: End,
    source: Annotated[
        Path | None, typer.Option(exists=True, help="Column mapping of an external dataset.")
    ] = None,
    skip_missing_days: Annotated[
        bool, typer.Option(help="Ingest only the days with landing files instead of failing.")
    ] = False,
) -> None:
    """Ingest landing files (or an external source) into bronze, with quarantine and gates."""
    from feature_pipeline import pipeline

    _emit(
        "ingest",
        lambda: pipeline.ingest(
            _day(start), _day(end), source, skip_missing_days=skip_missing_days
        ),
    )


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


INSTANT = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
"""How an instant (UTC) is written on the command line."""


def _utc(value: datetime) -> datetime:
    """A naive instant given on the command line is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@app.command()
def apply() -> None:
    """Check every source path and column on S3, then apply the definitions to the registry."""
    from feature_pipeline.feature_store import apply_definitions

    _emit("apply", apply_definitions)


@app.command()
def materialize(
    end: Annotated[
        datetime | None, typer.Option(formats=INSTANT, help="Last event time; default: now.")
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(formats=INSTANT, help="First event time; default: go on."),
    ] = None,
    overlap_minutes: Annotated[int, typer.Option(min=0, help="Re-read before the last end.")] = 15,
    view: Annotated[list[str] | None, typer.Option(help="Only these views (repeatable).")] = None,
) -> None:
    """Load the feature tables into Redis up to END (default now; incremental without START)."""
    from feature_pipeline.materialize import materialize as load

    until = _utc(end) if end else datetime.now(UTC)
    _emit(
        "materialize",
        lambda: load(
            until,
            _utc(start) if start else None,
            timedelta(minutes=overlap_minutes),
            feature_views=view,
        ),
    )


@app.command()
def parity(
    sample_size: Annotated[int, typer.Option(min=1, help="Entity rows to compare.")] = 200,
    as_of: Annotated[
        datetime | None,
        typer.Option(formats=INSTANT, help="Instant (UTC); default: the last materialization."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
) -> None:
    """Compare online and offline vectors of the feature service; exit 1 on a difference."""
    from feature_pipeline.parity import check_parity

    result = check_parity(sample_size, _utc(as_of) if as_of else None, seed=seed)
    for difference in result["differences"]:
        err.print(f"DIFFERENT {difference}", highlight=False)
    print(json.dumps(result, indent=2, default=str))
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("backfill-events")
def backfill_events(
    until: Annotated[datetime, typer.Option(formats=INSTANT, help="State as of (exclusive).")],
) -> None:
    """Rebuild the online event state from the offline store as of UNTIL (exclusive)."""
    from feature_pipeline.event_backfill import backfill

    _emit("backfill-events", lambda: backfill(_utc(until)))


@app.command("repair-events")
def repair_events(
    until: Annotated[datetime, typer.Option(formats=INSTANT, help="State as of (exclusive).")],
    cards: Annotated[list[str] | None, typer.Option("--card", help="A card to repair.")] = None,
    merchants: Annotated[
        list[str] | None, typer.Option("--merchant", help="A merchant to repair.")
    ] = None,
    reset: Annotated[
        bool, typer.Option(help="Delete the keys first (also drops events bronze lacks).")
    ] = False,
) -> None:
    """Apply again the events of the named cards and merchants (the keys a consistency
    report names) from the offline store, as of UNTIL (exclusive)."""
    from feature_pipeline.event_backfill import repair

    if not cards and not merchants:
        raise typer.BadParameter("name at least one --card or --merchant")
    _emit("repair-events", lambda: repair(_utc(until), cards or [], merchants or [], reset))
