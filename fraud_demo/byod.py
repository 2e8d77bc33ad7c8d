"""``make byod``: the whole loop on an external transaction source, in one command.

Ingest the mapped source into bronze, compute the feature tables, apply the Feast
definitions, train over the named windows (registering the model), batch-score a named
range with the champion, and report the model's metrics (AUC ROC, average precision,
card precision@k) on the test window and on the scored range, with each step's time.

    python -m fraud_demo.byod --source mapping.yaml --train 2026-02-01:2026-02-21 \\
        --test 2026-03-01:2026-03-07 --score 2026-03-08:2026-03-10

The run keeps to its own S3 prefix, Feast registry and MLflow experiment and model name
(``--prefix``, default ``byod``), so the generated demo's data and models are untouched.
See docs/external-sources.md.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from feature_pipeline.features.card_transactions import LOOKBACK_SECONDS

app = typer.Typer(add_completion=False, help="The whole loop on an external source.")
err = Console(stderr=True)


@dataclass(frozen=True)
class Days:
    """A range of days, both included, written ``first:last`` (``yyyy-mm-dd``)."""

    first: date
    last: date

    @classmethod
    def parse(cls, text: str) -> Days:
        first, _, last = text.partition(":")
        days = cls(date.fromisoformat(first), date.fromisoformat(last or first))
        if days.last < days.first:
            raise typer.BadParameter(f"{text}: the last day is before the first")
        return days

    def each(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def isolate(prefix: str, project_dir: Path) -> dict[str, str]:
    """This run's own S3 prefix, Feast registry and MLflow names, in ``os.environ``
    (every pipeline reads its settings from there when it runs)."""
    name = prefix.replace("/", "-")
    env = {
        "FRAUD_S3_PREFIX": prefix,
        "FEAST_REGISTRY_PATH": f"sqlite:///{project_dir / '.local' / 'feast' / name}.db",
        "FRAUD_MODEL_NAME": f"fraud-detector-{name}",
        "FRAUD_MLFLOW_EXPERIMENT": f"fraud-detector-{name}",
    }
    (project_dir / ".local" / "feast").mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    return env


def scored_metrics(days: Days, k: int) -> dict[str, Any]:
    """The champion's batch scores of ``days`` against every label in bronze."""
    import pandas as pd

    from inference_pipeline.batch import read_predictions
    from training_pipeline import dataset, evaluate, metrics

    predictions = pd.concat([read_predictions(day) for day in days.each()], ignore_index=True)
    labels = dataset.read_labels(None, since=days.first)[["transaction_id", "is_fraud"]]
    frame = predictions.merge(labels, on="transaction_id", how="inner")
    frame["transaction_timestamp"] = pd.to_datetime(frame["transaction_timestamp"], utc=True)
    evaluated = evaluate.evaluation_frame(frame, {"score": frame["fraud_probability"]})
    return {
        "rows": len(predictions),
        "labelled": len(frame),
        "frauds": int(frame["is_fraud"].sum()),
        "xgboost": metrics.metric_table(evaluated, "score", k=k),
    }


def loop(
    source: Path,
    train: Days,
    test: Days,
    score: Days,
    validation_days: int,
    label_delay_days: float,
    k: int,
    step: Callable[[str, Callable[[], Any]], Any],
) -> dict[str, Any]:
    """Every step of the loop through ``step(name, action)`` (which times it)."""
    from feature_pipeline import pipeline as features
    from feature_pipeline.feature_store import apply_definitions
    from fraud_platform.spark import build_spark_session
    from inference_pipeline.batch import score_day
    from training_pipeline import pipeline as training

    last = max(test.last, score.last)
    history = train.first - timedelta(seconds=LOOKBACK_SECONDS)
    spark = step("spark session", lambda: build_spark_session("byod"))
    out: dict[str, Any] = {}
    out["ingest"] = step("ingest", lambda: features.ingest(history, last, source, spark))
    out["features"] = step("features", lambda: features.compute(train.first, last, spark=spark))
    out["feast_apply"] = step("feast apply", apply_definitions)
    out["training"] = step(
        "training",
        lambda: training.run(
            train.first,
            train.last,
            test.first,
            test.last,
            validation_days=validation_days,
            label_delay=timedelta(days=label_delay_days),
            card_precision_k=k,
        ),
    )
    out["scoring"] = step("batch scoring", lambda: [score_day(day) for day in score.each()])
    out["scored_metrics"] = step("metrics", lambda: scored_metrics(score, k))
    return out


