"""Modules a reader can hold in mind: no function over 60 lines and no module over 400 lines
in the project's code, unless a ``# long: <reason>`` line says why at its top (for a
function, between its ``def`` line and its first statement; for a module, among its first 15
lines). Counted from the ``def`` line to the last line of the body, docstring included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.static

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "fraud_platform",
    "feature_pipeline",
    "feature_repo",
    "training_pipeline",
    "inference_pipeline",
    "fraud_demo",
    "pipelines",
    "benchmarks",
)
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
MARKER = "# long:"


def oversized(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """The functions and the module in ``path`` over their limit without a reason line."""
    text = path.read_text()
    lines = text.splitlines()
    found: list[str] = []
    if len(lines) > MAX_MODULE_LINES and not any(
        line.strip().startswith(MARKER) for line in lines[:15]
    ):
        found.append(f"{path.relative_to(root)}: module of {len(lines)} lines")
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        head = lines[node.lineno - 1 : node.body[0].lineno - 1]
        if length > MAX_FUNCTION_LINES and not any(
            line.strip().startswith(MARKER) for line in head
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length})")
    return found


def test_functions_and_modules_fit_on_a_screen_or_say_why() -> None:
    found = [
        item
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        for item in oversized(path)
    ]
    assert found == []


def test_the_check_sees_a_long_function_and_its_reason(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    probe = tmp_path / "probe.py"
    probe.write_text(f"def f():\n{body}\n")
    assert [item.split(" ")[1] for item in oversized(probe, tmp_path)] == ["f"]
    probe.write_text(f"def f():\n    # long: a probe of the check\n{body}\n")
    assert oversized(probe, tmp_path) == []
