"""Point-in-time training sets: labelled transactions joined to the features serving sees.

The rows are the transactions of a window whose label was known at the training cutoff
(the bronze ``labels`` table, each label with the instant it became known). The
features come from Feast, ``store.get_historical_features`` over the feature service
the model is bound to (``fraud_detection_v1``): the feature list is the service's, never
a copy of it.

Point in time: what serving sees
--------------------------------
A row of a feature table at instant ``t`` is the state *after* every event at or before
``t``, the transactions at ``t`` included (docs/features.md), and Feast's point-in-time
join returns, for an entity row at ``t``, the latest feature row at or before ``t``. An
entity row at the transaction's own time would therefore hand the model the row that the
scored transaction itself produced: windows counting it, ``last_*`` values that are its
own, ``seconds_since_prev_txn`` measured to it.

Serving never sees that row. When a transaction is scored, the online store holds the
state after the card's (and the merchant's) *previous* transaction; the incoming one is
not in it yet. So each entity row is placed one microsecond before the transaction
(``event_timestamp = t - 1 µs``; feature timestamps are microseconds, the resolution of
the feature pipeline's windows): the join then returns the latest row strictly before
``t``, exactly the state serving reads. The request-time features (the on-demand feature
view ``transaction_request_features``) get the transaction itself as the request:
``amount``, ``latitude``, ``longitude`` and ``transaction_timestamp = t`` (not ``t - 1 µs``),
so "seconds since the last transaction" and "distance from the last transaction" compare
the incoming transaction with the stored previous one, by the same function offline and
online. Labels follow the same rule: a merchant-risk row at ``t' < t`` counts only frauds
whose labels were known by ``t'``, so no label known after ``t`` reaches the row of ``t``.

Two simultaneous transactions of a card share one feature row at ``t``; both are scored
here against the state before ``t``. Online, the second sees the first only if the first
was pushed in between.

Every labelled row is kept
--------------------------
Feast's file offline store drops an entity row when a view has rows for its key but none
at or before the entity time within the TTL (a card's first transaction, a card silent for
longer than the TTL), and collapses entity rows that share their join keys and time. The
set keeps every labelled row: entity rows are sent in rounds without shared keys, carry
the transaction id, and are merged back on it. For the rows Feast dropped, each stored
view of the service is read on its own (a missing card-transaction row must not hide the
card's profile or the merchant's risk, which serving would have) and the on-demand view's
registered transformation is applied to what was found; what is still missing stays NaN,
which XGBoost routes as missing, as it does online.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from fraud_platform.settings import S3Settings
from training_pipeline.settings import TrainingSettings

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from feast import FeatureService, FeatureStore

log = logging.getLogger(__name__)

BRONZE = "bronze"
TRANSACTIONS = "transactions"
LABELS = "labels"

ROW_ID = "transaction_id"
"""The key the features are merged back on: one labelled transaction, one row."""
ENTITY_OFFSET = timedelta(microseconds=1)
"""Entity rows sit this long before their transaction: the state before it (see above)."""
REQUEST_TIMESTAMP = "transaction_timestamp"
"""The request field of the on-demand view holding the transaction's own time."""

TRANSACTION_COLUMNS = ["transaction_id", "card_id", "merchant_id", "amount", "currency",
                       "merchant_category", "channel", "latitude", "longitude",
                       "event_timestamp"]
LABEL_COLUMNS = ["transaction_id", "is_fraud", "label_timestamp", "fraud_scenario"]


# --- Reading bronze -------------------------------------------------------------------


def s3_filesystem(s3: S3Settings | None = None) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem configured from the project's S3 settings."""
    import pyarrow.fs as pafs

    s3 = s3 or S3Settings()
    kwargs: dict[str, Any] = {"region": s3.region}
    if s3.endpoint_url:
        parsed = urlparse(s3.endpoint_url)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    if s3.access_key_id and s3.secret_access_key:
        kwargs["access_key"] = s3.access_key_id
        kwargs["secret_key"] = s3.secret_access_key.get_secret_value()
    return pafs.S3FileSystem(**kwargs)


