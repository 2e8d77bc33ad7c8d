"""Every variable a settings class reads is documented in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from feature_pipeline.validation import GateThresholds
from fraud_platform.devstack.config import StackConfig
from fraud_platform.settings import MLflowSettings, RedisSettings, S3Settings, SparkSettings
from inference_pipeline.feature_log import FeatureLogSettings
from inference_pipeline.settings import ApiSettings, ModelSettings
from training_pipeline.settings import TrainingSettings

pytestmark = pytest.mark.static

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
SETTINGS: list[type[BaseSettings]] = [
    S3Settings,
    RedisSettings,
    SparkSettings,
    MLflowSettings,
    GateThresholds,
    StackConfig,
    TrainingSettings,
    ModelSettings,
    ApiSettings,
    FeatureLogSettings,
]


def variables_read_by(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def test_every_settings_variable_is_documented() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    missing = {
        settings.__name__: sorted(variables_read_by(settings) - documented) for settings in SETTINGS
    }
    assert {k: v for k, v in missing.items() if v} == {}
