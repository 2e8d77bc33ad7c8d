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
    read_bronze,
    read_transactions,
    utc,
)
from fraud_platform.s3 import arrow_filesystem
from fraud_platform.settings import S3Settings
from training_pipeline.settings import TrainingSettings

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)

LABELS = "labels"
LABEL_COLUMNS = ["transaction_id", "is_fraud", "label_timestamp", "fraud_scenario"]


# --- Reading bronze -------------------------------------------------------------------


def read_labels(
    known_at: datetime | None, since: date | None = None, s3: S3Settings | None = None
) -> pd.DataFrame:
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
    frame = read_bronze(
        s3,
        LABELS,
        "label_date",
        since,
        known_at.date() if known_at else None,
        LABEL_COLUMNS,
        condition,
    )
    frame["label_timestamp"] = utc(frame["label_timestamp"])
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
    log.info(
        "labelled transactions %s..%s: %d of %d (labels known at %s)",
        start,
        end,
        len(frame),
        len(transactions),
        labels_known_at,
    )
    return frame.sort_values([REQUEST_TIMESTAMP, ROW_ID], kind="mergesort").reset_index(drop=True)


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
