"""Materialization into the real Redis, and what serving then reads: the online vector of
the feature service equals the offline one as of the materialization time, our writer
writes exactly what Feast's own engine writes, a later event always wins, and the
registry's intervals let incremental runs (ours and Feast's) continue."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

import pytest

from feature_pipeline.feature_store import open_store
from feature_pipeline.materialize import materialize
from feature_pipeline.parity import check_parity, request_rows
from fraud_platform.redis_client import redis_client
from tests.feature_repo.conftest import AS_OF, DAY1, DAY2, FEAST_WRITER_DB, redis_keys

pytestmark = pytest.mark.integration

SERVICE = "fraud_detection_v1"


@pytest.fixture(scope="module")
def materialized(applied, feature_tables) -> dict[str, Any]:
    """The first, incremental materialization up to AS_OF, in batches of 7 keys so that
    the pipelined path runs over several batches."""
    return materialize(AS_OF, batch_rows=7)


def online_vectors(store, tables) -> dict[str, list]:
    rows = request_rows(
        [
            {"card_id": c, "merchant_id": tables.merchants[i % len(tables.merchants)]}
            for i, c in enumerate(tables.cards)
        ],
        AS_OF,
    )
    service = store.get_feature_service(SERVICE)
    return store.get_online_features(features=service, entity_rows=rows).to_dict()


def test_first_materialization_loads_every_key(materialized, feature_tables) -> None:
    views = materialized["views"]
    assert views["card_transaction_features"]["keys_written"] == len(feature_tables.cards)
    assert views["card_profile_features"]["keys_written"] == len(feature_tables.cards)
    assert views["merchant_risk_features"]["keys_written"] == len(feature_tables.merchants)
    # First run: one TTL back from the end, as materialize-incremental does.
    assert views["card_profile_features"]["start"] == (AS_OF - timedelta(days=3650)).isoformat()


def test_online_vector_equals_offline_vector(materialized, feature_tables) -> None:
    result = check_parity(sample_size=1000, as_of=AS_OF)
    assert result["differing_features"] == [], result["differences"]
    assert result["ok"]
    assert result["rows_compared"] == len(feature_tables.cards)
    assert result["features_compared"] == 48
    assert result["all_null_features"] == []


def test_latest_row_per_key_whatever_the_order() -> None:
    import pyarrow as pa

    from feature_pipeline.materialize import latest_rows

    t = [datetime(2026, 10, 1, h) for h in range(4)]
    rows = pa.table(
        {
            "card_id": ["a", "b", "a", "a", None, "b", "a"],
            "event_timestamp": pa.array(
                [t[2], t[0], t[3], t[1], t[3], t[1], t[3]], pa.timestamp("ns")
            ),
            # A rerun's row: same event time as "a"'s t[3] row, created later.
            "created": pa.array([t[0], t[0], t[0], t[0], t[0], t[0], t[1]], pa.timestamp("ns")),
            "value": [1, 2, 3, 4, 5, 6, 7],
        }
    )
    for order in ([0, 1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1, 0], [3, 6, 0, 5, 2, 4, 1]):
        latest = latest_rows(rows.take(order), "card_id", "event_timestamp", "created")
        assert sorted(
            zip(latest["card_id"].to_pylist(), latest["value"].to_pylist(), strict=True)
        ) == [("a", 7), ("b", 6)]


def test_parity_names_the_features_that_differ(materialized, feature_tables) -> None:
    from feast.infra.online_stores.helpers import _mmh3
    from feast.protos.feast.types.Value_pb2 import Value

    store = open_store()
    card = feature_tables.cards[3]
    (key,) = [k for k in redis_keys(feature_tables, store.project) if card.encode() in k]
    field = _mmh3("card_transaction_features:amount_mean_30d")
    with redis_client() as client:
        client.hset(key, field, Value(double_val=1e6).SerializeToString())
    try:
        result = check_parity(sample_size=1000, as_of=AS_OF)
    finally:
        # Same event time: our writer rewrites it, restoring the value.
        materialize(AS_OF, DAY1, feature_views=["card_transaction_features"])
    assert not result["ok"]
    # The stored feature and the request-time features computed from it.
    assert result["differing_features"] == [
        "amount_mean_30d",
        "amount_to_mean_30d_ratio",
        "amount_z_like_30d",
    ]
    assert {d["card_id"] for d in result["differences"]} == {card}
    assert check_parity(sample_size=1000, as_of=AS_OF)["ok"]


def test_fast_writer_writes_what_feasts_engine_writes(
    materialized, feature_tables, monkeypatch
) -> None:
    ours = open_store()
    monkeypatch.setenv(
        "REDIS_CONNECTION_STRING", os.environ["REDIS_CONNECTION_STRING"] + f",db={FEAST_WRITER_DB}"
    )
    feast = open_store()
    feast.materialize(AS_OF - timedelta(days=3650), AS_OF)

    assert online_vectors(ours, feature_tables) == online_vectors(feast, feature_tables)
    keys = redis_keys(feature_tables, ours.project)
    with redis_client() as mine, redis_client(db=FEAST_WRITER_DB) as theirs:
        different = [k for k in keys if mine.hgetall(k) != theirs.hgetall(k)]
        assert all(mine.exists(k) for k in keys)
    assert different == [], "the Redis hashes differ byte for byte"


def test_a_later_event_wins_whatever_the_order(materialized, feature_tables) -> None:
    store = open_store()
    before = online_vectors(store, feature_tables)
    # Day 1 again, after day 2 is in Redis: an older batch arriving late.
    late = materialize(DAY2, DAY1, feature_views=["card_transaction_features"], batch_rows=5)
    view = late["views"]["card_transaction_features"]
    day1_only = [c for i, c in enumerate(feature_tables.cards) if i % 3 == 0]
    both_days = [c for i, c in enumerate(feature_tables.cards) if i % 3 == 2]
    assert view["keys_skipped"] == len(both_days)
    assert view["keys_written"] == len(day1_only), "same event time: rewritten"
    assert online_vectors(store, feature_tables) == before
    for card in both_days:
        row = feature_tables.latest_card_row(card)
        online = store.get_online_features(
            features=["card_transaction_features:last_txn_timestamp"],
            entity_rows=[{"card_id": card}],
        ).to_dict()
        assert online["last_txn_timestamp"] == [row["last_txn_timestamp"]]


def test_incremental_runs_continue_from_the_registry(materialized, feature_tables) -> None:
    from feast import FeatureViewState

    store = open_store()
    later = materialize(AS_OF + timedelta(hours=1))
    for name, view in later["views"].items():
        if name == "card_profile_features":  # a snapshot: read whole on every run
            ttl = store.get_feature_view(name).ttl
            assert view["start"] == (AS_OF + timedelta(hours=1) - ttl).isoformat()
            assert view["keys"] > 0
            continue
        assert view["start"] == (AS_OF - timedelta(minutes=15)).isoformat(), name
        assert view["keys"] == 0, "no rows after AS_OF"
    store.materialize_incremental(AS_OF + timedelta(hours=2))
    store.refresh_registry()
    for view in store.list_feature_views():
        assert view.most_recent_end_time.isoformat() == (AS_OF + timedelta(hours=2)).isoformat()
        assert view.state == FeatureViewState.AVAILABLE_ONLINE
        assert (AS_OF + timedelta(hours=1), AS_OF + timedelta(hours=2)) in [
            (start, end) for start, end in view.materialization_intervals
        ]


def test_key_ttl_is_set_like_feasts_writer(materialized, feature_tables) -> None:
    store = open_store()
    store.config.online_store.key_ttl_seconds = 3600
    result = materialize(AS_OF, DAY1, feature_views=["merchant_risk_features"], store=store)
    assert result["views"]["merchant_risk_features"]["keys_written"] == len(
        feature_tables.merchants
    )
    keys = [
        k
        for k in redis_keys(feature_tables, store.project)
        if any(m.encode() in k for m in feature_tables.merchants)
    ]
    with redis_client() as client:
        ttls = [client.ttl(k) for k in keys]
        for key in keys:
            client.persist(key)
    assert all(0 < ttl <= 3600 for ttl in ttls), ttls
