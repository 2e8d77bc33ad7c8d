"""Generated data and feature tables the training tests share.

The data lives under its own sub-prefix of the session's S3 prefix, so the feature
tables are not replaced by another suite's compute runs (the card profile table is
rewritten whole by every run), and it is built once per test session however many
modules ask for it. The Feast registry and the MLflow store are per module, in temporary
SQLite files: a module never sees another's registered models.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

START = date(2026, 3, 1)
DAYS = 21
END = START + timedelta(days=DAYS - 1)  # 2026-03-21
LABEL_INGEST_END = END + timedelta(days=30)
# Train on the first ten days (validation: the last three), test on the last four.
TRAIN_START, TRAIN_END = START, date(2026, 3, 10)
TEST_START, TEST_END = date(2026, 3, 18), END  # a 7-day gap: the label delay
VALIDATION_DAYS = 3

_built: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class TrainingEnv:
    prefix: str
    env: dict[str, str]
    generated: dict[str, Any]

    def s3(self):
        """The S3 settings of the training data (the suite's autouse fixture gives each
        test its own prefix, which these tables are not under)."""
        from fraud_platform.settings import S3Settings

        return S3Settings(prefix=self.prefix)


def build_feature_tables(spark, s3) -> dict[str, Any]:
    """Generate 28 days of transactions (2% fraud, so the windows hold enough frauds),
    ingest them into bronze and compute the feature tables (no validation gates:
    the feature pipeline's own suites test those)."""
    from feature_pipeline import bronze, pipeline
    from feature_pipeline.compute import compute_features

    started = time.perf_counter()
    generated = pipeline.generate(
        START, DAYS, n_cards=400, n_merchants=200, fraud_rate=0.02, seed=11
    )
    for feed in (bronze.TRANSACTIONS, bronze.CARDS, bronze.MERCHANTS):
        bronze.ingest_feed(spark, feed, START, END, s3)
    bronze.ingest_feed(spark, bronze.LABELS, START, LABEL_INGEST_END, s3)
    compute_features(spark, START, END, s3)
    return {
        "transactions": generated["rows_written"]["transactions"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def training_environment(
    stack_env: dict[str, str], spark, tmp_path_factory
) -> Iterator[TrainingEnv]:
    """The training tests' environment, for a module-scoped fixture to yield from: the
    data sub-prefix, a Feast registry applied to it, a private MLflow store and model
    name. The environment is restored afterwards; tests set ``FRAUD_S3_PREFIX`` back to
    ``prefix`` themselves (see :func:`use_training_prefix`)."""
    from fraud_platform.settings import S3Settings

    folder: Path = tmp_path_factory.mktemp("training")
    prefix = f"{stack_env['FRAUD_S3_PREFIX']}/training"
    env = {
        "FRAUD_S3_PREFIX": prefix,
        "FEAST_REGISTRY_PATH": f"sqlite:///{folder / 'registry.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "FRAUD_MODEL_NAME": f"fraud-detector-test-{uuid.uuid4().hex[:6]}",
        "FRAUD_MLFLOW_EXPERIMENT": f"fraud-detector-test-{uuid.uuid4().hex[:6]}",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        if prefix not in _built:
            _built[prefix] = build_feature_tables(spark, S3Settings(prefix=prefix))
        from feature_pipeline.feature_store import apply_definitions

        apply_definitions()
        yield TrainingEnv(prefix=prefix, env={**os.environ}, generated=_built[prefix])


def use_training_prefix(training_env: TrainingEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point ``FRAUD_S3_PREFIX`` at the training data for one test (after the suite's
    autouse fixture has set the test's own prefix)."""
    for key in (
        "FRAUD_S3_PREFIX",
        "FEAST_REGISTRY_PATH",
        "MLFLOW_TRACKING_URI",
        "FRAUD_MODEL_NAME",
        "FRAUD_MLFLOW_EXPERIMENT",
    ):
        monkeypatch.setenv(key, training_env.env[key])
