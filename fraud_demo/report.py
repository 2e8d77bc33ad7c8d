"""What the demo prints between its steps: the feature pipeline's rows per stage, the
scored examples, the drift report's verdict, and where to look next."""

from __future__ import annotations

from datetime import date
from typing import Any

from rich.console import Console
from rich.table import Table

from fraud_platform.devstack.stack import LocalStack


def summarise(console: Console, generated: dict, features: dict, first: date, last: date) -> None:
    """Rows per stage, and where records went."""
    table = Table(title=f"Feature pipeline, {first} .. {last}")
    table.add_column("stage")
    table.add_column("rows", justify="right")
    table.add_column("detail")
    table.add_row(
        "landing (generated)",
        f"{generated['rows']['transactions']:,}",
        f"fraud rate {generated['fraud']['rate']:.2%}",
    )
    for feed, counts in features["ingest"].items():
        table.add_row(
            f"bronze/{feed}",
            f"{counts['bronze']:,}",
            f"read {counts['read']:,}, quarantined {counts['quarantined']:,}, "
            f"duplicates {counts['duplicates']:,}",
        )
    for name, rows in features["compute"].items():
        table.add_row(f"silver/{name}", f"{rows:,}", "validated by its gate")
    online = features["materialize"]
    table.add_row(
        "redis (online store)",
        f"{online['keys_written']:,}",
        f"keys written, {online['keys_per_s'] or 0:,} keys/s",
    )
    console.print(table)


def examples_table(examples: dict[str, Any]) -> Table:
    """The scored examples: truth, card, amount, probability, decision and flags."""
    table = Table(title="Held-back transactions scored by the API", title_justify="left")
    for column in ("truth", "card", "amount", "fraud probability", "decision", "flags"):
        table.add_column(
            column, justify="right" if column in ("amount", "fraud probability") else "left"
        )
    for kind, body, score in examples["rows"]:
        flags = [name for name in ("card_unknown", "merchant_unknown") if score[name]]
        style = (
            "red"
            if score["decision"] == "decline"
            else ("yellow" if score["decision"] == "review" else "green")
        )
        table.add_row(
            kind,
            body["card_id"],
            f"{body['amount']:,.2f}",
            f"{score['fraud_probability']:.4f}",
            f"[{style}]{score['decision']}[/{style}]",
            ", ".join(flags) or "-",
        )
    return table


def drift_summary(console: Console, drift: dict[str, Any]) -> None:
    """The drift report's verdict with its figures, the features that drifted (or the
    alerts, which name them), and where the report is."""
    verdict = "[red]flagged[/red]" if drift["alerts"] else "[green]within its thresholds[/green]"
    figures = ", ".join(
        f"{name} {value:.3f}" if value is not None else f"{name} n/a"
        for name, value in (
            ("score PSI", drift["score_drift"]),
            ("average precision", drift["average_precision"]),
            ("recall at review", drift["recall_at_review"]),
        )
    )
    console.print(
        f"Drift of {drift['day']} against model v{drift['model_version']}'s training set "
        f"({drift['rows']:,} rows): {verdict}; {figures}"
    )
    for alert in drift["alerts"]:
        console.print(f"  [red]alert[/red] {alert}")
    if drift["alerts"]:
        console.print(
            "  (expected here: the demo's history is shorter than the 30-day windows, which"
            " were still filling on the training days, so long-window counts and sums drift"
            " upward; an ordinary day after a full history is not flagged)"
        )
    if not drift["alerts"]:
        drifted = [name.split("__")[-1] for name in drift["drifted_features"]]
        console.print(f"  features drifted: {len(drifted)} ({', '.join(drifted) or 'none'})")
    console.print(f"  report: {drift['report']}drift_report.html")


def where_next(console: Console, url: str, stack: LocalStack) -> None:
    """The UIs and commands to try after the demo."""
    console.print("Where to look next:")
    console.print(
        f"  API docs        {url}/docs  (header X-API-Key: FRAUD_API_KEY in "
        f"{stack.config.env_file})"
    )
    console.print("  MLflow UI       make mlflow   -> http://127.0.0.1:5000")
    console.print("  Airflow UI      make airflow  -> http://127.0.0.1:8080")
    console.print("  dashboard       make monitor  (the panels' queries, answered by Prometheus)")
    console.print("  stop everything make down")
