"""Print the fault suite's table and its JSON line; exit non-zero unless every fault ran
and was survived. ``make faults`` runs it after pytest:
``python -m tests.faults.report --pytest-status $?``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tests.faults.outcomes import RESULTS_FILE, FaultOutcome, load, summary


def table(outcomes: list[FaultOutcome]) -> Table:
    view = Table(title="Fault suite", show_lines=True)
    for column in ("fault", "what was done", "expected", "observed"):
        view.add_column(column, overflow="fold")
    for column in ("survived", "lost", "dup", "5xx"):
        view.add_column(column, justify="right")
    for o in outcomes:
        view.add_row(
            o.fault,
            o.action,
            o.expected,
            o.observed,
            "[green]yes[/]" if o.survived else "[red]NO[/]",
            str(o.records_lost),
            str(o.records_duplicated),
            str(o.server_errors),
        )
    return view


def main(
    results: Annotated[Path, typer.Argument()] = RESULTS_FILE,
    pytest_status: Annotated[int, typer.Option(help="pytest's exit status.")] = 0,
) -> None:
    outcomes = load(results)
    Console(width=200).print(table(outcomes))
    line = summary(outcomes)
    line["pytest_status"] = pytest_status
    passed = (
        pytest_status == 0
        and bool(outcomes)
        and line["survived"] == line["faults"]
        and line["records_lost"] == line["records_duplicated"] == line["server_errors"] == 0
    )
    print(json.dumps(line, default=str), flush=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    typer.run(main)
