"""What a source mapping file says: where an external dataset is and which of its columns
holds each landing field, checked when the file is loaded (see docs/external-sources.md)."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from feature_pipeline.feeds import CARDS, MERCHANTS, TRANSACTIONS

REQUIRED_FIELDS = ("transaction_id", "card_id", "merchant_id", "amount", "event_timestamp")


class SourceError(ValueError):
    """A source that cannot be read as mapped; the message is one line naming the file or
    column at fault and the fix."""


class TableMapping(BaseModel):
    """Where a table is and how to read its timestamps."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Local path, s3:// or s3a:// URI (a file or a folder).")
    format: Literal["csv", "parquet"] = "csv"
    timestamp_format: str | None = Field(
        default=None,
        description="'epoch_seconds', 'epoch_millis', a Spark datetime pattern, or null for "
        "ISO-8601.",
    )
    columns: dict[str, str] = Field(description="Field name -> source column name.")


class LabelMapping(BaseModel):
    """Labels either as a column of the transactions plus a fixed delay, or as a table."""

    model_config = ConfigDict(extra="forbid")

    column: str | None = Field(default=None, description="Fraud flag column (0/1, true/false).")
    delay_days: float = Field(
        default=3.0,
        gt=0,
        description="When a flag became known. Must be positive: a label known at the "
        "transaction's own instant would leak into that transaction's merchant features.",
    )
    table: TableMapping | None = None

    @model_validator(mode="after")
    def one_kind(self) -> LabelMapping:
        if (self.column is None) == (self.table is None):
            raise ValueError("label needs exactly one of 'column' or 'table'")
        if self.table is not None:
            missing = {"transaction_id", "is_fraud", "label_timestamp"} - set(self.table.columns)
            if missing:
                raise ValueError(f"label table mapping lacks {sorted(missing)}")
        return self


REFERENCE_REQUIRED = {
    CARDS.name: ("card_id", "issue_date", "credit_limit"),
    MERCHANTS.name: ("merchant_id",),
}


def _check_fields(
    columns: dict[str, str], required: tuple[str, ...], known: tuple[str, ...], what: str
) -> None:
    missing = [f for f in required if f not in columns]
    unknown = sorted(set(columns) - set(known))
    if missing:
        raise ValueError(f"{what} columns mapping lacks required fields {missing}")
    if unknown:
        raise ValueError(f"{what} columns mapping has unknown fields {unknown}")


class SourceMapping(TableMapping):
    """An external transactions dataset, its labels and, when it has them, its cards and
    merchants reference tables (``timestamp_format`` of those applies to ``issue_date``)."""

    label: LabelMapping
    prune_by: str | None = Field(
        default=None,
        description="A source column to read only the run's days by: a date partition "
        "(folders 'col=yyyy-mm-dd'), a date or 'yyyy-mm-dd' text column, or the event "
        "timestamp column itself (a Parquet timestamp). Rows outside the run's days are "
        "then neither read nor counted.",
    )
    cards: TableMapping | None = None
    merchants: TableMapping | None = None

    @model_validator(mode="after")
    def required_fields(self) -> SourceMapping:
        _check_fields(self.columns, REQUIRED_FIELDS, TRANSACTIONS.raw_fields, "transactions")
        for feed, table in ((CARDS, self.cards), (MERCHANTS, self.merchants)):
            if table is not None:
                _check_fields(
                    table.columns, REFERENCE_REQUIRED[feed.name], feed.raw_fields, feed.name
                )
        return self

    def reference(self) -> dict[str, TableMapping]:
        """The reference tables the source has, by bronze feed name."""
        tables = {CARDS.name: self.cards, MERCHANTS.name: self.merchants}
        return {name: table for name, table in tables.items() if table is not None}

    @classmethod
    def load(cls, path: Path) -> SourceMapping:
        return cls.model_validate(yaml.safe_load(path.read_text()))


def label_window_extension(mapping: SourceMapping) -> timedelta:
    """How far past the transactions' window the labels of a flag column reach."""
    if mapping.label.column is None:
        return timedelta(0)
    return timedelta(days=math.ceil(mapping.label.delay_days))
