"""Scoring a batch of transactions: one Redis round trip, one model call.

:class:`Scorer` reads the features of every transaction of a batch with one pipeline of
HMGETs, builds the model's input matrix, predicts once and turns each probability into a
response. :class:`MicroBatcher` is what makes single-transaction requests cheap under load:
requests that arrive while a batch is in Redis wait for the next one, so concurrent
requests share a round trip and a model call instead of queueing behind each other's. A
lone request is scored at once (no batching delay).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from inference_pipeline.model import ModelHolder, ServedModel
from inference_pipeline.online_features import OnlineFeatures
from inference_pipeline.redis_pipe import RedisPipe
from inference_pipeline.schemas import Score, Transaction

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

UNKNOWN_FLAGS = {"card_id": "card_unknown", "merchant_id": "merchant_unknown"}
"""Response flag per entity join key: the entity has no stored feature row."""


def request_fields(transactions: Sequence[Transaction]) -> dict[str, list[Any]]:
    """The on-demand views' request source fields, one list per field."""
    return {
        "amount": [t.amount for t in transactions],
        "latitude": [t.latitude for t in transactions],
        "longitude": [t.longitude for t in transactions],
        "transaction_timestamp": [t.timestamp for t in transactions],
    }


def feature_matrix(model: ServedModel, features: OnlineFeatures) -> np.ndarray:
    """The model's input, rows x features in the model's order; None becomes NaN
    (XGBoost's missing value), as in training."""
    columns = [features.values[name] for name in model.features]
    return np.array(columns, dtype=np.float32).T.copy() if columns else np.empty((0, 0))


def to_scores(model: ServedModel, transactions: Sequence[Transaction],
              features: OnlineFeatures, probabilities: np.ndarray) -> list[Score]:
    """One response per transaction: probability, decision, freshness and flags."""
    plan = model.plan
    scores = []
    for row, (transaction, probability) in enumerate(
            zip(transactions, probabilities.tolist(), strict=True)):
        times = [t for view in plan.stored_views
                 if (t := features.event_times[view][row]) is not None]
        unknown = {
            flag: not any(features.row_found(view, row)
                          for view in plan.views_by_join_key.get(key, ()))
            for key, flag in UNKNOWN_FLAGS.items()
        }
        scores.append(Score.model_construct(
            transaction_id=transaction.transaction_id,
            card_id=transaction.card_id,
            fraud_probability=probability,
            decision=model.decide(probability),
            model=model.ref,
            feature_age_seconds=(transaction.timestamp.timestamp() - max(times)
                                 if times else None),
            missing_features=[feature for name, feature in model.short_names
                              if features.values[name][row] is None],
            **unknown,
        ))
    return scores


class Scorer:
    """Features from Redis and the current model, for a batch of transactions."""

    def __init__(self, models: ModelHolder, redis: RedisPipe) -> None:
        self.models = models
        self.redis = redis

    async def read_features(self, model: ServedModel, transactions: Sequence[Transaction]
                            ) -> OnlineFeatures:
        """The feature service's features of each transaction, in one round trip.

        Raises:
            RedisUnavailableError: Redis did not answer.
        """
        plan = model.plan
        rows = [{"card_id": t.card_id, "merchant_id": t.merchant_id} for t in transactions]
        replies = await self.redis.execute(*plan.pipeline(rows))
        return plan.decode(replies, len(rows), request_fields(transactions))

    async def score(self, transactions: Sequence[Transaction]) -> list[Score]:
        """Scores in the order of ``transactions``, all by the same model version.

        Raises:
            ModelUnavailableError: no model is loaded.
            RedisUnavailableError: Redis did not answer.
        """
        model = self.models.get()
        features = await self.read_features(model, transactions)
        probabilities = model.predict(feature_matrix(model, features))
        return to_scores(model, transactions, features, probabilities)


class MicroBatcher:
    """Gathers concurrent single requests into shared batches.

    ``submit`` queues an item and, if no batch is being scored, starts one at once. While a
    batch waits on Redis, new requests accumulate and become the next batch, so the batch
    size adapts to the load without a timer: 1 when idle, the concurrency under load.
    """

    def __init__(self, handle: Callable[[list[Any]], Awaitable[list[Any]]],
                 max_batch: int, observe_size: Callable[[int], None] | None = None) -> None:
        self._handle = handle
        self._max_batch = max_batch
        self._observe_size = observe_size
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._draining = False

    async def submit(self, item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                if self._observe_size:
                    self._observe_size(len(batch))
                try:
                    results = await self._handle([item for item, _ in batch])
                except Exception as exc:  # every waiter gets the batch's error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = False
