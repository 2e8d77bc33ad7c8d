"""``training-pipeline run`` fails on configuration in seconds, before the training set.

Each setting the preflight checks is broken in turn on the real stack (S3 server, the Feast
registry applied to the training data, MLflow's SQLite tracking store). The command must
exit with code 2 and one line (besides its JSON log records) naming the problem and the
setting to change, and the point-in-time training set, the expensive step, must not have
been started: the real ``pipeline.prepare`` is wrapped to count its calls. Without the
preflight in the pipeline each case either gets that far or fails otherwise, and the test
fails.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

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

SECONDS = 30
"""What "fails in seconds" allows, on a loaded two-core machine."""


@pytest.fixture(scope="module")
def training_env(stack_env, spark, tmp_path_factory) -> Iterator[TrainingEnv]:
    yield from training_environment(stack_env, spark, tmp_path_factory)


@pytest.fixture(autouse=True)
def _training_prefix(training_env: TrainingEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    use_training_prefix(training_env, monkeypatch)


@pytest.fixture
def prepare_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Calls of the real ``pipeline.prepare`` (it runs as usual), in order."""
    from training_pipeline import pipeline

    calls: list[Any] = []
    real: Callable[..., Any] = pipeline.prepare

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "prepare", counted)
    return calls


def _run(*options: str) -> tuple[int, str, float]:
    """``training-pipeline run`` over the training data's windows: exit code, output,
    seconds."""
    from training_pipeline.cli import app

    args = [
        "run",
        f"--train-start={TRAIN_START}",
        f"--train-end={TRAIN_END}",
        f"--test-start={TEST_START}",
        f"--test-end={TEST_END}",
        f"--validation-days={VALIDATION_DAYS}",
        *options,
    ]
    started = time.perf_counter()
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output, time.perf_counter() - started


def _message_lines(output: str) -> list[str]:
    """The output's lines other than the JSON log records (each of which must parse)."""
    lines = []
    for line in filter(str.strip, output.splitlines()):
        if line.startswith("{"):
            json.loads(line)
        else:
            lines.append(line)
    return lines


def _misplaced_experiment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing experiment whose artifacts live under another prefix."""
    from fraud_platform.model_registry import client
    from fraud_platform.settings import S3Settings

    name = f"elsewhere-{uuid.uuid4().hex[:6]}"
    client().create_experiment(name, artifact_location=f"s3://{S3Settings().bucket}/other/mlflow")
    monkeypatch.setenv("FRAUD_MLFLOW_EXPERIMENT", name)


def _unreachable_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


def _unreadable_registry(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("registry")
    monkeypatch.setenv("FEAST_REGISTRY_PATH", f"sqlite:///{folder / 'missing' / 'registry.db'}")


CASES: dict[str, tuple[Callable[..., None] | None, list[str], list[str]]] = {
    # name: (environment change, extra CLI options, what the line must name)
    "experiment_elsewhere": (
        _misplaced_experiment,
        [],
        ["stores artifacts at", "/other/mlflow", "FRAUD_MLFLOW_EXPERIMENT"],
    ),
    "s3_unreachable": (_unreachable_s3, [], ["127.0.0.1:9", "unreachable", "FRAUD_S3_"]),
    "bucket_missing": (
        lambda mp: mp.setenv("FRAUD_S3_BUCKET", "no-such-bucket-preflight"),
        [],
        ["no-such-bucket-preflight", "FRAUD_S3_"],
    ),
    "no_bronze_labels": (
        lambda mp: mp.setenv("FRAUD_S3_PREFIX", f"empty-{uuid.uuid4().hex[:6]}"),
        [],
        ["no bronze labels", "FRAUD_S3_PREFIX"],
    ),
    "registry_unreadable": (
        _unreadable_registry,
        [],
        ["Feast registry cannot be read", "FEAST_REGISTRY_PATH"],
    ),
    "feature_service_missing": (
        None,
        ["--feature-service=fraud_detection_v999"],
        ["fraud_detection_v999", "make feast-apply", "FRAUD_FEATURE_SERVICE"],
    ),
    "windows_closer_than_the_label_delay": (
        None,
        ["--label-delay-days=30"],
        ["shorter than the label delay", "--label-delay-days"],
    ),
    "model_name_invalid": (
        None,
        ["--model-name=fraud/detector"],
        ["fraud/detector", "FRAUD_MODEL_NAME"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_configuration_fails_in_seconds_before_the_training_set(
    case: str,
    prepare_calls: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory,
) -> None:
    change, options, named = CASES[case]
    if change is _unreadable_registry:
        change(monkeypatch, tmp_path_factory)
    elif change is not None:
        change(monkeypatch)
    code, output, seconds = _run(*options)
    lines = _message_lines(output)
    assert code == 2, output
    assert prepare_calls == [], "the training set was started before the configuration failed"
    assert seconds < SECONDS, f"{case} took {seconds:.1f}s to fail"
    assert len(lines) == 1 and lines[0].startswith("configuration: "), output
    for fragment in named:
        assert fragment in lines[0], (fragment, lines[0])


def test_a_sound_configuration_reaches_the_training_set(prepare_calls: list[Any]) -> None:
    """The same command with nothing broken gets past the preflight to the training set:
    what the cases above count is a call that happens."""
    code, output, _ = _run("--no-register")
    assert code == 0, output
    assert len(prepare_calls) == 1
