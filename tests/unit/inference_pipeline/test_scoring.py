"""Scoring logic without services: decisions, the response, the batcher, the model swap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from fraud_platform.decision import decide
from inference_pipeline.batcher import MicroBatcher
from inference_pipeline.model import ModelHolder, ModelUnavailableError, ServedModel
from inference_pipeline.online_features import OnlineFeatures, ServingPlan, ViewPlan
from inference_pipeline.schemas import ModelRef, Transaction
from inference_pipeline.scoring import feature_matrix, to_scores
from inference_pipeline.settings import ApiSettings, ModelSettings

FEATURES = ("card_view__amount_mean", "merchant_view__fraud_rate", "odfv__ratio")


def plan() -> ServingPlan:
    from inference_pipeline.online_features import EntityPlan

    entities = (
        EntityPlan("card_id", (ViewPlan("card_view", ("amount_mean",)),), ()),
        EntityPlan("merchant_id", (ViewPlan("merchant_view", ("fraud_rate",)),), ()),
    )
    return ServingPlan("p", "svc", entities, (), FEATURES, ())


def booster():
    """A small real booster: fraud probability rises with the ratio feature."""
    import xgboost as xgb

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x[:, 2] > 1.0).astype(np.float32)
    return xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(x, label=y),
        num_boost_round=20,
    )


def metadata(review=0.3, decline=0.8) -> dict:
    return {
        "features": list(FEATURES),
        "feature_service": "svc",
        "thresholds": {"review": review, "decline": decline},
    }


def served(version="1") -> ServedModel:
    return ServedModel.build(
        ModelRef(name="m", version=version, alias="champion"),
        booster(),
        metadata(),
        lambda service: plan(),
    )


def transaction(**overrides) -> Transaction:
    payload = {
        "transaction_id": "t1",
        "card_id": "c1",
        "merchant_id": "m1",
        "amount": 10.0,
        "timestamp": "2026-03-02T12:00:00Z",
    }
    return Transaction(**{**payload, **overrides})


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.0, "approve"),
        (0.2999, "approve"),
        (0.3, "review"),
        (0.7999, "review"),
        (0.8, "decline"),
        (1.0, "decline"),
    ],
)
def test_decision_thresholds_are_inclusive_lower_bounds(p: float, expected: str) -> None:
    assert decide(p, review=0.3, decline=0.8) == expected


def test_transaction_validation_names_the_field() -> None:
    assert transaction(timestamp="2026-03-02T12:00:00").timestamp.tzinfo == UTC
    for field, value in [
        ("amount", -1),
        ("amount", "abc"),
        ("latitude", 91),
        ("card_id", ""),
        ("timestamp", "yesterday"),
    ]:
        with pytest.raises(ValidationError) as error:
            transaction(**{field: value})
        assert error.value.errors()[0]["loc"] == (field,)


def test_response_flags_unknown_card_missing_features_and_feature_age() -> None:
    model = served()
    at = datetime(2026, 3, 2, 12, tzinfo=UTC).timestamp()
    features = OnlineFeatures(
        values={
            "card_view__amount_mean": [50.0, None, 50.0],
            "merchant_view__fraud_rate": [0.01, 0.02, 0.01],
            "odfv__ratio": [3.0, None, -2.0],
        },
        event_times={
            "card_view": [at - 120.0, None, at - 120.0],
            "merchant_view": [at - 60.0, at - 600, at - 60.0],
        },
    )
    rows = [
        transaction(),
        transaction(transaction_id="t2", card_id="new-card"),
        transaction(transaction_id="t3"),
    ]
    matrix = feature_matrix(model, features)
    assert matrix.dtype == np.float32 and matrix.shape == (3, 3)
    assert np.isnan(matrix[1, 0]) and np.isnan(matrix[1, 2]) and matrix[0, 2] == 3.0
    known, unknown, normal = to_scores(model, rows, features, model.predict(matrix))
    assert (known.card_unknown, known.merchant_unknown, known.missing_features) == (
        False,
        False,
        [],
    )
    assert known.feature_age_seconds == pytest.approx(60.0)
    assert unknown.card_unknown and not unknown.merchant_unknown
    assert unknown.missing_features == ["amount_mean", "ratio"]
    assert unknown.feature_age_seconds == pytest.approx(600.0)
    # The model's inputs are in its order: the high-ratio row scores above the normal one.
    assert known.fraud_probability > 0.5 > normal.fraud_probability
    assert known.decision == decide(known.fraud_probability, 0.3, 0.8)
    assert known.model.version == "1"


def test_model_taking_features_its_service_lacks_is_refused() -> None:
    meta = {**metadata(), "features": [*FEATURES, "card_view__not_served"]}
    with pytest.raises(ValueError, match="not_served"):
        ServedModel.build(
            ModelRef(name="m", version="2", alias="champion"),
            booster(),
            meta,
            lambda service: plan(),
        )


def test_holder_swaps_only_when_the_alias_moves_and_keeps_serving_on_errors() -> None:
    versions = {"now": None}
    loads = []

    def load(name, version):
        loads.append(version)
        if version == "broken":
            raise OSError("artifact store at s3.internal:9000 down")
        return booster(), metadata()

    holder = ModelHolder(
        ModelSettings(),
        lambda service: plan(),
        load=load,
        find_version=lambda name, alias: versions["now"],
    )
    assert not holder.refresh()
    with pytest.raises(ModelUnavailableError, match="has the alias"):
        holder.get()
    versions["now"] = "1"
    assert holder.refresh() and holder.get().ref.version == "1"
    assert not holder.refresh() and loads == ["1"]  # same version: no reload
    versions["now"] = "broken"
    assert not holder.refresh()
    assert holder.get().ref.version == "1" and "OSError" in holder.problem
    assert "s3.internal" not in holder.problem  # shown to unauthenticated callers
    versions["now"] = "2"
    assert holder.refresh() and holder.get().ref.version == "2" and holder.problem is None


def test_batcher_shares_batches_between_concurrent_requests_and_reports_errors() -> None:
    sizes: list[int] = []

    async def handle(items):
        await asyncio.sleep(0.01)  # the Redis round trip
        if "bad" in items:
            raise RuntimeError("redis down")
        return [item * 2 for item in items]

    async def scenario():
        batcher = MicroBatcher(handle, max_batch=4, observe_size=sizes.append)
        alone = await batcher.submit(1)
        together = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
        failing = await asyncio.gather(
            batcher.submit(5), batcher.submit("bad"), batcher.submit(3), return_exceptions=True
        )
        return alone, together, failing

    alone, together, failing = asyncio.run(scenario())
    assert alone == 2 and together == [i * 2 for i in range(10)]
    # A lone request goes at once, as does the first of ten concurrent ones; the nine that
    # arrive while it is in Redis share batches of at most four.
    assert sizes[:5] == [1, 1, 4, 4, 1]
    # Every request of a failed batch gets its error; the one scored before it does not.
    assert failing[0] == 10
    assert all(isinstance(result, RuntimeError) for result in failing[1:])


def test_batcher_sheds_beyond_its_queue_bound_and_past_its_deadline() -> None:
    from inference_pipeline.batcher import OverloadedError

    async def handle(items):
        await asyncio.sleep(0.1)  # a slow Redis: each batch takes 100 ms
        return [item * 2 for item in items]

    async def scenario():
        batcher = MicroBatcher(handle, max_batch=2, max_pending=6, max_wait=0.15)
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0)  # the first batch is in flight
        burst = await asyncio.gather(
            *(batcher.submit(i) for i in range(1, 11)), return_exceptions=True
        )
        return await first, burst

    first, burst = asyncio.run(scenario())
    assert first == 0
    # Four beyond the bound of six are refused at once. Of the six queued, the batch formed
    # at 100 ms is within the 150 ms deadline and scored; the ones whose batch would form
    # at 200 ms are shed instead of being answered late.
    assert burst[:2] == [2, 4]
    assert all(isinstance(r, OverloadedError) for r in burst[2:])
    assert [("deadline" if "longer than" in str(r) else "bound") for r in burst[2:]] == [
        "deadline"
    ] * 4 + ["bound"] * 4


def test_api_key_is_required_unless_auth_is_explicitly_disabled(monkeypatch) -> None:
    monkeypatch.delenv("FRAUD_API_KEY", raising=False)
    monkeypatch.delenv("FRAUD_API_AUTH_DISABLED", raising=False)
    with pytest.raises(ValidationError, match="FRAUD_API_KEY"):
        ApiSettings()
    monkeypatch.setenv("FRAUD_API_AUTH_DISABLED", "true")
    assert ApiSettings().auth_disabled
