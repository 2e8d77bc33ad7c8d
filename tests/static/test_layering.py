"""The layering that import-linter cannot see: ``feature_repo/`` is a Feast repo, not a
package, so its imports are walked here. It may import Feast, the standard library, its own
modules and the shared contract (``fraud_platform``), never a pipeline: the definitions are
what every pipeline reads, so they must not depend on any of them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.static

REPO_ROOT = Path(__file__).resolve().parents[2]
FEATURE_REPO = REPO_ROOT / "feature_repo"
ALLOWED_THIRD_PARTY = {"feast", "pandas", "numpy", "pyarrow"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_feature_repo_imports_only_the_contract() -> None:
    own = {path.stem for path in FEATURE_REPO.glob("*.py")}
    allowed = own | ALLOWED_THIRD_PARTY | set(sys.stdlib_module_names) | {"fraud_platform"}
    offending = {
        path.name: sorted(imported_roots(path) - allowed) for path in FEATURE_REPO.glob("*.py")
    }
    assert {name: roots for name, roots in offending.items() if roots} == {}


def test_walker_sees_a_pipeline_import(tmp_path: Path) -> None:
    module = tmp_path / "view.py"
    module.write_text("from feature_pipeline.layout import SILVER\nimport feast.types\n")
    assert imported_roots(module) == {"feature_pipeline", "feast"}


def test_import_contracts_hold() -> None:
    """The package contracts of ``pyproject.toml`` ([tool.importlinter]) are kept."""
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(linter), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "0 broken" in result.stdout
