"""Scoring a batch of transactions: one Redis round trip, one model call.

:class:`Scorer` reads the features of every transaction of a batch with one pipeline (the
HMGETs of the stored views and, per transaction, the card's and the merchant's event-state
scripts, which read the windows as of the transaction and apply it), builds the model's
input matrix, predicts once and turns each probability into a response. The micro-batcher
that feeds it single requests lives in :mod:`inference_pipeline.batcher`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud_platform.event_state import TransactionEvent, micros
from inference_pipeline.model import ModelHolder, ServedModel
from inference_pipeline.online_features import OnlineFeatures
from inference_pipeline.redis_pipe import RedisPipe
from inference_pipeline.schemas import Score, Transaction

if TYPE_CHECKING:
    from inference_pipeline.feature_log import FeatureLog

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


def transaction_event(t: Transaction) -> TransactionEvent:
    return TransactionEvent(
        t.transaction_id,
        t.card_id,
        t.merchant_id,
        micros(t.timestamp),
        t.amount,
        t.latitude,
        t.longitude,
    )


def feature_matrix(model: ServedModel, features: OnlineFeatures) -> np.ndarray:
    """The model's input, rows x features in the model's order; None becomes NaN
    (XGBoost's missing value), as in training. Built row-major in one conversion: numpy
    converting the columns and copying the transpose took twice as long for one row."""
    columns = [features.values[name] for name in model.features]
    if not columns:
        return np.empty((0, 0))
    rows = len(columns[0])
    flat = [column[row] for row in range(rows) for column in columns]
    return np.array(flat, dtype=np.float32).reshape(rows, len(columns))


def to_scores(
    model: ServedModel,
    transactions: Sequence[Transaction],
    features: OnlineFeatures,
    probabilities: np.ndarray,
) -> list[Score]:
    """One response per transaction: probability, decision, freshness and flags."""
    plan = model.plan
    scores = []
    for row, (transaction, probability) in enumerate(
        zip(transactions, probabilities.tolist(), strict=True)
    ):
        times = [
            t for view in plan.stored_views if (t := features.event_times[view][row]) is not None
        ]
        unknown: dict[str, Any] = {
            flag: not any(
                features.row_found(view, row) for view in plan.views_by_join_key.get(key, ())
            )
            for key, flag in UNKNOWN_FLAGS.items()
        }
        scores.append(
            Score.model_construct(
                transaction_id=transaction.transaction_id,
                card_id=transaction.card_id,
                fraud_probability=probability,
                decision=model.decide(probability),
                model=model.ref,
                feature_age_seconds=(
                    transaction.timestamp.timestamp() - max(times) if times else None
                ),
                missing_features=[
                    feature
                    for name, feature in model.short_names
                    if features.values[name][row] is None
                ],
                **unknown,
            )
        )
    return scores


class Scorer:
    """Features from Redis and the current model, for a batch of transactions."""

    def __init__(
        self, models: ModelHolder, redis: RedisPipe, feature_log: FeatureLog | None = None
    ) -> None:
        self.models = models
        self.redis = redis
        self.feature_log = feature_log

    async def read_features(
        self, model: ServedModel, transactions: Sequence[Transaction]
    ) -> OnlineFeatures:
        """The feature service's features of each transaction, each as of the state before
        it, and each applied to the event state, in one round trip.

        Raises:
            RedisUnavailableError: Redis did not answer.
        """
        plan = model.plan
        events = [transaction_event(t) for t in transactions]
        replies = await self.redis.execute(*plan.pipeline(events))
        return plan.decode(replies, events, request_fields(transactions))

    async def score(self, transactions: Sequence[Transaction]) -> list[Score]:
        """Scores in the order of ``transactions``, all by the same model version.

        Raises:
            ModelUnavailableError: no model is loaded.
            RedisUnavailableError: Redis did not answer.
        """
        model = self.models.get()
        features = await self.read_features(model, transactions)
        probabilities = model.predict(feature_matrix(model, features))
        if self.feature_log is not None:
            self.feature_log.record(model, transactions, features, probabilities)
        return to_scores(model, transactions, features, probabilities)
