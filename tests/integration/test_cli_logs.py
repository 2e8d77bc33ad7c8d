"""The feature and training CLIs log as the rest of the project does: one JSON object a
line on stderr, each with the run's id and command; stdout keeps the run's metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _log_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_feature_pipeline_logs_json_lines_with_its_run_id(stack_env: dict[str, str]) -> None:
    done = _run(
        "feature-pipeline", "generate", "--start", "2026-01-01", "--days", "1", "--cards", "10"
    )
    assert done.returncode == 0, done.stderr
    lines = _log_lines(done.stderr)
    assert any(line["event"].startswith("generated ") for line in lines)
    assert {line["command"] for line in lines} == {"feature-pipeline generate"}
    assert len({line["run_id"] for line in lines}) == 1
    assert json.loads(done.stdout)["rows"]["transactions"] > 0


def test_training_pipeline_logs_json_lines_with_its_run_id(stack_env: dict[str, str]) -> None:
    # Nothing under this test's S3 prefix: the run stops at its preflight, after logging.
    days = ["--train-start", "2026-01-01", "--train-end", "2026-01-07"]
    days += ["--test-start", "2026-01-15", "--test-end", "2026-01-16"]
    done = _run("training-pipeline", "run", *days)
    assert done.returncode == 2, done.stderr
    lines = _log_lines(done.stderr)
    assert any(line["event"].startswith("training ") for line in lines)
    assert {line["command"] for line in lines} == {"training-pipeline run"}
    assert len({line["run_id"] for line in lines}) == 1
    assert all(line["timestamp"].endswith("Z") for line in lines)
