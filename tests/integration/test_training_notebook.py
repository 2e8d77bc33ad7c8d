"""``notebooks/training.ipynb`` runs top to bottom on the generated test data.

The parameters cell is replaced by the test's windows (as papermill would), and the
notebook is executed in a fresh kernel with nbclient, in the test's environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.training_fixtures import (
    TEST_END,
    TEST_START,
    TRAIN_END,
    TRAIN_START,
    VALIDATION_DAYS,
    TrainingEnv,
    training_environment,
    use_training_prefix,
)

pytestmark = pytest.mark.integration

NOTEBOOK = REPO_ROOT / "notebooks" / "training.ipynb"


@pytest.fixture(scope="module")
def training_env(stack_env, spark, tmp_path_factory) -> Iterator[TrainingEnv]:
    yield from training_environment(stack_env, spark, tmp_path_factory)


def test_notebook_trains_and_registers(training_env: TrainingEnv, tmp_path, monkeypatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    use_training_prefix(training_env, monkeypatch)  # the kernel inherits the environment
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and notebook.cells.index(parameters[0]) == 1, (
        "the parameters must be the first code cell"
    )
    parameters[0].source = "\n".join(
        [
            parameters[0].source,
            "# Injected by the test",
            f"TRAIN_START, TRAIN_END = {TRAIN_START.isoformat()!r}, {TRAIN_END.isoformat()!r}",
            f"TEST_START, TEST_END = {TEST_START.isoformat()!r}, {TEST_END.isoformat()!r}",
            f"VALIDATION_DAYS = {VALIDATION_DAYS}",
        ]
    )
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    outputs = "\n".join(
        json.dumps(output.get("data", {}).get("text/plain", output.get("text", "")))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert "error" not in {
        o.get("output_type") for c in notebook.cells for o in c.get("outputs", [])
    }
    # The last cell shows the registration and its alias decision.
    assert "'decision': 'champion'" in outputs or "'decision': 'challenger'" in outputs
    assert "image/png" in {
        key for c in notebook.cells for o in c.get("outputs", []) for key in o.get("data", {})
    }
    assert not (tmp_path / "mlruns").exists()
