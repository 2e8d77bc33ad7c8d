"""External transaction sources (CSV or Parquet) mapped onto the landing feeds' fields.

A small YAML (or JSON) file says which source column holds each field; the mapped records
then go through exactly the same bronze ingestion (checks, quarantine, dedup) as generated
data. Optional fields a source lacks (location, channel, category) stay null, and the
features that need them are null too. See docs/external-sources.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from feature_pipeline.bronze import CORRUPT
from feature_pipeline.feeds import FEEDS, LABELS, TRANSACTIONS
from feature_pipeline.source_mapping import (
    LabelMapping,
    SourceError,
    SourceMapping,
    TableMapping,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
"""Spark refuses Parquet ``TIMESTAMP(NANOS)`` (pandas' default unit) unless this reads it as
the long count of nanoseconds since the epoch; the mapping turns that count back into an
instant. It only changes columns Spark would otherwise refuse."""
ISO_MICROS = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"


def _spark_path(path: str) -> str:
    return "s3a://" + path[len("s3://") :] if path.startswith("s3://") else path


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
    return F.coalesce(F.date_format(parsed, ISO_MICROS), text)


def mapped_reference(spark: SparkSession, feed_name: str, table: TableMapping) -> DataFrame:
    """A reference table (cards or merchants) as the raw string records bronze expects;
    fields the table lacks are null (``issue_date`` may be a date, a timestamp or text)."""
    from pyspark.sql import functions as F

    feed = FEEDS[feed_name]
    source, nanos = _read(spark, table)
    fields = []
    for name in feed.raw_fields:
        column = table.columns.get(name)
        if column is None:
            value = F.lit(None).cast("string")
        elif name == "issue_date":
            value = _timestamp_of(column, table.timestamp_format, nanos)
        else:
            value = F.col(f"`{column}`").cast("string")
        fields.append(value.alias(name))
    return source.select(
        *fields,
        F.lit(None).cast("string").alias(CORRUPT),
        F.input_file_name().alias("source_file"),
        F.lit(None).cast("string").alias("source_date"),
    )


def _timestamp_of(column: str, timestamp_format: str | None, nanos: set[str]) -> Column:
    """A mapped timestamp column as ISO-8601 text; a Parquet nanosecond timestamp (a count
    of nanoseconds here, see ``NANOS_AS_LONG``) is an instant whatever the format says."""
    from pyspark.sql import functions as F

    if column in nanos:
        # Integral division: a double would round 19-digit counts to the wrong microsecond.
        micros = F.expr(f"`{column}` div 1000")
        return F.date_format(F.timestamp_micros(micros), ISO_MICROS)
    return _iso_timestamp(F.col(f"`{column}`"), timestamp_format)


def _spark_readable(arrow_type: pa.DataType) -> bool:
    """Whether Spark reads a Parquet column of this Arrow type into a mapped field (text,
    number, boolean, date or timestamp of any unit, with or without a zone)."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    checks = (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_decimal,
        pa.types.is_boolean,
        pa.types.is_date,
        pa.types.is_timestamp,
        pa.types.is_string_view,
    )
    return any(check(arrow_type) for check in checks)