def report(result: dict[str, Any], seconds: dict[str, float], k: int) -> Table:
    """The metrics table: the model and the amount rule on the test window, the champion
    on the scored range."""
    names = ("roc_auc", "average_precision", f"card_precision_at_{k}")
    table = Table(title="External source: model metrics", title_justify="left")
    for column in ("window", "score", "rows", "frauds", *names):
        table.add_column(column.replace("_", " "), justify="right")
    test = result["training"]["counts"]["test"]
    for score, values in result["training"]["metrics"].items():
        table.add_row(
            "test",
            score,
            f"{test['rows']:,}",
            f"{test['frauds']:,}",
            *[f"{values[n]:.4f}" for n in names],
        )
    scored = result["scored_metrics"]
    table.add_row(
        "scored",
        "champion",
        f"{scored['labelled']:,}",
        f"{scored['frauds']:,}",
        *[f"{scored['xgboost'][n]:.4f}" for n in names],
    )
    table.caption = "seconds: " + ", ".join(f"{n} {s:.0f}" for n, s in seconds.items())
    return table


@app.command()
def main(
    source: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="The column mapping (YAML or JSON).")
    ],
    train: Annotated[str, typer.Option(help="Training days first:last.")],
    test: Annotated[str, typer.Option(help="Test days first:last.")],
    score: Annotated[str, typer.Option(help="Days to batch-score first:last.")],
    validation_days: Annotated[int, typer.Option(min=1)] = 3,
    label_delay_days: Annotated[
        float,
        typer.Option(
            min=0.0, help="Gap the labels need: test-start minus this is the label cutoff."
        ),
    ] = 7.0,
    card_precision_k: Annotated[int, typer.Option(min=1)] = 10,
    prefix: Annotated[
        str, typer.Option(help="S3 prefix and name of this run's data, registry and model.")
    ] = "byod",
    project_dir: Annotated[Path, typer.Option(help="The repository root.")] = Path("."),
) -> None:
    """Ingest, features, feast apply, training, batch scoring and metrics of a source."""
    import logging

    from pydantic import ValidationError

    from feature_pipeline.sources import SourceError
    from feature_pipeline.validation import ValidationGateError
    from training_pipeline.preflight import ConfigurationError

    logging.basicConfig(level=logging.WARNING)
    windows = Days.parse(train), Days.parse(test), Days.parse(score)
    isolate(prefix, project_dir.resolve())
    seconds: dict[str, float] = {}

    def step(name: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        with err.status(f"{name}..."):
            value = action()
        seconds[name] = round(time.perf_counter() - started, 1)
        err.print(f"[green]done[/green] {name} in {seconds[name]:.1f}s")
        return value

    try:
        result = loop(source, *windows, validation_days, label_delay_days, card_precision_k, step)
    except (SourceError, ValidationError, ValidationGateError, ConfigurationError) as exc:
        err.print(f"[red]stopped:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    empty = result["features"].get("empty_for_lack_of_reference_data") or []
    if empty:
        err.print(
            f"no reference data in the source: {', '.join(empty)} published empty, "
            "its features are null for every row"
        )
    err.print(report(result, seconds, card_precision_k))
    print(json.dumps(summary(result, seconds, empty), indent=2, default=str))


def summary(result: dict[str, Any], seconds: dict[str, float], empty: list[str]) -> dict:
    """The loop's counts, metrics and timings, as the one JSON object the command prints."""
    return {
        "ingest": {
            feed: {k: v for k, v in counts.items() if k != "outputs"}
            for feed, counts in result["ingest"]["feeds"].items()
        },
        "feature_rows": result["features"]["rows"],
        "empty_for_lack_of_reference_data": empty,
        "training_counts": result["training"]["counts"],
        "test_metrics": result["training"]["metrics"],
        "scored": result["scored_metrics"],
        "model": {key: result["training"].get(key) for key in ("version", "alias")},
        "seconds": seconds,
    }


if __name__ == "__main__":
    app()
