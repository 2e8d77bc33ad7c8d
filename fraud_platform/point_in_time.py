"""Point-in-time features of transactions from the offline store, every row kept.

What training, batch scoring and the notebook share: reading bronze transactions, placing
each transaction's entity row one microsecond before it (the state serving sees, see
``training_pipeline.dataset`` for the reasoning), and one ``get_historical_features`` call
over a feature service. The offline store (``fraud_platform.offline_store``) left-joins
every entity row, so every row comes back by construction.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud_platform import layout
from fraud_platform.s3 import arrow_filesystem
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    import pyarrow as pa
    from feast import FeatureService, FeatureStore
    from feast.infra.offline_stores.offline_store import RetrievalJob

log = logging.getLogger(__name__)

BRONZE = "bronze"
TRANSACTIONS = "transactions"
ROW_ID = "transaction_id"
"""The key features are merged back on: one transaction, one row."""
ENTITY_OFFSET = timedelta(microseconds=1)
"""Entity rows sit this long before their transaction: the state before it."""
REQUEST_TIMESTAMP = "transaction_timestamp"
"""The request field of the on-demand view holding the transaction's own time."""


@dataclass
class FeatureFrame:
    """Transactions with their features.

    Attributes:
        frame: One row per transaction: its columns and one column per feature of the
            service (NaN where missing).
        features: The service's full feature names (``view__feature``), in its order.
        feature_service: The service's name.
        counts: ``rows`` (in and out: the store returns every entity row) and
            ``all_features_missing`` (rows no view had a row for within its TTL).
        seconds: Time spent joining features.
    """

    frame: pd.DataFrame
    features: list[str]
    feature_service: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def bronze_table(
    s3: S3Settings,
    table: str,
    partition: str,
    since: date | None,
    until: date | None,
    columns: list[str],
    filter_: Any = None,
) -> pa.Table:
    """Rows of a bronze table, pruned to the ``yyyy-MM-dd`` partitions in [since, until],
    in the order of the files and their rows."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    path = s3.uri(BRONZE, table).removeprefix("s3://")
    dataset = ds.dataset(
        path,
        filesystem=arrow_filesystem(s3),
        format="parquet",
        partitioning=ds.partitioning(pa.schema([(partition, pa.string())]), flavor="hive"),
    )
    condition = filter_
    if since is not None:
        bound = ds.field(partition) >= since.isoformat()
        condition = bound if condition is None else condition & bound
    if until is not None:
        bound = ds.field(partition) <= until.isoformat()
        condition = bound if condition is None else condition & bound
    return dataset.to_table(columns=columns, filter=condition)


def utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True)


def read_transactions(start: datetime, end: datetime, s3: S3Settings | None = None) -> pd.DataFrame:
    """Bronze transactions with ``start <= event_timestamp < end``."""
    frame = transactions_table(start, end, s3).to_pandas()
    frame["event_timestamp"] = utc(frame["event_timestamp"])
    return frame


def transactions_table(start: datetime, end: datetime, s3: S3Settings | None = None) -> pa.Table:
    """:func:`read_transactions` as an Arrow table."""
    import pyarrow.dataset as ds

    return bronze_table(
        s3 or S3Settings(),
        TRANSACTIONS,
        "event_date",
        start.date(),
        (end - ENTITY_OFFSET).date(),
        list(layout.TRANSACTION_FIELDS),
        (ds.field("event_timestamp") >= pd.Timestamp(start))
        & (ds.field("event_timestamp") < pd.Timestamp(end)),
    )


def entity_frame(transactions: pd.DataFrame) -> pd.DataFrame:
    """The entity rows for ``get_historical_features``: one per transaction, placed one
    microsecond before it, with the request fields of the on-demand view.

    Args:
        transactions: Rows with ``transaction_id``, ``card_id``, ``merchant_id``, ``amount``,
            ``latitude``, ``longitude`` and ``transaction_timestamp`` (UTC).
    """
    at = utc(transactions[REQUEST_TIMESTAMP])
    return pd.DataFrame(
        {
            ROW_ID: transactions[ROW_ID].to_numpy(),
            "card_id": transactions["card_id"].to_numpy(),
            "merchant_id": transactions["merchant_id"].to_numpy(),
            "event_timestamp": at - ENTITY_OFFSET,
            "amount": transactions["amount"].astype("float64").to_numpy(),
            "latitude": transactions["latitude"].astype("float64").to_numpy(),
            "longitude": transactions["longitude"].astype("float64").to_numpy(),
            REQUEST_TIMESTAMP: at,
        }
    )


def feature_refs(service: FeatureService) -> dict[str, list[str]]:
    """The service's features as ``view -> [feature names]``, in the service's order."""
    return {
        projection.name_to_use(): [feature.name for feature in projection.features]
        for projection in service.feature_view_projections
    }


def feature_names(service: FeatureService) -> list[str]:
    """Full feature names (``view__feature``) of the service, in its order: the column
    names ``get_historical_features(..., full_feature_names=True)`` returns and the model's
    feature order."""
    return [f"{view}__{name}" for view, names in feature_refs(service).items() for name in names]


def historical_features(
    store: FeatureStore,
    transactions: pd.DataFrame,
    service_name: str,
) -> FeatureFrame:
    """Join a feature service to transactions, point in time, keeping every row.

    Args:
        store: The Feast store.
        transactions: Any frame with the columns :func:`entity_frame` needs and a unique
            ``transaction_id``.
        service_name: The feature service.

    Returns:
        ``frame`` in the order of ``transactions``, its columns and one per feature.

    Raises:
        ValueError: ``transaction_id`` is not unique.
        RuntimeError: the store returned another number of rows than it was given (the
            offline store's contract is one row out per entity row in).
    """
    started = time.perf_counter()
    service = store.get_feature_service(service_name)
    names = feature_names(service)
    if transactions[ROW_ID].duplicated().any():
        raise ValueError(f"{ROW_ID} must be unique in the transactions")
    job = store.get_historical_features(
        entity_df=entity_frame(transactions), features=service, full_feature_names=True
    )  # the store holds the entity rows in its own form: the pandas frame is freed here
    frame, missing = _with_features(transactions, job, names)
    counts = {"rows": len(transactions), "all_features_missing": int(missing.sum())}
    log.info("point-in-time features from %s: %s", service_name, counts)
    return FeatureFrame(
        frame=frame,
        features=names,
        feature_service=service_name,
        counts=counts,
        seconds={"features": round(time.perf_counter() - started, 2)},
    )


def _with_features(
    transactions: pd.DataFrame, job: RetrievalJob, names: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """``transactions`` with the features ``names`` of the job's result, as float64 in
    their rows' order, and which rows have none of them.

    Column by column, straight from the store's Arrow result (fetched here, so that this
    is its only reference), each column dropped from it once moved. A pandas frame of the
    result in between held it twice more: at 9.3M transactions and 48 features the step
    after the join peaked 1.5 GiB higher that way (12.4 against 10.9 GiB, in a 10M-scale
    training run). A merge would hold three copies of every feature.

    Raises:
        RuntimeError: the result's rows are not those given.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    found = job.to_arrow()
    if found.num_rows != len(transactions):
        raise RuntimeError(
            f"the offline store returned {found.num_rows} rows for {len(transactions)} entity rows"
        )
    index = pd.Index(found.column(ROW_ID).to_pandas())
    at = index.get_indexer(transactions[ROW_ID]) if index.is_unique else np.array([-1])
    if (at < 0).any():
        raise RuntimeError("the offline store returned other transaction ids than it was given")
    frame = transactions.copy(deep=False)
    frame.index = pd.RangeIndex(len(frame))
    missing = np.ones(len(frame), dtype=bool)
    for name in names:
        values = pc.cast(found.column(name), pa.float64()).to_numpy(zero_copy_only=False)
        found = found.drop_columns([name])
        frame[name] = column = values[at]
        del values
        missing &= np.isnan(column)
    return frame, missing
