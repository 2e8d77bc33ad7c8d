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
The offline store (``fraud_platform.offline_store``) left-joins each view to the entity
rows with a DuckDB ``ASOF`` join, so every labelled row comes back once, in one call, by
construction: a card's first transaction, a card silent for longer than a view's TTL, and
two transactions sharing a card and an instant included. A view without a row for the key
within its TTL gives nulls for its features only (the card's profile and the merchant's
risk stay, as serving would have them); XGBoost routes the nulls as missing, as it does
online.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraud_platform import point_in_time
from fraud_platform.point_in_time import (
    BRONZE,
    REQUEST_TIMESTAMP,
    ROW_ID,
    FeatureFrame,
    bronze_table,
    transactions_table,
    utc,
)
from fraud_platform.s3 import arrow_filesystem
from fraud_platform.settings import S3Settings
from training_pipeline.settings import TrainingSettings

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from feast import FeatureStore

log = logging.getLogger(__name__)

LABELS = "labels"
LABEL_COLUMNS = ["transaction_id", "is_fraud", "label_timestamp", "fraud_scenario"]


# --- Reading bronze -------------------------------------------------------------------


LATEST_LABELS = """
    SELECT * EXCLUDE (read_order) FROM labels
    QUALIFY row_number() OVER (
        PARTITION BY transaction_id ORDER BY label_timestamp DESC, read_order DESC
    ) = 1
"""
"""Each transaction's latest label; of two with the same ``label_timestamp``, the one read
last (the files' and rows' order)."""


def labels_table(
    known_at: datetime | None, since: date | None = None, s3: S3Settings | None = None
) -> pa.Table:
    """Bronze labels known at ``known_at`` (``label_timestamp <= known_at``; all if None),
    each with its ``read_order``.

    Args:
        known_at: The training cutoff.
        since: Labels dated before this day are skipped (they cannot belong to
            transactions from ``since`` on: a label follows its transaction).
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    condition = None
    if known_at is not None:
        condition = ds.field("label_timestamp") <= pd.Timestamp(known_at)
    table = bronze_table(
        s3 or S3Settings(),
        LABELS,
        "label_date",
        since,
        known_at.date() if known_at else None,
        LABEL_COLUMNS,
        condition,
    )
    return table.append_column("read_order", pa.array(np.arange(len(table))))


def read_labels(
    known_at: datetime | None, since: date | None = None, s3: S3Settings | None = None
) -> pd.DataFrame:
    """Bronze labels known at ``known_at``, the latest of each transaction
    (:data:`LATEST_LABELS`), ordered by ``transaction_id``; see :func:`labels_table`."""
    with duckdb_with(labels=labels_table(known_at, since, s3)) as con:
        table = con.sql(f"{LATEST_LABELS} ORDER BY transaction_id").to_arrow_table()
    return _typed(_pandas(table))


def latest_label_day(s3: S3Settings | None = None) -> date | None:
    """The day of the latest ``label_date`` partition of the bronze labels, or None."""
    import pyarrow.fs as pafs

    s3 = s3 or S3Settings()
    base = s3.uri(BRONZE, LABELS).removeprefix("s3://")
    infos = arrow_filesystem(s3).get_file_info(pafs.FileSelector(base, allow_not_found=True))
    days = [
        info.base_name.split("=", 1)[1]
        for info in infos
        if info.type == pafs.FileType.Directory and info.base_name.startswith("label_date=")
    ]
    return date.fromisoformat(max(days)) if days else None


def labelled_transactions(
    start: datetime, end: datetime, labels_known_at: datetime | None, s3: S3Settings | None = None
) -> pd.DataFrame:
    """Transactions of ``[start, end)`` whose label was known at ``labels_known_at``.

    Transactions without a known label are left out: an unlabelled transaction is not a
    genuine one (a genuine label arrives only when the settlement window has passed).
    The latest label of each is joined and the rows ordered in DuckDB: in pandas, on
    string ids, the 9.3M labelled transactions of a 10M-scale training run took 3 minutes,
    mostly sorting; in DuckDB, 34 s (docs/scale-out.md).

    Returns:
        One row per transaction: its bronze columns with ``event_timestamp`` renamed
        ``transaction_timestamp``, and ``is_fraud``, ``label_timestamp``,
        ``fraud_scenario``; ordered by time then id.
    """
    s3 = s3 or S3Settings()
    transactions = transactions_table(start, end, s3)
    labels = labels_table(labels_known_at, since=start.date(), s3=s3)
    with duckdb_with(transactions=transactions, labels=labels) as con:
        table = con.sql(
            f"""
            SELECT t.* RENAME (event_timestamp AS {REQUEST_TIMESTAMP}),
                   l.* EXCLUDE ({ROW_ID})
            FROM transactions t JOIN ({LATEST_LABELS}) l USING ({ROW_ID})
            ORDER BY {REQUEST_TIMESTAMP}, {ROW_ID}
            """
        ).to_arrow_table()
    frame = _pandas(table)
    frame[REQUEST_TIMESTAMP] = utc(frame[REQUEST_TIMESTAMP])
    log.info(
        "labelled transactions %s..%s: %d of %d (labels known at %s)",
        start,
        end,
        len(frame),
        len(transactions),
        labels_known_at,
    )
    return _typed(frame)


def duckdb_with(**tables: pa.Table) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB in UTC with Arrow tables registered under their names."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        con.register(name, table)
    return con


def _pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas with equal strings shared: a card's or merchant's id, a currency or
    a channel is one Python object however many rows hold it (DuckDB's own conversion
    makes one per row: gigabytes at millions of rows)."""
    return table.to_pandas(self_destruct=True, split_blocks=True, deduplicate_objects=True)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Labels as training reads them: the instant in UTC, the label an int8."""
    frame["label_timestamp"] = utc(frame["label_timestamp"])
    frame["is_fraud"] = frame["is_fraud"].astype(np.int8)
    return frame


@dataclass
class TrainingSet(FeatureFrame):
    """Labelled transactions with their features (``counts["labelled"]`` rather than
    ``counts["rows"]``; ``seconds`` adds the time spent reading bronze)."""


def historical_features(
    store: FeatureStore,
    labelled: pd.DataFrame,
    service_name: str | None = None,
) -> TrainingSet:
    """Join the feature service to labelled transactions, point in time, keeping every row
    (``fraud_platform.point_in_time.historical_features`` with the training settings).

    Args:
        store: The Feast store.
        labelled: Labelled transactions (see :func:`labelled_transactions`).
        service_name: The feature service (``FRAUD_FEATURE_SERVICE`` by default).
    """
    found = point_in_time.historical_features(
        store, labelled, service_name or TrainingSettings().feature_service
    )
    counts = {"labelled": found.counts.pop("rows"), **found.counts}
    return TrainingSet(
        frame=found.frame,
        features=found.features,
        feature_service=found.feature_service,
        counts=counts,
        seconds=found.seconds,
    )