def _parquet_schema(table: TableMapping) -> pa.Schema:
    """The Arrow schema of a Parquet file or folder (its first file's footer: cheap)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    filesystem, location = None, table.path
    if table.path.startswith(("s3://", "s3a://")):
        from fraud_platform.s3 import arrow_filesystem

        filesystem, location = arrow_filesystem(), table.path.split("://", 1)[1]
    try:
        dataset = ds.dataset(location, filesystem=filesystem, format="parquet", partitioning="hive")
    except (OSError, pa.ArrowException) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SourceError(
            f"{table.path}: not readable as Parquet ({reason}); check 'path' "
            "and 'format' in the mapping"
        ) from exc
    if not dataset.files:
        raise SourceError(f"{table.path}: no Parquet files there; check 'path'")
    return dataset.schema


def _check_columns(
    table: TableMapping, available: list[str], types: pa.Schema | None = None
) -> None:
    """Every mapped column is in the source, of a type Spark reads, else a one-line error."""
    for field, column in table.columns.items():
        if column not in available:
            raise SourceError(
                f"column {column!r} (mapped to {field}) is not in {table.path}, whose columns "
                f"are {available}: fix 'columns.{field}' in the mapping"
            )
        if types is not None and not _spark_readable(types.field(column).type):
            raise SourceError(
                f"column {column!r} (mapped to {field}) is {types.field(column).type} in "
                f"{table.path}, which is not text, a number or a timestamp: rewrite it as "
                "one of those (e.g. with pyarrow.compute.cast)"
            )


def _read(spark: SparkSession, table: TableMapping) -> tuple[DataFrame, set[str]]:
    """The table, checked against the mapping, and which of its columns are Parquet
    nanosecond timestamps (read as counts of nanoseconds, see ``NANOS_AS_LONG``).

    Raises:
        SourceError: A mapped column is missing or of a type that cannot be read, or
            Spark cannot read the file; one line naming it and the fix.
    """
    import pyarrow as pa
    from pyspark.errors import AnalysisException

    if table.format == "csv":
        frame = (
            spark.read.option("header", "true")
            .option("inferSchema", "false")
            .csv(_spark_path(table.path))
        )
        _check_columns(table, frame.columns)
        return frame, set()
    schema = _parquet_schema(table)
    _check_columns(table, schema.names, schema)
    spark.conf.set(NANOS_AS_LONG, "true")
    try:
        frame = spark.read.parquet(_spark_path(table.path))
    except AnalysisException as exc:
        unreadable = [f"{f.name} ({f.type})" for f in schema if not _spark_readable(f.type)]
        raise SourceError(
            f"{table.path}: Spark cannot read it ({str(exc).splitlines()[0]}); columns of "
            f"other types than text, numbers and timestamps: {unreadable or 'none'}: rewrite "
            "or drop them, and give every file of a folder the same schema"
        ) from exc
    nanos = {f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"}
    return frame, nanos


def _pruned(source: DataFrame, column: str, nanos: set[str], days: tuple[date, date]) -> DataFrame:
    """Only the rows of ``days`` by ``column``, as a filter Spark prunes with: partition
    folders it does not list, Parquet row groups whose statistics are outside the days."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    first = datetime.combine(days[0], datetime.min.time(), UTC)
    after = datetime.combine(days[1] + timedelta(days=1), datetime.min.time(), UTC)
    value = F.col(f"`{column}`")
    kind = source.schema[column].dataType
    if column in nanos:
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        bounds: list[int] | list[datetime] = [
            (instant - epoch) // timedelta(microseconds=1) * 1000 for instant in (first, after)
        ]
    elif isinstance(kind, TimestampType | TimestampNTZType):
        bounds = [first.replace(tzinfo=None), after.replace(tzinfo=None)]
    elif isinstance(kind, DateType):
        return source.where(value.between(F.lit(days[0]), F.lit(days[1])))
    else:  # yyyy-mm-dd text: ISO dates sort as text
        return source.where(value.between(days[0].isoformat(), days[1].isoformat()))
    return source.where((value >= F.lit(bounds[0])) & (value < F.lit(bounds[1])))


def mapped_raw_records(
    spark: SparkSession, mapping: SourceMapping, days: tuple[date, date] | None = None
) -> tuple[DataFrame, DataFrame]:
    """The source as raw transaction and label records, shaped like landing records.

    Args:
        spark: The session.
        mapping: The source.
        days: The run's first and last day: with ``mapping.prune_by``, only their rows
            are read (the whole source otherwise).

    Returns:
        ``(transactions, labels)`` with the string fields ``bronze`` expects.
    """
    from pyspark.sql import functions as F

    source, nanos = _read(spark, mapping)
    if mapping.prune_by and days:
        if mapping.prune_by not in source.columns:
            raise SourceError(
                f"prune_by column {mapping.prune_by!r} is not in {mapping.path}, "
                f"whose columns are {source.columns}: fix 'prune_by'"
            )
        source = _pruned(source, mapping.prune_by, nanos, days)
    label = mapping.label
    flag = (
        F.lower(F.col(f"`{label.column}`").cast("string"))
        if label.column
        else F.lit(None).cast("string")
    )
    mapped = source.select(
        *[value.alias(name) for name, value in _transaction_fields(mapping, nanos).items()],
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
        labels = _labels_from_table(spark, label.table)
    provenance = ("source_file", "source_date")
    return (
        transactions.select(*TRANSACTIONS.raw_fields, CORRUPT, *provenance),
        labels.select(*LABELS.raw_fields, CORRUPT, *provenance),
    )


def _transaction_fields(mapping: SourceMapping, nanos: set[str]) -> dict[str, Column]:
    """Each raw transaction field as text from its mapped column; null where unmapped."""
    from pyspark.sql import functions as F

    fields = {}
    for name in TRANSACTIONS.raw_fields:
        column = mapping.columns.get(name)
        value = F.col(f"`{column}`").cast("string") if column else F.lit(None).cast("string")
        if name == "event_timestamp":
            value = _timestamp_of(mapping.columns[name], mapping.timestamp_format, nanos)
        fields[name] = value
    return fields


def _labels_from_table(spark: SparkSession, table: TableMapping) -> DataFrame:
    """Labels from a table of their own, each known at its mapped ``label_timestamp``."""
    from pyspark.sql import functions as F

    frame, nanos = _read(spark, table)
    return frame.select(
        F.col(f"`{table.columns['transaction_id']}`").cast("string").alias("transaction_id"),
        F.col(f"`{table.columns['is_fraud']}`").cast("string").alias("is_fraud"),
        _timestamp_of(table.columns["label_timestamp"], table.timestamp_format, nanos).alias(
            "label_timestamp"
        ),
        F.lit(None).cast("string").alias("fraud_scenario"),
        F.lit(None).cast("string").alias(CORRUPT),
        F.input_file_name().alias("source_file"),
        F.lit(None).cast("string").alias("source_date"),
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
        F.date_format(known_at, ISO_MICROS).alias("label_timestamp"),
        F.lit(None).cast("string").alias("fraud_scenario"),
        F.lit(None).cast("string").alias(CORRUPT),
        "source_file",
        "source_date",
    )
