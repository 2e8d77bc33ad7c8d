"""Operations routes: liveness, readiness and Prometheus metrics (no API key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from inference_pipeline.api.metrics import ApiMetrics
from inference_pipeline.api.runtime import Runtime
from inference_pipeline.redis_pipe import RedisUnavailableError
from inference_pipeline.schemas import Problem


def operations_router(runtime: Runtime, metrics: ApiMetrics) -> APIRouter:
    """``GET /healthz``, ``/readyz`` and ``/metrics``."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers (the container health check; a failure restarts
        the task). Depends on nothing else."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"model": Problem}})
    async def readyz() -> JSONResponse:
        """Readiness of this task (the load balancer's health check): a model is loaded.

        Redis is shared by every task, so its state is reported (``redis``) but does not
        fail readiness: a Redis outage would otherwise drain and replace the whole fleet,
        which would come back cold. Scoring answers 503 while Redis is down.
        """
        holder = runtime.holder
        try:
            await runtime.client.ping()
            redis = "ok"
        except RedisUnavailableError as exc:
            redis = str(exc)
        model = holder.current.ref.model_dump() if holder.current else None
        if model is None:
            return JSONResponse(
                {"detail": f"model: {holder.problem}", "model": None, "redis": redis}, 503
            )
        return JSONResponse({"status": "ready", "model": model, "redis": redis})

    @router.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Prometheus metrics: latency histogram, decisions, errors, batch sizes."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
