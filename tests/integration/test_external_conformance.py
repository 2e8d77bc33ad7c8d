"""Conformance of external sources: every shape people bring, through ingest, features,
``feast apply`` and training on the real stack (Spark, the S3 server, Feast, XGBoost).

Each shape (``benchmarks.external_source``: pandas, Polars, Arrow, DuckDB and Spark
Parquet in several timestamp units with and without zone, CSV with the common timestamp
forms, a folder of many files, integer and string ids, optional columns present or not)
holds its own simulated transactions, told apart by their ids. Each is read through its
own mapping; the mapped records of all shapes are then ingested and computed in one run,
so the suite costs one pipeline run, not one per shape. No shape has reference data: the
card profile table is published empty and the loop still trains.

Asserted per shape: every row reaches bronze at its instant (to the source's precision),
with ``read = bronze + quarantined + duplicates``; every card instant gets its feature row;
every labelled transaction of the training windows reaches the training set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import reduce
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from benchmarks import external_source as ext
from feature_pipeline import bronze, pipeline
from feature_pipeline.sources import SourceMapping, mapped_raw_records
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

pytestmark = pytest.mark.integration

START = date(2026, 4, 1)
DAYS = 7
END = START + timedelta(days=DAYS - 1)
# Train on days 1-4 (validation: day 4), a day of gap for the labels (known 12 h after
# their transaction), test on days 6-7.
TRAIN = (START, START + timedelta(days=3))
TEST = (START + timedelta(days=5), END)
LABEL_DELAY_DAYS = 0.5
ROWS_PER_SHAPE = 140

# How close bronze must be to the true instant: exact to the microsecond unless the
# shape stores less (milliseconds, whole seconds, or a decimal number of seconds).
PRECISION = {
    "arrow_ms": "1ms",
    "csv_epoch_millis": "1ms",
    "csv_pattern": "1s",
    "csv_epoch_seconds": "2us",
}
CASES = {
    **{shape: (shape, "int", False) for shape in ext.SHAPES},
    "spark": ("spark", "int", False),
    "ids_text": ("pandas_ns", "text", False),
    "ids_uuid": ("duckdb_timestamptz", "uuid", False),
    "ids_unicode": ("csv_iso", "unicode", False),
    "optional_columns": ("polars_us_utc", "int", True),
}
"""Case -> (writer, identifiers, optional columns present)."""


@dataclass
class Case:
    frame: pd.DataFrame
    precision: str


def _frame(index: int, ids: str, optional: bool) -> pd.DataFrame:
    """The case's own transactions: ids offset so that no two cases share one."""
    frame = ext.simulate(ROWS_PER_SHAPE, DAYS, START, seed=index)
    offset = (index + 1) * 100_000
    for column in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"):
        frame[column] += offset
    frame = ext.with_ids(frame, ids)
    return ext.with_optional(frame) if optional else frame


