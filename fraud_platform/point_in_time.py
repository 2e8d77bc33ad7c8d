"""Point-in-time features of transactions from the offline store, every row kept.

What training and batch scoring share: reading bronze transactions, placing each
transaction's entity row one microsecond before it (the state serving sees, see
``training_pipeline.dataset`` for the reasoning), and Feast's ``get_historical_features``
over a feature service with the rows Feast drops filled back view by view.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud_platform.s3 import arrow_filesystem
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

log = logging.getLogger(__name__)

BRONZE = "bronze"
TRANSACTIONS = "transactions"
ROW_ID = "transaction_id"
"""The key features are merged back on: one transaction, one row."""
ENTITY_OFFSET = timedelta(microseconds=1)
"""Entity rows sit this long before their transaction: the state before it."""
REQUEST_TIMESTAMP = "transaction_timestamp"
"""The request field of the on-demand view holding the transaction's own time."""
TRANSACTION_COLUMNS = ["transaction_id", "card_id", "merchant_id", "amount", "currency",
                       "merchant_category", "channel", "latitude", "longitude",
                       "event_timestamp"]
DEFAULT_BATCH_ROWS = 5_000
"""Entity rows per ``get_historical_features`` call (see ``TrainingSettings.batch_rows``)."""


@dataclass
class FeatureFrame:
    """Transactions with their features.

    Attributes:
        frame: One row per transaction: its columns and one column per feature of the
            service (NaN where missing).
        features: The service's full feature names (``view__feature``), in its order.
        feature_service: The service's name.
        counts: ``rows``, ``with_features`` (rows the service query returned),
            ``without_features`` (rows it dropped), ``filled_per_view`` (of those, rows a
            per-view read found some feature for), ``all_features_missing``.
        seconds: Time spent joining features.
    """

    frame: pd.DataFrame
    features: list[str]
    feature_service: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def read_bronze(s3: S3Settings, table: str, partition: str, since: date | None,
                      until: date | None, columns: list[str], filter_: Any = None
                      ) -> pd.DataFrame:
    """Rows of a bronze table, pruned to the ``yyyy-MM-dd`` partitions in [since, until]."""
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
    return dataset.to_table(columns=columns, filter=condition).to_pandas()


def utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True)


def read_transactions(start: datetime, end: datetime, s3: S3Settings | None = None
                      ) -> pd.DataFrame:
    """Bronze transactions with ``start <= event_timestamp < end``."""
    import pyarrow.dataset as ds

    s3 = s3 or S3Settings()
    last_day = (end - ENTITY_OFFSET).date()
    frame = read_bronze(
        s3, TRANSACTIONS, "event_date", start.date(), last_day, TRANSACTION_COLUMNS,
        (ds.field("event_timestamp") >= pd.Timestamp(start))
        & (ds.field("event_timestamp") < pd.Timestamp(end)),
    )
    frame["event_timestamp"] = utc(frame["event_timestamp"])
    return frame


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
    return [f"{view}__{name}" for view, names in feature_refs(service).items()
            for name in names]


def _rounds(entity: pd.DataFrame) -> np.ndarray:
    """A round number per entity row so that, within a round, no two rows share a card
    and instant or a merchant and instant (Feast keeps one row per join keys and time)."""
    keys = [("card_id", "event_timestamp"), ("merchant_id", "event_timestamp")]
    rounds = np.zeros(len(entity), dtype=np.int64)
    clash = np.zeros(len(entity), dtype=bool)
    for key in keys:
        clash |= entity.duplicated(list(key), keep=False).to_numpy()
    if not clash.any():
        return rounds
    used: set[tuple[Any, ...]] = set()
    cards = entity["card_id"].to_numpy()
    merchants = entity["merchant_id"].to_numpy()
    times = entity["event_timestamp"].to_numpy()
    for i in np.flatnonzero(clash):
        r = 0
        while ("c", cards[i], times[i], r) in used or ("m", merchants[i], times[i], r) in used:
            r += 1
        used.add(("c", cards[i], times[i], r))
        used.add(("m", merchants[i], times[i], r))
        rounds[i] = r
    return rounds