def _read_partitioned(s3: S3Settings, table: str, partition: str, since: date | None,
                      until: date | None, columns: list[str], filter_: Any = None
                      ) -> pd.DataFrame:
    """Rows of a bronze table, pruned to the ``yyyy-MM-dd`` partitions in [since, until]."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    path = s3.uri(BRONZE, table).removeprefix("s3://")
    dataset = ds.dataset(
        path,
        filesystem=s3_filesystem(s3),
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


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True)


def read_transactions(start: datetime, end: datetime, s3: S3Settings | None = None
                      ) -> pd.DataFrame:
    """Bronze transactions with ``start <= event_timestamp < end``."""
    import pyarrow.dataset as ds

    s3 = s3 or S3Settings()
    last_day = (end - ENTITY_OFFSET).date()
    frame = _read_partitioned(
        s3, TRANSACTIONS, "event_date", start.date(), last_day, TRANSACTION_COLUMNS,
        (ds.field("event_timestamp") >= pd.Timestamp(start))
        & (ds.field("event_timestamp") < pd.Timestamp(end)),
    )
    frame["event_timestamp"] = _utc(frame["event_timestamp"])
    return frame


def read_labels(known_at: datetime | None, since: date | None = None,
                s3: S3Settings | None = None) -> pd.DataFrame:
    """Bronze labels known at ``known_at`` (``label_timestamp <= known_at``; all if None).

    A transaction labelled more than once keeps its latest label known by then.

    Args:
        known_at: The training cutoff.
        since: Labels dated before this day are skipped (they cannot belong to
            transactions from ``since`` on: a label follows its transaction).
    """
    import pyarrow.dataset as ds

    s3 = s3 or S3Settings()
    condition = None
    if known_at is not None:
        condition = ds.field("label_timestamp") <= pd.Timestamp(known_at)
    frame = _read_partitioned(s3, LABELS, "label_date", since,
                              known_at.date() if known_at else None, LABEL_COLUMNS, condition)
    frame["label_timestamp"] = _utc(frame["label_timestamp"])
    frame["is_fraud"] = frame["is_fraud"].astype(np.int8)
    return (
        frame.sort_values(["transaction_id", "label_timestamp"], kind="mergesort")
        .drop_duplicates("transaction_id", keep="last")
        .reset_index(drop=True)
    )


def latest_label_day(s3: S3Settings | None = None) -> date | None:
    """The day of the latest ``label_date`` partition of the bronze labels, or None."""
    import pyarrow.fs as pafs

    s3 = s3 or S3Settings()
    base = s3.uri(BRONZE, LABELS).removeprefix("s3://")
    infos = s3_filesystem(s3).get_file_info(pafs.FileSelector(base, allow_not_found=True))
    days = [info.base_name.split("=", 1)[1] for info in infos
            if info.type == pafs.FileType.Directory and info.base_name.startswith("label_date=")]
    return date.fromisoformat(max(days)) if days else None


def labelled_transactions(start: datetime, end: datetime, labels_known_at: datetime | None,
                          s3: S3Settings | None = None) -> pd.DataFrame:
    """Transactions of ``[start, end)`` whose label was known at ``labels_known_at``.

    Transactions without a known label are left out: an unlabelled transaction is not a
    genuine one (a genuine label arrives only when the settlement window has passed).

    Returns:
        One row per transaction: its bronze columns with ``event_timestamp`` renamed
        ``transaction_timestamp``, and ``is_fraud``, ``label_timestamp``,
        ``fraud_scenario``; ordered by time then id.
    """
    s3 = s3 or S3Settings()
    transactions = read_transactions(start, end, s3)
    labels = read_labels(labels_known_at, since=start.date(), s3=s3)
    frame = transactions.merge(labels, on=ROW_ID, how="inner", validate="one_to_one")
    frame = frame.rename(columns={"event_timestamp": REQUEST_TIMESTAMP})
    log.info("labelled transactions %s..%s: %d of %d (labels known at %s)",
             start, end, len(frame), len(transactions), labels_known_at)
    return frame.sort_values([REQUEST_TIMESTAMP, ROW_ID], kind="mergesort").reset_index(
        drop=True)


# --- Entity frames and the feature service --------------------------------------------


def entity_frame(labelled: pd.DataFrame) -> pd.DataFrame:
    """The entity rows for ``get_historical_features``: one per transaction, placed one
    microsecond before it, with the request fields of the on-demand view.

    Args:
        labelled: Rows with ``transaction_id``, ``card_id``, ``merchant_id``, ``amount``,
            ``latitude``, ``longitude`` and ``transaction_timestamp`` (UTC).
    """
    at = _utc(labelled[REQUEST_TIMESTAMP])
    return pd.DataFrame(
        {
            ROW_ID: labelled[ROW_ID].to_numpy(),
            "card_id": labelled["card_id"].to_numpy(),
            "merchant_id": labelled["merchant_id"].to_numpy(),
            "event_timestamp": at - ENTITY_OFFSET,
            "amount": labelled["amount"].astype("float64").to_numpy(),
            "latitude": labelled["latitude"].astype("float64").to_numpy(),
            "longitude": labelled["longitude"].astype("float64").to_numpy(),
            REQUEST_TIMESTAMP: at,
        }
    )


def open_store(repo_path: Path | None = None) -> FeatureStore:
    """The Feast store of the feature repo (definitions from its registry)."""
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo_path or TrainingSettings().feature_repo_path))


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


def _forget_cached_listings() -> None:
    """Drop s3fs's cached filesystems, whose listings (and ETags) outlive a rewrite of
    the feature tables: a process that builds a set, then builds again after the feature
    pipeline replaced a partition, would otherwise read the old listing and fail."""
    import fsspec

    fsspec.get_filesystem_class("s3").clear_instance_cache()


@dataclass
class TrainingSet:
    """Labelled transactions with their features.

    Attributes:
        frame: One row per labelled transaction: the labelled columns and one column per
            feature of the service (NaN where missing).
        features: The service's full feature names, in the service's order.
        feature_service: The service's name.
        counts: ``labelled``, ``with_features`` (rows the service query returned),
            ``without_features`` (rows it dropped), ``filled_per_view`` (of those, rows a
            per-view read found some feature for), ``all_features_missing``.
        seconds: Time spent reading labels and transactions, and joining features.
    """

    frame: pd.DataFrame
    features: list[str]
    feature_service: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def historical_features(
    store: FeatureStore,
    labelled: pd.DataFrame,
    service_name: str | None = None,
    batch_rows: int | None = None,
) -> TrainingSet:
    """Join the feature service to labelled transactions, point in time, keeping every row.

    Args:
        store: The Feast store.
        labelled: Labelled transactions (see :func:`labelled_transactions`); any frame
            with the columns :func:`entity_frame` needs and a unique ``transaction_id``.
        service_name: The feature service (``FRAUD_FEATURE_SERVICE`` by default).
        batch_rows: Entity rows per Feast call (``FRAUD_TRAINING_BATCH_ROWS``).

    Returns:
        The training set, ``frame`` in the order of ``labelled``.
    """
    started = time.perf_counter()
    settings = TrainingSettings()
    service_name = service_name or settings.feature_service
    batch_rows = batch_rows or settings.batch_rows
    service = store.get_feature_service(service_name)
    names = feature_names(service)
    if labelled[ROW_ID].duplicated().any():
        raise ValueError(f"{ROW_ID} must be unique in the labelled frame")
    entity = entity_frame(labelled)
    _forget_cached_listings()
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
    frame = labelled.merge(found, on=ROW_ID, how="left", validate="one_to_one")
    for name in names:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    all_missing = int(frame[names].isna().all(axis=1).sum())
    filled_rows = 0 if filled is None else int(
        filled[names].notna().any(axis=1).sum())
    counts = {
        "labelled": len(labelled),
        "with_features": len(labelled) - len(dropped),
        "without_features": len(dropped),
        "filled_per_view": filled_rows,
        "all_features_missing": all_missing,
    }
    log.info("training set from %s: %s", service_name, counts)
    return TrainingSet(frame=frame, features=names, feature_service=service_name,
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


def build_training_set(
    start: datetime,
    end: datetime,
    labels_known_at: datetime | None,
    store: FeatureStore | None = None,
    service_name: str | None = None,
    s3: S3Settings | None = None,
    batch_rows: int | None = None,
) -> TrainingSet:
    """Labelled transactions of ``[start, end)`` (labels known at ``labels_known_at``)
    with the feature service's features as serving would have seen them.

    Returns:
        The training set; ``counts`` says how many rows had features and ``seconds`` how
        long reading and joining took.
    """
    started = time.perf_counter()
    labelled = labelled_transactions(start, end, labels_known_at, s3)
    read_s = time.perf_counter() - started
    result = historical_features(store or open_store(), labelled, service_name, batch_rows)
    result.seconds = {"read_bronze": round(read_s, 2), **result.seconds}
    return result
