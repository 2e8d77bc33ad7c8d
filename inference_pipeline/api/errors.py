"""The scoring API's documented refusals and the 503 its routes answer when Redis, the
model or the process's queue cannot serve."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from inference_pipeline.api.metrics import ApiMetrics
from inference_pipeline.batcher import OverloadedError
from inference_pipeline.redis_pipe import RedisUnavailableError
from inference_pipeline.schemas import Problem

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "model": Problem,
        "description": "Redis or the model is unavailable, "
        "or the process is overloaded; retry after Retry-After seconds (the "
        "reason says which).",
    },
    401: {"model": Problem, "description": "Missing or wrong API key."},
    413: {
        "model": Problem,
        "description": "The body is larger than the cap "
        "(FRAUD_MAX_BODY_BYTES, by default 1 KiB per transaction of the "
        "largest batch); refused before it is read or authenticated.",
    },
}


def unavailable(metrics: ApiMetrics, exc: Exception) -> HTTPException:
    """A 503 with Retry-After, counted by its reason."""
    reason = (
        "redis_unavailable"
        if isinstance(exc, RedisUnavailableError)
        else "overloaded"
        if isinstance(exc, OverloadedError)
        else "model_unavailable"
    )
    metrics.errors.labels(reason).inc()
    return HTTPException(503, detail=str(exc), headers={"Retry-After": "1"})
