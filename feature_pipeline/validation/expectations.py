"""A gate's Great Expectations expectations for one run: its specs (``gates``) with the
thresholds and the run's facts (the validated schema, the expected row count, the window
end), each expectation tagged with its quality dimension."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from feature_pipeline.validation.gates import (
    COMPLETENESS,
    CONSISTENCY,
    FRESHNESS,
    SCHEMA,
    UNIQUENESS,
    VALIDITY,
    VOLUME,
    Gate,
    GateThresholds,
)

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation
    from pyspark.sql.types import StructType


def _mostly(share: float) -> dict[str, Any]:
    """``mostly`` only when it relaxes anything: a rendered "at least 100 %" is noise."""
    return {"mostly": share} if share < 1.0 else {}


def _as_spark_datetime(moment: datetime, schema: StructType, column: str) -> datetime:
    """``moment`` as Spark hands values of ``column`` to Python, so GX can compare them.

    Spark returns ``timestamp`` values as naive datetimes in the Python process's local time
    zone and ``timestamp_ntz`` values as naive wall-clock times (UTC in this project). A naive
    ``moment`` is taken to be UTC.
    """
    from pyspark.sql.types import TimestampNTZType

    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if isinstance(schema[column].dataType, TimestampNTZType):
        return aware.astimezone(UTC).replace(tzinfo=None)
    return aware.astimezone().replace(tzinfo=None)


def expectations_for(
    gate: Gate,
    thresholds: GateThresholds,
    *,
    schema: StructType,
    expected_rows: int | None,
    window_end: datetime | None,
    not_provided: frozenset[str] = frozenset(),
) -> list[Expectation]:
    """The expectations of ``gate`` for one run.

    Args:
        gate: The table's spec.
        thresholds: Tolerances.
        schema: The validated frame's schema (decides how timestamps are compared).
        expected_rows: The row count the caller derived from the run; None skips the check.
        window_end: End of the run's window; None skips the freshness check.
        not_provided: Optional columns the source does not have at all (an external
            dataset without locations, say): their completeness is not expected.

    Returns:
        Expectations, each tagged ``meta.dimension`` (completeness, uniqueness, ...).
    """
    present = set(schema.fieldNames())
    usable = frozenset(c for c in gate.columns if c in present)
    tag = _Tagger(gate.name)
    import great_expectations.expectations as gxe

    return [
        # Missing columns fail here, once, instead of as errors in every later check.
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(gate.columns), exact_match=False, **tag(SCHEMA)
        ),
        *_completeness(gate, thresholds, usable, not_provided, tag),
        *_validity(gate, thresholds, usable, tag),
        *_volume(gate, thresholds, expected_rows, tag),
        *_freshness(gate, thresholds, schema, usable, window_end, tag),
    ]


class _Tagger:
    """``meta`` of an expectation: its quality dimension and gate, for the reports."""

    def __init__(self, gate: str) -> None:
        self.gate = gate

    def __call__(self, dimension: str) -> dict[str, Any]:
        return {"meta": {"dimension": dimension, "gate": self.gate}}


def _completeness(
    gate: Gate,
    thresholds: GateThresholds,
    usable: frozenset[str],
    not_provided: frozenset[str],
    tag: _Tagger,
) -> list[Expectation]:
    """Keys and required columns never null, optional ones mostly; keys unique."""
    import great_expectations.expectations as gxe

    out: list[Expectation] = [
        gxe.ExpectColumnValuesToNotBeNull(column=column, **tag(COMPLETENESS))
        for column in (*gate.key, *gate.required)
        if column in usable
    ]
    out += [
        gxe.ExpectColumnValuesToNotBeNull(
            column=column, **_mostly(thresholds.completeness), **tag(COMPLETENESS)
        )
        for column in gate.optional
        if column in usable and column not in not_provided
    ]
    if set(gate.key) <= usable:
        if len(gate.key) == 1:
            out.append(
                gxe.ExpectColumnValuesToBeUnique(
                    column=gate.key[0], **_mostly(thresholds.uniqueness), **tag(UNIQUENESS)
                )
            )
        else:
            out.append(
                gxe.ExpectCompoundColumnsToBeUnique(
                    column_list=list(gate.key), **_mostly(thresholds.uniqueness), **tag(UNIQUENESS)
                )
            )
    return out


def _validity(
    gate: Gate, thresholds: GateThresholds, usable: frozenset[str], tag: _Tagger
) -> list[Expectation]:
    """Ranges, allowed values and ordered column pairs; strict ones admit no exception."""
    import great_expectations.expectations as gxe

    out: list[Expectation] = [
        gxe.ExpectColumnValuesToBeBetween(
            column=bound.column,
            min_value=bound.min_value,
            max_value=bound.max_value,
            **({} if bound.strict else _mostly(thresholds.validity)),
            **tag(VALIDITY),
        )
        for bound in gate.ranges
        if bound.column in usable
    ]
    out += [
        gxe.ExpectColumnValuesToBeInSet(
            column=allowed.column,
            value_set=list(allowed.values),
            **({} if allowed.strict else _mostly(thresholds.validity)),
            **tag(VALIDITY),
        )
        for allowed in gate.sets
        if allowed.column in usable
    ]
    out += [
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=pair.greater,
            column_B=pair.lesser,
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            **tag(CONSISTENCY),
        )
        for pair in gate.ordered
        if {pair.greater, pair.lesser} <= usable
    ]
    return out


def _volume(
    gate: Gate, thresholds: GateThresholds, expected_rows: int | None, tag: _Tagger
) -> list[Expectation]:
    """The row count the run derived, exactly or within the tolerance."""
    import great_expectations.expectations as gxe

    if expected_rows is None:
        return []
    if gate.exact_row_count:
        return [gxe.ExpectTableRowCountToEqual(value=expected_rows, **tag(VOLUME))]
    slack = thresholds.row_count_tolerance * expected_rows
    return [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=max(0, math.floor(expected_rows - slack)),
            max_value=math.ceil(expected_rows + slack),
            **tag(VOLUME),
        )
    ]


def _freshness(
    gate: Gate,
    thresholds: GateThresholds,
    schema: StructType,
    usable: frozenset[str],
    window_end: datetime | None,
    tag: _Tagger,
) -> list[Expectation]:
    """The newest timestamp inside the window (and, for fresh tables, recent enough)."""
    import great_expectations.expectations as gxe

    if window_end is None or not gate.timestamp or gate.timestamp not in usable:
        return []
    end = _as_spark_datetime(window_end, schema, gate.timestamp)
    oldest = end - timedelta(hours=thresholds.max_staleness_hours) if gate.fresh else None
    return [
        gxe.ExpectColumnMaxToBeBetween(
            column=gate.timestamp, min_value=oldest, max_value=end, **tag(FRESHNESS)
        )
    ]
