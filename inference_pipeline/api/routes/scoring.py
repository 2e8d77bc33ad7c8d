"""``POST /v1/score`` and ``/v1/score/batch``: fraud scores from the online features."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, and
# they refer to the batch limit read in scoring_router.
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import Response

from inference_pipeline.api.errors import UNAVAILABLE, unavailable
from inference_pipeline.api.metrics import ApiMetrics
from inference_pipeline.api.runtime import Runtime
from inference_pipeline.batcher import OverloadedError
from inference_pipeline.model import ModelUnavailableError
from inference_pipeline.redis_pipe import RedisUnavailableError
from inference_pipeline.schemas import BatchScores, Score, Transaction
from inference_pipeline.settings import ApiSettings

JSON = "application/json"


class ScoreOne:
    """One transaction scored through the micro-batcher, observed and serialized: the body
    of ``POST /v1/score``, shared by the route and ``api.direct_score``.

    Raises:
        fastapi.HTTPException: a 503 when Redis, the model or the queue cannot serve.
    """

    def __init__(self, runtime: Runtime, metrics: ApiMetrics) -> None:
        self.runtime = runtime
        self.metrics = metrics

    async def __call__(self, transaction: Transaction) -> bytes:
        started = time.perf_counter()
        try:
            result = await self.runtime.batcher.submit(transaction)
        except (RedisUnavailableError, ModelUnavailableError, OverloadedError) as exc:
            raise unavailable(self.metrics, exc) from exc
        _observe(self.metrics, [result], "score", started)
        return _json(result)


def scoring_router(
    runtime: Runtime,
    api: ApiSettings,
    metrics: ApiMetrics,
    authorize: Callable[..., Awaitable[Any]],
    score_one: ScoreOne,
) -> APIRouter:
    """The scoring routes; one transaction goes through the micro-batcher, a batch
    straight to the scorer."""
    router = APIRouter(tags=["scoring"])

    @router.post(
        "/v1/score",
        response_model=Score,
        dependencies=[Depends(authorize)],
        responses=UNAVAILABLE,
    )
    async def score(transaction: Transaction) -> Response:
        """Score one transaction by its card's and merchant's online features."""
        return Response(await score_one(transaction), media_type=JSON)

    @router.post(
        "/v1/score/batch",
        response_model=BatchScores,
        dependencies=[Depends(authorize)],
        responses=UNAVAILABLE,
    )
    async def score_batch(
        transactions: Annotated[
            list[Transaction],
            Body(
                embed=True,
                min_length=1,
                max_length=api.batch_max_transactions,
                description="At most FRAUD_BATCH_MAX_TRANSACTIONS transactions.",
            ),
        ],
    ) -> Response:
        """Score several transactions with one Redis round trip and one model call."""
        started = time.perf_counter()
        try:
            results = await runtime.scorer.score(transactions)
        except (RedisUnavailableError, ModelUnavailableError) as exc:
            raise unavailable(metrics, exc) from exc
        _observe(metrics, results, "score_batch", started)
        return Response(_json(BatchScores.model_construct(scores=results)), media_type=JSON)

    return router


def _observe(metrics: ApiMetrics, scores: list[Score], endpoint: str, started: float) -> None:
    metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
    for score in scores:
        metrics.decisions.labels(score.decision).inc()
        if score.feature_age_seconds is not None:
            metrics.feature_age.observe(score.feature_age_seconds)


def _json(payload: Score | BatchScores) -> bytes:
    """The response serialized once by pydantic-core. The scores are built by this module
    (not parsed input), so FastAPI's re-validation against the response model is skipped;
    the model still documents the response in the OpenAPI schema."""
    return payload.__pydantic_serializer__.to_json(payload)
