"""External transaction sources (CSV or Parquet) mapped onto the landing feeds' fields.

A small YAML (or JSON) file says which source column holds each field; the mapped records
then go through exactly the same bronze ingestion (checks, quarantine, dedup) as generated
data. Optional fields a source lacks (location, channel, category) stay null, and the
features that need them are null too. See docs/external-sources.md.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from feature_pipeline.bronze import CORRUPT, LABELS, TRANSACTIONS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

REQUIRED_FIELDS = ("transaction_id", "card_id", "merchant_id", "amount", "event_timestamp")


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


class SourceMapping(TableMapping):
    """An external transactions dataset and its labels."""

    label: LabelMapping

    @model_validator(mode="after")
    def required_fields(self) -> SourceMapping:
        missing = [f for f in REQUIRED_FIELDS if f not in self.columns]
        unknown = sorted(set(self.columns) - set(TRANSACTIONS.raw_fields))
        if missing:
            raise ValueError(f"columns mapping lacks required fields {missing}")
        if unknown:
            raise ValueError(f"columns mapping has unknown fields {unknown}")
        return self

    @classmethod
    def load(cls, path: Path) -> SourceMapping:
        return cls.model_validate(yaml.safe_load(path.read_text()))


def _spark_path(path: str) -> str:
    return "s3a://" + path[len("s3://"):] if path.startswith("s3://") else path


def _iso_timestamp(column: Column, timestamp_format: str | None) -> Column:
    """Source timestamps as ISO-8601 strings (unparsable values stay as they were, so that
    bronze quarantines them with the raw value)."""
    from pyspark.sql import functions as F

    text = column.cast("string")
    if timestamp_format is None:
        return text
    if timestamp_format in ("epoch_seconds", "epoch_millis"):
        number = text.try_cast("double")
        if timestamp_format == "epoch_millis":
            number = number / 1000
        parsed = F.timestamp_micros((number * 1_000_000).cast("long"))
    else:
        parsed = F.try_to_timestamp(text, F.lit(timestamp_format))
    iso = F.date_format(parsed, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'")
    return F.coalesce(iso, text)


def _read(spark: SparkSession, table: TableMapping) -> DataFrame:
    reader = spark.read
    if table.format == "csv":
        reader = reader.option("header", "true").option("inferSchema", "false")
    return reader.format(table.format).load(_spark_path(table.path))


def mapped_raw_records(spark: SparkSession, mapping: SourceMapping) -> tuple[DataFrame, DataFrame]:
    """The source as raw transaction and label records, shaped like landing records.

    Returns:
        ``(transactions, labels)`` with the string fields ``bronze`` expects.
    """
    from pyspark.sql import functions as F

    source = _read(spark, mapping)
    fields = {}
    for name in TRANSACTIONS.raw_fields:
        column = mapping.columns.get(name)
        value = F.col(f"`{column}`").cast("string") if column else F.lit(None).cast("string")
        if name == "event_timestamp":
            value = _iso_timestamp(F.col(f"`{column}`"), mapping.timestamp_format)
        fields[name] = value
    label = mapping.label
    flag = (
        F.lower(F.col(f"`{label.column}`").cast("string"))
        if label.column
        else F.lit(None).cast("string")
    )
    mapped = source.select(
        *[value.alias(name) for name, value in fields.items()],
        flag.alias("_flag"),
        F.input_file_name().alias("source_file"),
    ).withColumn(
        "source_date",
        F.date_format(F.col("event_timestamp").try_cast("timestamp"), "yyyy-MM-dd"),
    )
    transactions = mapped.drop("_flag").withColumn(CORRUPT, F.lit(None).cast("string"))
    if label.column is not None:
        labels = _labels_from_flag(mapped, label)
    else:
        assert label.table is not None
        table = _read(spark, label.table)
        labels = table.select(
            F.col(f"`{label.table.columns['transaction_id']}`").cast("string").alias(
                "transaction_id"
            ),
            F.col(f"`{label.table.columns['is_fraud']}`").cast("string").alias("is_fraud"),
            _iso_timestamp(
                F.col(f"`{label.table.columns['label_timestamp']}`"), label.table.timestamp_format
            ).alias("label_timestamp"),
            F.lit(None).cast("string").alias("fraud_scenario"),
            F.lit(None).cast("string").alias(CORRUPT),
            F.input_file_name().alias("source_file"),
            F.lit(None).cast("string").alias("source_date"),
        )
    provenance = ("source_file", "source_date")
    return (
        transactions.select(*TRANSACTIONS.raw_fields, CORRUPT, *provenance),
        labels.select(*LABELS.raw_fields, CORRUPT, *provenance),
    )


def _labels_from_flag(mapped: DataFrame, label: LabelMapping) -> DataFrame:
    """Labels from a fraud-flag column: each flag known ``delay_days`` after its event."""
    from pyspark.sql import functions as F

    flag = F.col("_flag")
    known_at = F.col("event_timestamp").try_cast("timestamp") + F.make_dt_interval(
        secs=F.lit(label.delay_days * 86_400.0)
    )
    return mapped.select(
        "transaction_id",
        F.when(flag.isin("1", "true", "1.0"), "1")
        .when(flag.isin("0", "false", "0.0"), "0")
        .otherwise(flag)
        .alias("is_fraud"),
        F.date_format(known_at, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'").alias("label_timestamp"),
        F.lit(None).cast("string").alias("fraud_scenario"),
        F.lit(None).cast("string").alias(CORRUPT),
        "source_file",
        "source_date",
    )


def label_window_extension(mapping: SourceMapping) -> timedelta:
    """How far past the transactions' window the labels of a flag column reach."""
    if mapping.label.column is None:
        return timedelta(0)
    return timedelta(days=math.ceil(mapping.label.delay_days))
