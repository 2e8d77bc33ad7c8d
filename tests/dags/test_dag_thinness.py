"""DAGs stay thin: each task makes one call into a pipeline package.

The work lives in the packages, where it is tested without Airflow; a task only turns its
run's context (days, params) into arguments, calls one package function and reports it.
Read from the DAG files' source, so a task that grows logic of its own fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
WORK_PACKAGES = ("feature_pipeline", "training_pipeline", "inference_pipeline", "fraud_platform")
# Helpers that report or schedule a call rather than do the work.
PLUMBING = {"fraud_platform.run_metrics", "fraud_platform.dag_defaults"}
MAX_STATEMENTS = 12


def is_task(decorator: ast.expr) -> bool:
    """``@task`` or ``@task(...)``."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Name) and target.id == "task"


def tasks(path: Path) -> list[ast.FunctionDef]:
    return [
        node
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.FunctionDef) and any(map(is_task, node.decorator_list))
    ]


def package_calls(function: ast.FunctionDef) -> set[str]:
    """Names of package functions (or modules) imported in the task and then called."""
    imported: dict[str, str] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in WORK_PACKAGES and node.module not in PLUMBING:
                for alias in node.names:
                    imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    called = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            target = node.func
            while isinstance(target, ast.Attribute):
                target = target.value  # module.function(...): the imported module's name
            if isinstance(target, ast.Name) and target.id in imported:
                called.add(ast.unparse(node.func))
    return called


TASKS = [(path.name, t) for path in sorted(PIPELINES.glob("*.py")) for t in tasks(path)]


def test_every_dag_file_has_tasks() -> None:
    assert {name for name, _ in TASKS} >= {"feature_pipeline.py", "training.py"}


@pytest.mark.parametrize(("dag_file", "task"), TASKS, ids=[f"{n}:{t.name}" for n, t in TASKS])
def test_task_makes_one_package_call(dag_file: str, task: ast.FunctionDef) -> None:
    calls = package_calls(task)
    assert len(calls) == 1, f"{dag_file}:{task.name} calls {sorted(calls) or 'no package'}"
    statements = sum(isinstance(n, ast.stmt) for n in ast.walk(task)) - 1
    assert statements <= MAX_STATEMENTS, f"{dag_file}:{task.name} has {statements} statements"


def test_the_check_sees_a_fat_task() -> None:
    fat = ast.parse(
        "@task\ndef t():\n    from feature_pipeline import pipeline\n"
        "    pipeline.ingest(1, 2)\n    pipeline.compute(1, 2)\n"
    ).body[0]
    assert isinstance(fat, ast.FunctionDef)
    assert package_calls(fat) == {"pipeline.ingest", "pipeline.compute"}