@pytest.fixture(scope="module")
def loop(stack_env, spark, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Every case written, read through its mapping, ingested and computed; then applied
    to a private Feast registry and trained on (the module's own S3 prefix)."""
    folder = tmp_path_factory.mktemp("conformance")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRAUD_S3_PREFIX", f"{stack_env['FRAUD_S3_PREFIX']}/conformance")
        patch.setenv("FEAST_REGISTRY_PATH", f"sqlite:///{folder / 'registry.db'}")
        patch.setenv("FRAUD_TRAINING_BATCH_ROWS", "50000")
        yield _run_loop(spark, tmp_path_factory)


def _run_loop(spark, tmp_path_factory) -> dict[str, Any]:
    from feature_pipeline.feature_store import apply_definitions
    from training_pipeline import pipeline as training

    cases: dict[str, Case] = {}
    transactions, labels = [], []
    for index, (name, (writer, ids, optional)) in enumerate(sorted(CASES.items())):
        frame = _frame(index, ids, optional)
        folder = tmp_path_factory.mktemp(name)
        written = (
            ext.write_spark(spark, frame, folder, LABEL_DELAY_DAYS)
            if writer == "spark"
            else ext.write(frame, writer, folder, LABEL_DELAY_DAYS)
        )
        raw = mapped_raw_records(spark, SourceMapping.load(written.mapping))
        transactions.append(raw[0])
        labels.append(raw[1])
        cases[name] = Case(frame, PRECISION.get(writer, "1us"))
    s3 = S3Settings()
    ingested = {
        "transactions": bronze.ingest_feed(
            spark, bronze.TRANSACTIONS, START, END, s3, raw=_union(transactions)
        ).as_dict(),
        "labels": bronze.ingest_feed(
            spark, bronze.LABELS, START, END + timedelta(days=1), s3, raw=_union(labels)
        ).as_dict(),
    }
    computed = pipeline.compute(START, END, spark=spark, s3=s3)
    applied = apply_definitions()
    trained = training.run(
        *TRAIN, *TEST, validation_days=1, label_delay=timedelta(days=1), register=False
    )
    return {
        "cases": cases,
        "ingest": ingested,
        "compute": computed,
        "apply": applied,
        "training": trained,
        "bronze": spark.read.parquet(s3.s3a_uri("bronze", "transactions"))
        .select("transaction_id", "card_id", "event_timestamp")
        .toPandas(),
        "card_features": spark.read.parquet(s3.s3a_uri("silver", "card_transaction_features"))
        .select("card_id", "event_timestamp", "txn_count_30d")
        .toPandas(),
    }


def _union(frames: list[DataFrame]) -> DataFrame:
    return reduce(lambda a, b: a.unionByName(b), frames)


def test_every_record_is_accounted_for(loop) -> None:
    total = ROWS_PER_SHAPE * len(CASES)
    for feed in ("transactions", "labels"):
        counts = loop["ingest"][feed]
        assert counts["read"] == counts["bronze"] + counts["quarantined"] + counts["duplicates"]
        assert (counts["read"], counts["bronze"]) == (total, total), counts


@pytest.mark.parametrize("name", sorted(CASES))
def test_shape_reaches_bronze_at_its_instants(loop, name: str) -> None:
    case = loop["cases"][name]
    expected = case.frame.assign(transaction_id=case.frame["TRANSACTION_ID"].astype(str))
    joined = expected.merge(loop["bronze"], on="transaction_id", validate="one_to_one")
    assert len(joined) == len(case.frame)
    assert (joined["card_id"] == joined["CUSTOMER_ID"].astype(str)).all()
    error = (pd.to_datetime(joined["event_timestamp"]) - joined["TX_DATETIME"]).abs()
    assert error.max() < pd.Timedelta(case.precision), error.max()


def test_every_card_instant_has_its_feature_row(loop) -> None:
    instants = loop["bronze"].drop_duplicates(["card_id", "event_timestamp"])
    rows = loop["compute"]["rows"]
    assert rows["card_transaction_features"] == len(instants)
    features = loop["card_features"]
    # The last instant of each card sees every earlier transaction of the card (all within
    # 30 days): the state before the transaction, so not those at that very instant.
    last = features.sort_values("event_timestamp").groupby("card_id").tail(1)
    bronze = loop["bronze"].assign(
        event_timestamp=pd.to_datetime(loop["bronze"]["event_timestamp"])
    )
    final = bronze.groupby("card_id")["event_timestamp"].transform("max")
    expected = bronze[bronze["event_timestamp"] < final].groupby("card_id").size()
    expected = expected.reindex(last["card_id"], fill_value=0)
    assert (last.set_index("card_id")["txn_count_30d"] == expected).all()


def test_no_reference_data_gives_an_empty_profile_and_apply_passes(loop) -> None:
    assert loop["compute"]["rows"]["card_profile_features"] == 0
    assert loop["compute"]["empty_for_lack_of_reference_data"] == ["card_profile_features"]
    assert "card_profile_features" in loop["apply"]["feature_views"]


def test_every_labelled_transaction_of_the_windows_reaches_the_training_set(loop) -> None:
    bronze_rows = loop["bronze"]
    at = pd.to_datetime(bronze_rows["event_timestamp"])
    in_windows = (
        (at >= pd.Timestamp(TRAIN[0])) & (at < pd.Timestamp(TRAIN[1] + timedelta(days=1)))
    ) | ((at >= pd.Timestamp(TEST[0])) & (at < pd.Timestamp(TEST[1] + timedelta(days=1))))
    assert loop["training"]["counts"]["labelled"] == int(in_windows.sum())
    counts = loop["training"]["counts"]
    assert counts["fit"]["rows"] + counts["validation"]["rows"] == int(
        ((at >= pd.Timestamp(TRAIN[0])) & (at < pd.Timestamp(TRAIN[1] + timedelta(days=1)))).sum()
    )
    assert loop["training"]["metrics"]["xgboost"]["roc_auc"] > 0.5
