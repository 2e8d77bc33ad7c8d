"""What a gate found, in a form a person and a run's metadata can both use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Keyword arguments of an expectation that say what was checked, not what was required.
_SUBJECT_KWARGS = frozenset(
    {
        "batch_id",
        "column",
        "column_list",
        "column_A",
        "column_B",
        "result_format",
        "catch_exceptions",
        "include_config",
        "ignore_row_if",
        "row_condition",
        "condition_parser",
        "meta",
        "notes",
        "description",
        "severity",
        "rendered_content",
        "windows",
        "id",
    }
)


@dataclass
class ValidationReport:
    """The outcome of one gate on one run.

    Attributes:
        success: Whether every expectation held.
        gate: The gate's name.
        run_id: The run it belongs to.
        statistics: ``evaluated``, ``successful``, ``unsuccessful`` expectation counts and
            ``success_percent``.
        failures: One readable line per unsuccessful expectation.
        result_uri: The full validation result (JSON) on S3.
        docs_uri: The data docs' ``index.html`` on S3, or None if they could not be built.
        row_count: Rows in the validated frame, when GX computed it.
        duration_s: Time spent validating and storing the results.
    """

    success: bool
    gate: str
    run_id: str
    statistics: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    result_uri: str | None = None
    docs_uri: str | None = None
    row_count: int | None = None
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe metadata for the run's record (and Airflow's XCom)."""
        return {
            "success": self.success,
            "gate": self.gate,
            "run_id": self.run_id,
            "statistics": dict(self.statistics),
            "failures": list(self.failures),
            "result_uri": self.result_uri,
            "docs_uri": self.docs_uri,
            "row_count": self.row_count,
            "duration_s": round(self.duration_s, 2),
        }

    def summary(self) -> str:
        """A few lines for logs and error messages."""
        stats = self.statistics
        verdict = "passed" if self.success else "FAILED"
        lines = [
            f"gate {self.gate} {verdict} (run {self.run_id}): "
            f"{stats.get('successful', 0)} of {stats.get('evaluated', 0)} expectations held, "
            f"{stats.get('unsuccessful', 0)} failed"
            + (f", {self.row_count} rows" if self.row_count is not None else ""),
            *(f"  - {failure}" for failure in self.failures),
        ]
        if self.result_uri:
            lines.append(f"  result: {self.result_uri}")
        if self.docs_uri:
            lines.append(f"  data docs: {self.docs_uri}")
        return "\n".join(lines)


class ValidationGateError(RuntimeError):
    """A gate failed: the run must stop before it publishes anything."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report


def enforce(report: ValidationReport) -> ValidationReport:
    """Return ``report`` if its gate passed.

    Raises:
        ValidationGateError: with the report's summary as its message, if it failed.
    """
    if not report.success:
        raise ValidationGateError(report)
    return report


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple) and len(value) > 8:
        return "[" + ", ".join(_fmt(v) for v in value[:8]) + f", ... ({len(value)} values)]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def describe_failure(result: dict[str, Any]) -> str:
    """One line for an unsuccessful expectation result (GX's JSON form).

    ``[validity] expect_column_values_to_be_between(amount): 1 of 20 values unexpected
    (5%), e.g. [-3.5]; required min_value=0.0``.
    """
    config = result.get("expectation_config") or {}
    kwargs = config.get("kwargs") or {}
    meta = config.get("meta") or {}
    subject = kwargs.get("column") or kwargs.get("column_list")
    if subject is None and "column_A" in kwargs:
        subject = f"{kwargs['column_A']}, {kwargs['column_B']}"
    elif isinstance(subject, list):
        subject = ", ".join(subject)
    name = config.get("type", "expectation")
    head = f"[{meta['dimension']}] " if meta.get("dimension") else ""
    head += f"{name}({subject})" if subject else name

    # Either one exception record or, from the metric graph, one per failed metric.
    info = result.get("exception_info") or {}
    records = (
        [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    )
    for record in records:
        if record.get("raised_exception"):
            message = str(record.get("exception_message") or "").strip().splitlines()
            return f"{head}: error: {message[0] if message else 'exception'}"

    outcome = result.get("result") or {}
    if "unexpected_count" in outcome:
        # A map expectation without ``mostly`` requires every value.
        kwargs = {**kwargs, "mostly": kwargs.get("mostly") or 1.0}
        observed = (
            f"{outcome['unexpected_count']} of {outcome.get('element_count', '?')} values "
            f"unexpected ({_fmt(outcome.get('unexpected_percent') or 0.0)}%)"
        )
        examples = outcome.get("partial_unexpected_list")
        if examples:
            observed += f", e.g. {_fmt(examples[:5])}"
    elif "observed_value" in outcome:
        observed = f"observed {_fmt(outcome['observed_value'])}"
        details = outcome.get("details") or {}
        mismatched = details.get("mismatched")
        if mismatched:
            observed += f" (mismatched: {_fmt(mismatched)})"
    else:
        observed = "unsuccessful"
    required = ", ".join(
        f"{key}={_fmt(value)}"
        for key, value in kwargs.items()
        if key not in _SUBJECT_KWARGS and value is not None
    )
    return f"{head}: {observed}" + (f"; required {required}" if required else "")
