"""What each fault of the suite did and what was observed, and how the suite reports it:
one table, then one JSON line (the last line) for CI and the runbook."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_FILE = Path(".local/faults/results.json")
"""Where the pytest run leaves the outcomes for ``python -m tests.faults.report``."""


@dataclass
class FaultOutcome:
    """One fault: what was done, what should happen, what did, and the damage counted."""

    fault: str
    action: str
    expected: str
    test: str
    observed: str = "not reached"
    survived: bool = False
    records_lost: int = 0
    records_duplicated: int = 0
    server_errors: int = 0
    """Responses with a 5xx status other than the 503 the API sends by design."""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary(outcomes: list[FaultOutcome]) -> dict[str, Any]:
    """The JSON line: totals over the faults and each fault's outcome."""
    return {
        "faults": len(outcomes),
        "survived": sum(o.survived for o in outcomes),
        "records_lost": sum(o.records_lost for o in outcomes),
        "records_duplicated": sum(o.records_duplicated for o in outcomes),
        "server_errors": sum(o.server_errors for o in outcomes),
        "results": [o.as_dict() for o in outcomes],
    }


def save(outcomes: list[FaultOutcome], path: Path = RESULTS_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([o.as_dict() for o in outcomes], default=str, indent=1))


def load(path: Path = RESULTS_FILE) -> list[FaultOutcome]:
    if not path.exists():
        return []
    return [FaultOutcome(**row) for row in json.loads(path.read_text())]
