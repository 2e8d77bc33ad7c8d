"""Events that update the online state without a score: labels and transactions scored
elsewhere (``inference_pipeline.events``)."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, and
# they refer to the batch limit read in events_router.
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from inference_pipeline.api.errors import UNAVAILABLE, unavailable
from inference_pipeline.api.metrics import ApiMetrics
from inference_pipeline.api.runtime import Runtime
from inference_pipeline.events import apply_labels, apply_transactions
from inference_pipeline.redis_pipe import RedisUnavailableError
from inference_pipeline.schemas import Applied, Label, Transaction
from inference_pipeline.settings import ApiSettings


def events_router(
    runtime: Runtime,
    api: ApiSettings,
    metrics: ApiMetrics,
    authorize: Callable[..., Awaitable[Any]],
) -> APIRouter:
    """``POST /v1/labels`` and ``/v1/events/transactions``, both idempotent."""
    router = APIRouter(tags=["events"])

    @router.post(
        "/v1/labels",
        response_model=Applied,
        dependencies=[Depends(authorize)],
        responses=UNAVAILABLE,
    )
    async def labels(
        labels: Annotated[
            list[Label], Body(embed=True, min_length=1, max_length=api.batch_max_transactions)
        ],
    ) -> Applied:
        """Apply labels: a fraud counts at its merchant from its label time. Idempotent."""
        try:
            return await apply_labels(runtime.client, labels)
        except RedisUnavailableError as exc:
            raise unavailable(metrics, exc) from exc

    @router.post(
        "/v1/events/transactions",
        response_model=Applied,
        dependencies=[Depends(authorize)],
        responses=UNAVAILABLE,
    )
    async def transaction_events(
        transactions: Annotated[
            list[Transaction], Body(embed=True, min_length=1, max_length=api.batch_max_transactions)
        ],
    ) -> Applied:
        """Apply transactions that are not scored here (another channel's feed). Idempotent."""
        try:
            return await apply_transactions(runtime.client, transactions)
        except RedisUnavailableError as exc:
            raise unavailable(metrics, exc) from exc

    return router
