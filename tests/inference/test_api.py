"""``/v1/score`` against the real stack: Redis features, the registered champion, the
same on-demand code as training, and answers for bad input that are never 500s."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

import pytest

from tests.inference.conftest import ServingWorld

pytestmark = pytest.mark.integration

SERVICE = "fraud_detection_v1"


def last_day_transactions(world: ServingWorld):
    """The last materialized day's bronze transactions of the world."""
    from fraud_platform.point_in_time import read_transactions
    from fraud_platform.settings import S3Settings

    end = world.materialized_until
    return read_transactions(end - timedelta(days=1), end, S3Settings())


def payload(
    transaction_id: str,
    card_id: str,
    merchant_id: str,
    amount: float,
    at,
    latitude: float | None = None,
    longitude: float | None = None,
) -> dict:
    body = {
        "transaction_id": transaction_id,
        "card_id": card_id,
        "merchant_id": merchant_id,
        "amount": amount,
        "timestamp": at.isoformat(),
    }
    if latitude is not None:
        body.update(latitude=latitude, longitude=longitude)
    return body


def online_state(card_ids: list[str]) -> dict[str, dict]:
    """What Feast itself reads online for the cards (plain feature names)."""
    from fraud_platform.feast_repo import open_store

    refs = [
        f"card_transaction_features:{name}"
        for name in (
            "amount_mean_30d",
            "amount_max_30d",
            "last_latitude",
            "last_longitude",
            "last_txn_timestamp",
        )
    ] + ["card_profile_features:home_latitude", "card_profile_features:home_longitude"]
    result = (
        open_store()
        .get_online_features(features=refs, entity_rows=[{"card_id": c} for c in card_ids])
        .to_dict()
    )
    return {card: {k: v[i] for k, v in result.items()} for i, card in enumerate(card_ids)}


def test_fast_path_reads_exactly_what_feast_reads_online(world: ServingWorld) -> None:
    """The views served from Feast's rows (not the event-fed ones, whose windows are
    computed at the transaction's instant) read exactly what Feast reads."""
    from fraud_platform.event_state import TransactionEvent, micros
    from fraud_platform.feast_repo import open_store
    from fraud_platform.settings import RedisSettings
    from inference_pipeline.online_features import FULL_NAME_SEPARATOR, ServingPlan
    from inference_pipeline.redis_pipe import RedisPipe

    transactions = last_day_transactions(world).sample(60, random_state=3)
    rows = [
        {"card_id": r.card_id, "merchant_id": r.merchant_id} for r in transactions.itertuples()
    ] + [{"card_id": "no-such-card", "merchant_id": "nope"}]
    request = {
        "amount": [*transactions["amount"].tolist(), 12.5],
        "latitude": [*transactions["latitude"].tolist(), None],
        "longitude": [*transactions["longitude"].tolist(), None],
        "transaction_timestamp": [
            t + timedelta(minutes=30)
            for t in [*transactions["event_timestamp"], transactions["event_timestamp"].iloc[0]]
        ],
    }
    events = [
        TransactionEvent(
            f"read-{i}",
            row["card_id"],
            row["merchant_id"],
            micros(request["transaction_timestamp"][i].to_pydatetime()),
            request["amount"][i],
            None,
            None,
        )
        for i, row in enumerate(rows)
    ]
    store = open_store()
    plan = ServingPlan.resolve(store, SERVICE)
    assert {v.name for v in plan.event_views} == {
        "card_transaction_features",
        "merchant_risk_features",
    }

    async def read():
        pipe = RedisPipe(RedisSettings(), 2.0)
        try:
            return plan.decode(
                await pipe.execute(*plan.pipeline(events, "r")), events, request, "r"
            )
        finally:
            await pipe.close()

    ours = asyncio.run(read())
    entity_rows = [{**row, **{k: v[i] for k, v in request.items()}} for i, row in enumerate(rows)]
    feast = store.get_online_features(
        features=store.get_feature_service(SERVICE), entity_rows=entity_rows
    ).to_dict()
    row_views = {view.name for entity in plan.entities for view in entity.views}
    compared = 0
    for name in plan.feature_names:
        view, short = name.split(FULL_NAME_SEPARATOR, 1)
        if view not in row_views:
            continue
        for i, (mine, theirs) in enumerate(zip(ours.values[name], feast[short], strict=True)):
            both_missing = (mine is None or (isinstance(mine, float) and math.isnan(mine))) and (
                theirs is None or (isinstance(theirs, float) and math.isnan(theirs))
            )
            assert both_missing or mine == theirs, (name, rows[i], mine, theirs)
            compared += 1
    assert compared > 100
    # The unknown card has no event state: nothing but what the request alone gives.
    assert ours.event_times["card_transaction_features"][-1] is None
    assert ours.values["card_transaction_features__txn_count_24h"][-1] == 0