def _batches(entity: pd.DataFrame, batch_rows: int) -> list[pd.DataFrame]:
    """Entity rows split into Feast calls: by round, then into chunks of whole cards of
    about ``batch_rows`` rows (the file store's join grows with rows x feature rows per
    key, so the chunks bound its memory)."""
    rounds = _rounds(entity)
    batches: list[pd.DataFrame] = []
    for r in np.unique(rounds):
        part = entity[rounds == r]
        if len(part) <= batch_rows:
            batches.append(part)
            continue
        codes = pd.util.hash_array(part["card_id"].to_numpy()) % (
            -(-len(part) // batch_rows))
        batches.extend(part[codes == c] for c in np.unique(codes))
    return batches


def _historical(store: FeatureStore, entity: pd.DataFrame, features: Any) -> pd.DataFrame:
    job = store.get_historical_features(entity_df=entity, features=features,
                                        full_feature_names=True)
    return job.to_df()


def forget_cached_listings() -> None:
    """Drop s3fs's cached filesystems, whose listings (and ETags) outlive a rewrite of
    the feature tables: a process that builds a set, then builds again after the feature
    pipeline replaced a partition, would otherwise read the old listing and fail."""
    import fsspec

    fsspec.get_filesystem_class("s3").clear_instance_cache()


def historical_features(
    store: FeatureStore,
    transactions: pd.DataFrame,
    service_name: str,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> FeatureFrame:
    """Join a feature service to transactions, point in time, keeping every row.

    Args:
        store: The Feast store.
        transactions: Any frame with the columns :func:`entity_frame` needs and a unique
            ``transaction_id``.
        service_name: The feature service.
        batch_rows: Entity rows per Feast call.

    Returns:
        ``frame`` in the order of ``transactions``, its columns and one per feature.
    """
    started = time.perf_counter()
    service = store.get_feature_service(service_name)
    names = feature_names(service)
    if transactions[ROW_ID].duplicated().any():
        raise ValueError(f"{ROW_ID} must be unique in the transactions")
    entity = entity_frame(transactions)
    forget_cached_listings()
    parts = [
        part[[ROW_ID, *names]]
        for batch in _batches(entity, batch_rows) if len(batch)
        for part in [_historical(store, batch, service)] if len(part)
    ]
    found = (pd.concat(parts, ignore_index=True).drop_duplicates(ROW_ID) if parts
             else pd.DataFrame(columns=[ROW_ID, *names]))
    dropped = entity[~entity[ROW_ID].isin(found[ROW_ID])]
    filled = _fill_dropped(store, service, dropped, batch_rows) if len(dropped) else None
    if filled is not None:
        # Columns no view could fill stay out of the concatenation (NaN after the merge).
        found = pd.concat([found, filled.dropna(axis=1, how="all")], ignore_index=True)
    frame = transactions.merge(found, on=ROW_ID, how="left", validate="one_to_one")
    for name in names:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    all_missing = int(frame[names].isna().all(axis=1).sum())
    filled_rows = 0 if filled is None else int(
        filled[names].notna().any(axis=1).sum())
    counts = {
        "rows": len(transactions),
        "with_features": len(transactions) - len(dropped),
        "without_features": len(dropped),
        "filled_per_view": filled_rows,
        "all_features_missing": all_missing,
    }
    log.info("point-in-time features from %s: %s", service_name, counts)
    return FeatureFrame(frame=frame, features=names, feature_service=service_name,
                        counts=counts,
                        seconds={"features": round(time.perf_counter() - started, 2)})


def _fill_dropped(store: FeatureStore, service: FeatureService, dropped: pd.DataFrame,
                  batch_rows: int) -> pd.DataFrame:
    """Features of the rows the service query dropped, read one stored view at a time,
    with the on-demand views' registered transformations applied to what was found."""
    import pyarrow as pa

    refs = feature_refs(service)
    odfvs = {view.name: view for view in store.list_on_demand_feature_views()}
    out = dropped[[ROW_ID]].copy()
    for view, names in refs.items():
        if view in odfvs:
            continue
        columns = [f"{view}__{name}" for name in names]
        parts = [
            part[[ROW_ID, *columns]]
            for batch in _batches(dropped, batch_rows) if len(batch)
            for part in [_historical(store, batch, [f"{view}:{name}" for name in names])]
            if len(part)
        ]
        if parts:
            values = pd.concat(parts, ignore_index=True).drop_duplicates(ROW_ID)
            out = out.merge(values, on=ROW_ID, how="left")
        else:
            out = out.assign(**{column: np.nan for column in columns})
    inputs = dropped.merge(out, on=ROW_ID, how="left")
    for view, names in refs.items():
        odfv = odfvs.get(view)
        if odfv is None:
            continue
        # Source columns a view of the service did not provide stay null.
        for projection in odfv.source_feature_view_projections.values():
            for feature in projection.features:
                column = f"{projection.name}__{feature.name}"
                if column not in inputs:
                    inputs[column] = np.nan
        table = pa.Table.from_pandas(inputs, preserve_index=False)
        transformed = odfv.transform_arrow(table, full_feature_names=True).to_pandas()
        for name in names:
            out[f"{view}__{name}"] = transformed[f"{view}__{name}"].to_numpy()
    return out
