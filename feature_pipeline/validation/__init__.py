"""Great Expectations gates: a run validates each table before it publishes it.

``validate`` runs a table's gate on a Spark DataFrame and stores the result JSON and the
HTML data docs under ``validation/<gate>/<run_id>/``; ``enforce`` turns a failed report into
a :class:`ValidationGateError` that stops the run. The gates themselves are data, one spec
per table, in ``gates``.
"""

from feature_pipeline.validation.gates import GATES, Gate, GateThresholds, InSet, Ordered, Range
from feature_pipeline.validation.report import ValidationGateError, ValidationReport, enforce
from feature_pipeline.validation.runner import docs_key, result_key, validate

__all__ = [
    "GATES",
    "Gate",
    "GateThresholds",
    "InSet",
    "Ordered",
    "Range",
    "ValidationGateError",
    "ValidationReport",
    "docs_key",
    "enforce",
    "result_key",
    "validate",
]