def test_known_card_is_scored_by_the_champion_with_fresh_features(world: ServingWorld) -> None:
    from fraud_platform.decision import decide
    from fraud_platform.model_registry import load_version

    last = last_day_transactions(world).sort_values("event_timestamp").iloc[-1]
    at = last.event_timestamp + timedelta(minutes=10)
    with world.client() as client:
        response = client.post(
            "/v1/score",
            json=payload(
                "t-known",
                last.card_id,
                last.merchant_id,
                float(last.amount),
                at,
                float(last.latitude),
                float(last.longitude),
            ),
        )
    assert response.status_code == 200, response.text
    score = response.json()
    assert score["model"] == {
        "name": world.model_name,
        "version": world.champion,
        "alias": "champion",
    }
    assert not score["card_unknown"] and not score["merchant_unknown"]
    assert score["missing_features"] == []
    # The card's windows are computed at the transaction's own instant.
    assert score["feature_age_seconds"] == pytest.approx(0, abs=1e-3)
    _, metadata = load_version(world.model_name, world.champion)
    thresholds = metadata["thresholds"]
    assert score["decision"] == decide(
        score["fraud_probability"], thresholds["review"], thresholds["decline"]
    )


def test_a_fraud_pattern_scores_above_a_normal_transaction_of_the_same_card(
    world: ServingWorld,
) -> None:
    transactions = last_day_transactions(world)
    busiest = transactions["card_id"].value_counts().index[:5].tolist()
    state = online_state(busiest)
    with world.client() as client:
        for card in busiest:
            s = state[card]
            last_at = transactions[transactions["card_id"] == card]["event_timestamp"].max()
            merchant = transactions[transactions["card_id"] == card]["merchant_id"].iloc[-1]
            normal = payload(
                f"normal-{card}",
                card,
                merchant,
                s["amount_mean_30d"],
                last_at + timedelta(hours=3),
                s["home_latitude"],
                s["home_longitude"],
            )
            # Impossible travel: the other side of the world four minutes after the last
            # transaction, for several times the card's largest amount of the month.
            fraud = payload(
                f"fraud-{card}",
                card,
                merchant,
                6 * s["amount_max_30d"],
                last_at + timedelta(minutes=4),
                -s["last_latitude"],
                s["last_longitude"] + 180 if s["last_longitude"] < 0 else s["last_longitude"] - 180,
            )
            scores = [client.post("/v1/score", json=body).json() for body in (normal, fraud)]
            assert scores[1]["fraud_probability"] > scores[0]["fraud_probability"], (card, scores)


def test_unknown_card_is_scored_from_defaults_and_flagged(world: ServingWorld) -> None:
    last = last_day_transactions(world).iloc[0]
    with world.client() as client:
        response = client.post(
            "/v1/score",
            json=payload("t-new", "card-never-seen", last.merchant_id, 25.0, last.event_timestamp),
        )
    assert response.status_code == 200, response.text
    score = response.json()
    assert score["card_unknown"] and not score["merchant_unknown"]
    assert 0.0 <= score["fraud_probability"] <= 1.0
    # No profile to read; its event state is empty, as for any card's first transaction.
    assert {"credit_limit", "distance_from_home_km"} <= set(score["missing_features"])
    assert "txn_count_24h" not in score["missing_features"]


