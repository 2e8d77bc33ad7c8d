"""``training-pipeline``: train, evaluate and register the fraud model from the command line.

``training-pipeline run`` prints the metric table (model against the amount rule on the
test window) and the alias decision on stderr, and the run's metadata as JSON on stdout;
its logs are JSON lines on stderr with the run's id (``fraud_platform.logs``).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Training pipeline: point-in-time training set -> XGBoost -> MLflow.")
err = Console(stderr=True, soft_wrap=True)  # log lines through the bars stay one line

Day = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"])]


QUIET = ("botocore", "urllib3", "alembic", "dask", "numba", "feast")
"""Libraries whose INFO lines say nothing about the run."""


@app.callback()
def main(
    ctx: typer.Context, verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False
) -> None:
    """Logs as JSON lines on stderr, each with the run's id and command."""
    from fraud_platform.logs import start_command

    start_command(f"training-pipeline {ctx.invoked_subcommand}", verbose, quiet=QUIET)


def metric_table(result: dict[str, Any], title: str = "test window") -> Table:
    """The metrics of each score as a rich table (one row per model)."""
    rows = result["metrics"]
    names = list(next(iter(rows.values())).keys())
    table = Table(title=f"Metrics on the {title}", title_justify="left")
    table.add_column("score")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    for score, values in rows.items():
        table.add_row(score, *[_fmt(values.get(name)) for name in names])
    return table


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


@app.command()
def run(
    train_start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First training day (UTC).")
    ],
    train_end: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="Last training day, included.")
    ],
    test_start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First test day: the training cutoff.")
    ],
    test_end: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="Last test day, included.")
    ],
    validation_days: Annotated[int, typer.Option(min=1)] = 3,
    label_delay_days: Annotated[float, typer.Option(min=0.0)] = 7.0,
    test_labels_known_at: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
            help="Only test labels known by then (default: all).",
        ),
    ] = None,
    feature_service: Annotated[str | None, typer.Option(help="Feast feature service.")] = None,
    model_name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
    card_precision_k: Annotated[int, typer.Option(min=1)] = 10,
    folds: Annotated[int, typer.Option(min=0, help="Extra prequential folds.")] = 0,
    register: Annotated[bool, typer.Option(help="Log to MLflow and gate the alias.")] = True,
    genuine_fraction: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=1.0,
            help="Share of the genuine training rows boosting reads (every fraud is read).",
        ),
    ] = 1.0,
) -> None:
    # long: fifteen options, each declared with its type and help; the body is one call
    """Train on [train-start, train-end], test on [test-start, test-end], register."""
    from training_pipeline import pipeline, progress
    from training_pipeline.preflight import ConfigurationError
    from training_pipeline.train import XGBConfig

    known_at = test_labels_known_at.replace(tzinfo=UTC) if test_labels_known_at else None
    with progress.shown(err):
        try:
            result = pipeline.run(
                train_start.date(),
                train_end.date(),
                test_start.date(),
                test_end.date(),
                validation_days=validation_days,
                label_delay=timedelta(days=label_delay_days),
                test_labels_known_at=known_at,
                feature_service=feature_service,
                model_name=model_name,
                card_precision_k=card_precision_k,
                folds=folds,
                register=register,
                config=XGBConfig(genuine_fraction=genuine_fraction),
            )
        except ConfigurationError as exc:
            # Checked before any expensive work: the setting to change, not a traceback.
            err.print(f"[red]configuration:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from exc
    _report(result)
    print(json.dumps(result, indent=2, default=str))


def _report(result: dict[str, Any]) -> None:
    """The run on stderr: the metric table, row counts, thresholds and the alias decision."""
    err.print(metric_table(result))
    counts = result["counts"]
    err.print(
        f"rows: labelled {counts['labelled']:,}, without any feature "
        f"{counts['all_features_missing']:,}; fit {counts['fit']}, "
        f"validation {counts['validation']}, test {counts['test']}"
    )
    thresholds = result["thresholds"]
    err.print(f"thresholds: review {thresholds['review']}, decline {thresholds['decline']}")
    if "mlflow" in result:
        decision = result["mlflow"]
        err.print(
            f"{decision['model_name']} v{decision['version']} -> "
            f"[bold]{decision['decision']}[/bold]: {decision['reason']}"
        )


if __name__ == "__main__":
    app()
