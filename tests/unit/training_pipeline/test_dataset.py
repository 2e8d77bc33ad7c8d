"""Entity rows of the point-in-time join, on tiny hand-built frames."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from fraud_platform import point_in_time


def labelled(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    ids, cards, merchants, times = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "transaction_id": ids,
            "card_id": cards,
            "merchant_id": merchants,
            "amount": [10.0] * len(rows),
            "latitude": [48.85] * len(rows),
            "longitude": [2.35] * len(rows),
            "transaction_timestamp": pd.to_datetime(list(times), utc=True),
        }
    )


def test_entity_rows_sit_one_microsecond_before_the_transaction() -> None:
    frame = labelled([("t1", "c1", "m1", "2026-03-02T10:00:00Z")])
    entity = point_in_time.entity_frame(frame)
    at = pd.Timestamp("2026-03-02T10:00:00Z")
    assert entity.loc[0, "event_timestamp"] == at - timedelta(microseconds=1)
    # The request-time features get the transaction's own time.
    assert entity.loc[0, "transaction_timestamp"] == at
    assert list(entity.columns) == [
        "transaction_id",
        "card_id",
        "merchant_id",
        "event_timestamp",
        "amount",
        "latitude",
        "longitude",
        "transaction_timestamp",
    ]


def test_feature_names_follow_the_service() -> None:
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.STRING)
    source = FileSource(name="s", path="s3://bucket/table", timestamp_field="event_timestamp")
    view = FeatureView(
        name="card_view",
        entities=[card],
        source=source,
        schema=[
            Field(name="txn_count_1h", dtype=Int64),
            Field(name="amount_mean_1h", dtype=Float64),
        ],
    )
    service = FeatureService(name="svc", features=[view[["amount_mean_1h"]], view])
    assert point_in_time.feature_refs(service) == {"card_view": ["txn_count_1h", "amount_mean_1h"]}
    assert point_in_time.feature_names(service) == [
        "card_view__txn_count_1h",
        "card_view__amount_mean_1h",
    ]


def test_a_window_keeps_the_rows_labelled_by_its_cutoff_with_those_labels() -> None:
    """Taken once, in the frame's order; a row unlabelled at the cutoff is left out, a
    label changed after it is not seen. Moved rather than copied, the windows are the
    same and the frame is left without columns."""
    import numpy as np
    import pandas as pd

    from training_pipeline.preparation import labelled_positions, moved_rows, with_labels

    at = pd.Timestamp("2026-01-01", tz="UTC")
    frame = pd.DataFrame(
        {
            "transaction_id": ["t1", "t2", "t3", "t4"],
            "feature": [1.0, 2.0, 3.0, 4.0],
            "is_fraud": np.array([1, 1, 0, 1], np.int8),  # the latest labels
            "label_timestamp": [at + pd.Timedelta(days=d) for d in (9, 9, 9, 9)],
        },
        index=[10, 11, 12, 13],
    )
    known = pd.DataFrame(
        {
            "transaction_id": ["t4", "t3", "t1"],  # t2 not labelled yet
            "is_fraud": np.array([0, 0, 1], np.int8),  # t4 was genuine at the cutoff
            "label_timestamp": [at, at, at],
        }
    )
    rows, found = labelled_positions(frame, np.array([0, 1, 3]), known)
    window = with_labels(frame.take(rows), known, found)
    assert list(window["transaction_id"]) == ["t1", "t4"]
    assert list(window["feature"]) == [1.0, 4.0]
    assert list(window["is_fraud"]) == [1, 0] and window["is_fraud"].dtype == np.int8
    assert list(window["label_timestamp"]) == [at, at]
    assert list(window.index) == [0, 1]
    assert list(frame["is_fraud"]) == [1, 1, 0, 1]  # the frame itself is not changed
    own_rows, own_found = labelled_positions(frame, np.array([2, 3]), None)
    own = with_labels(frame.take(own_rows), None, own_found)
    assert list(own["is_fraud"]) == [0, 1] and list(own.index) == [0, 1]

    taken = [frame.take(rows), frame.take(own_rows)]
    moved = moved_rows(frame, [rows, own_rows])
    for copy, window in zip(taken, moved, strict=True):
        pd.testing.assert_frame_equal(window, copy.reset_index(drop=True))
    assert list(frame.columns) == []


def test_a_window_of_frauds_only_is_refused_with_its_fix() -> None:
    """Labels known too early (a label delay of 0) leave the last days with chargebacks
    only; early stopping on such a window stops at the first tree."""
    import pandas as pd
    import pytest

    from training_pipeline.preflight import ConfigurationError
    from training_pipeline.preparation import SplitFrames, check_windows

    mixed = pd.DataFrame({"is_fraud": [0, 1, 0]})
    check_windows(SplitFrames(fit=mixed, validation=mixed, test=mixed))
    frauds = pd.DataFrame({"is_fraud": [1, 1]})
    with pytest.raises(ConfigurationError, match="validation window's 2 labelled rows are all"):
        check_windows(SplitFrames(fit=mixed, validation=frauds, test=mixed))
    with pytest.raises(ValueError, match="test window has no labelled fraud"):
        check_windows(SplitFrames(fit=mixed, validation=mixed, test=mixed.iloc[[0]]))


def test_each_transaction_keeps_its_latest_label_and_of_a_tie_the_one_read_last() -> None:
    """A chargeback after a genuine label replaces it; two labels of the same instant
    resolve by the order they were read in, not by chance (DuckDB's window order alone
    leaves ties unordered)."""
    import pyarrow as pa

    from training_pipeline.dataset import LATEST_LABELS, duckdb_with

    at = pd.Timestamp("2026-01-01", tz="UTC")
    labels = pa.table(
        {
            "transaction_id": ["t1", "t2", "t1", "t2", "t3"],
            "is_fraud": [0, 1, 1, 0, 0],
            "label_timestamp": [at, at, at + pd.Timedelta(days=1), at, at],
            "fraud_scenario": [None, "a", "b", None, None],
            "read_order": [0, 1, 2, 3, 4],
        }
    )
    with duckdb_with(labels=labels) as con:
        latest = con.sql(f"{LATEST_LABELS} ORDER BY transaction_id").df()
    assert list(latest["transaction_id"]) == ["t1", "t2", "t3"]
    assert list(latest["is_fraud"]) == [1, 0, 0]  # t1's later label, t2's label read last
    assert list(latest.columns) == [
        "transaction_id",
        "is_fraud",
        "label_timestamp",
        "fraud_scenario",
    ]