def test_batch_scores_equal_single_scores(world: ServingWorld) -> None:
    # In time order: each transaction of the batch then reads the same state (the ones
    # before it) as when it is sent again alone.
    sample = last_day_transactions(world).sample(5, random_state=1).sort_values("event_timestamp")
    bodies = [
        payload(
            f"b{i}",
            r.card_id,
            r.merchant_id,
            float(r.amount),
            r.event_timestamp + timedelta(minutes=5),
            float(r.latitude),
            float(r.longitude),
        )
        for i, r in enumerate(sample.itertuples())
    ]
    with world.client() as client:
        batch = client.post("/v1/score/batch", json={"transactions": bodies})
        singles = [client.post("/v1/score", json=body).json() for body in bodies]
    assert batch.status_code == 200, batch.text
    assert [s["transaction_id"] for s in batch.json()["scores"]] == [
        b["transaction_id"] for b in bodies
    ]
    assert [s["fraud_probability"] for s in batch.json()["scores"]] == pytest.approx(
        [s["fraud_probability"] for s in singles], rel=1e-6
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "card_id": "c1",
                "merchant_id": "m1",
                "amount": 1,
                "timestamp": "2026-03-01T00:00:00Z",
            },
            "transaction_id",
        ),
        (
            {
                "transaction_id": "t",
                "card_id": "c1",
                "merchant_id": "m1",
                "amount": "ten",
                "timestamp": "2026-03-01T00:00:00Z",
            },
            "amount",
        ),
        (
            {
                "transaction_id": "t",
                "card_id": "c1",
                "merchant_id": "m1",
                "amount": -5,
                "timestamp": "2026-03-01T00:00:00Z",
            },
            "amount",
        ),
        (
            {
                "transaction_id": "t",
                "card_id": "c1",
                "merchant_id": "m1",
                "amount": 5,
                "timestamp": "soon",
            },
            "timestamp",
        ),
        (
            {
                "transaction_id": "t",
                "card_id": "c1",
                "merchant_id": "m1",
                "amount": 5,
                "timestamp": "2026-03-01T00:00:00Z",
                "latitude": 123,
            },
            "latitude",
        ),
    ],
)
def test_malformed_payloads_get_422_naming_the_field(
    world: ServingWorld, body: dict, field: str
) -> None:
    with world.client() as client:
        response = client.post("/v1/score", json=body)
    assert response.status_code == 422
    assert field in {part for error in response.json()["detail"] for part in error["loc"]}


def test_requests_without_the_right_key_get_401_and_oversized_batches_422(
    world: ServingWorld,
) -> None:
    body = payload("t", "c", "m", 1.0, world.materialized_until)
    with world.client() as client:
        assert (
            client.post("/v1/score", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
        )
        assert (
            client.post(
                "/v1/score", content=b"{not json", headers={"content-type": "application/json"}
            ).status_code
            == 422
        )
        too_many = client.post("/v1/score/batch", json={"transactions": [body] * 501})
        assert too_many.status_code == 422 and "transactions" in too_many.text
        assert client.post("/v1/score/batch", json={"transactions": []}).status_code == 422
    import httpx

    assert httpx.post(f"{world.url}/v1/score", json=body).status_code == 401


def test_health_readiness_metrics_and_docs(world: ServingWorld) -> None:
    import httpx

    assert httpx.get(f"{world.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{world.url}/readyz")
    assert ready.status_code == 200 and ready.json()["model"]["version"] == world.champion
    metrics = httpx.get(f"{world.url}/metrics").text
    assert 'fraud_api_request_seconds_bucket{endpoint="score",le="0.001"}' in metrics
    assert "fraud_api_decisions_total" in metrics and "fraud_api_batch_transactions" in metrics
    assert (
        f'fraud_api_model_info{{alias="champion",name="{world.model_name}",'
        f'version="{world.champion}"}} 1.0'
    ) in metrics
    spec = httpx.get(f"{world.url}/openapi.json").json()
    assert {"/v1/score", "/v1/score/batch", "/healthz", "/readyz"} <= set(spec["paths"])
    assert httpx.get(f"{world.url}/docs").status_code == 200
