"""The scoring API: ``POST /v1/score`` by ``card_id``, batch scoring, health and metrics.

Run it with ``inference-pipeline serve`` (or ``uvicorn --factory
inference_pipeline.api.app:create_app``). One process per container or core: the app keeps
its model and its plan in memory and gathers concurrent requests into shared Redis round
trips (see ``inference_pipeline.scoring``). The routes live in ``api.routes`` by concern;
what they share is opened by the lifespan in ``api.runtime``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from inference_pipeline.api.auth import api_key_check, key_accepted
from inference_pipeline.api.body_limit import BodyLimit
from inference_pipeline.api.direct_score import DirectScore
from inference_pipeline.api.in_flight import InFlightLimit
from inference_pipeline.api.metrics import ApiMetrics
from inference_pipeline.api.request_id import RequestIdMiddleware
from inference_pipeline.api.routes.events import events_router
from inference_pipeline.api.routes.operations import operations_router
from inference_pipeline.api.routes.scoring import ScoreOne, scoring_router
from inference_pipeline.api.runtime import Runtime, lifespan
from inference_pipeline.model import ModelHolder
from inference_pipeline.settings import ApiSettings, ModelSettings


def create_app(
    api: ApiSettings | None = None,
    models: ModelSettings | None = None,
    holder: ModelHolder | None = None,
) -> FastAPI:
    """The app. Settings are read here, not at import; ``holder`` lets tests bring a model.

    Raises:
        pydantic.ValidationError: no ``FRAUD_API_KEY`` and auth not explicitly disabled.
    """
    api = api or ApiSettings()
    models = models or ModelSettings()
    metrics = ApiMetrics()
    runtime = Runtime()
    app = FastAPI(
        title="Card fraud scoring",
        version="1.0.0",
        summary="Fraud probability and decision for a card transaction, from the card's and "
        "merchant's online features and the registered champion model.",
        lifespan=lifespan(runtime, api, models, metrics, holder),
    )
    score_one = ScoreOne(runtime, metrics)
    # Valid single scores skip the framework (api.direct_score); the route answers the rest.
    app.add_middleware(DirectScore, score_one=score_one, key_accepted=key_accepted(api))
    # The request id on every log line (JSON logs), and the access line.
    app.add_middleware(RequestIdMiddleware, access_log=api.access_log)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.errors.labels("invalid_request").inc()
        return await request_validation_exception_handler(request, exc)

    authorize = api_key_check(api, metrics)
    app.include_router(scoring_router(runtime, api, metrics, authorize, score_one))
    app.include_router(events_router(runtime, api, metrics, authorize))
    app.include_router(operations_router(runtime, metrics))
    app.add_middleware(
        BodyLimit, limit=api.body_limit, on_reject=metrics.errors.labels("body_too_large").inc
    )
    # Outermost: under overload, a refused request costs nothing but its headers.
    app.add_middleware(
        InFlightLimit, limit=api.max_in_flight, on_reject=metrics.errors.labels("overloaded").inc
    )
    return app
