"""Synthetic card transactions, reference data and delayed fraud labels.

``generate(config)`` builds the feeds in memory; ``generate_to_landing(config)`` also lands
them on S3 as the raw files the feature pipeline ingests. Heavy modules (boto3, rich) are
imported only by the functions that need them.
"""

from __future__ import annotations

from feature_pipeline.generate.config import SCENARIOS, GeneratorConfig, ScenarioName
from feature_pipeline.generate.generator import GeneratedData, generate
from feature_pipeline.generate.landing import generate_to_landing, write_landing

__all__ = [
    "SCENARIOS",
    "GeneratedData",
    "GeneratorConfig",
    "ScenarioName",
    "generate",
    "generate_to_landing",
    "write_landing",
]
