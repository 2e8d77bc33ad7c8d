"""Entity rows of the point-in-time join, on tiny hand-built frames."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from fraud_platform import point_in_time


def labelled(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    ids, cards, merchants, times = zip(*rows, strict=True)
    return pd.DataFrame({
        "transaction_id": ids, "card_id": cards, "merchant_id": merchants,
        "amount": [10.0] * len(rows), "latitude": [48.85] * len(rows),
        "longitude": [2.35] * len(rows),
        "transaction_timestamp": pd.to_datetime(list(times), utc=True),
    })


def test_entity_rows_sit_one_microsecond_before_the_transaction() -> None:
    frame = labelled([("t1", "c1", "m1", "2026-03-02T10:00:00Z")])
    entity = point_in_time.entity_frame(frame)
    at = pd.Timestamp("2026-03-02T10:00:00Z")
    assert entity.loc[0, "event_timestamp"] == at - timedelta(microseconds=1)
    # The request-time features get the transaction's own time.
    assert entity.loc[0, "transaction_timestamp"] == at
    assert list(entity.columns) == ["transaction_id", "card_id", "merchant_id",
                                    "event_timestamp", "amount", "latitude", "longitude",
                                    "transaction_timestamp"]


def test_rows_sharing_keys_and_time_go_to_different_rounds() -> None:
    frame = labelled([
        ("t1", "c1", "m1", "2026-03-02T10:00:00Z"),
        ("t2", "c1", "m2", "2026-03-02T10:00:00Z"),   # same card, same instant as t1
        ("t3", "c2", "m1", "2026-03-02T10:00:00Z"),   # same merchant, same instant as t1
        ("t4", "c3", "m3", "2026-03-02T10:00:00Z"),   # shares nothing
        ("t5", "c1", "m1", "2026-03-02T11:00:00Z"),   # another instant
    ])
    entity = point_in_time.entity_frame(frame)
    rounds = point_in_time._rounds(entity)
    assert rounds[3] == 0 and rounds[4] == 0
    for keys in (["card_id", "event_timestamp"], ["merchant_id", "event_timestamp"]):
        for r in np.unique(rounds):
            assert not entity[rounds == r].duplicated(keys).any()
    # t2 and t3 share nothing with each other: they fit in one extra round.
    assert sorted(rounds[:3]) == [0, 1, 1]


def test_batches_keep_every_row_once_and_split_by_whole_cards() -> None:
    start = pd.Timestamp("2026-03-02T10:00:00Z")
    rows = [(f"t{i}", f"c{i % 7}", f"m{i % 3}", (start + timedelta(minutes=i)).isoformat())
            for i in range(100)]
    entity = point_in_time.entity_frame(labelled(rows))
    batches = point_in_time._batches(entity, batch_rows=30)
    ids = pd.concat(batches)["transaction_id"]
    assert sorted(ids) == sorted(entity["transaction_id"]) and ids.is_unique
    assert len(batches) > 1
    cards = [set(batch["card_id"]) for batch in batches]
    assert all(not (a & b) for i, a in enumerate(cards) for b in cards[i + 1:])


def test_feature_names_follow_the_service() -> None:
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.STRING)
    source = FileSource(name="s", path="s3://bucket/table", timestamp_field="event_timestamp")
    view = FeatureView(name="card_view", entities=[card], source=source,
                       schema=[Field(name="txn_count_1h", dtype=Int64),
                               Field(name="amount_mean_1h", dtype=Float64)])
    service = FeatureService(name="svc", features=[view[["amount_mean_1h"]], view])
    assert point_in_time.feature_refs(service) == {"card_view": ["txn_count_1h", "amount_mean_1h"]}
    assert point_in_time.feature_names(service) == ["card_view__txn_count_1h",
                                              "card_view__amount_mean_1h"]
