"""Events that update the online state without a score: labels, and transactions of feeds
that are not scored here.

Why an API endpoint and not a Redis stream with a consumer: the same process and
connection apply the same per-key scripts as scoring, the caller learns synchronously that
its events are in the state (and retries on a 503, which the scripts make safe: a second
apply of a ``transaction_id`` changes nothing), and there is no consumer group to run,
monitor and trim. A stream would buffer bursts while Redis is down; the chargeback feed
is small and its sender already retries.
"""

from __future__ import annotations

from collections.abc import Sequence

from fraud_platform.event_state import merchant_command, micros, state_commands
from inference_pipeline.redis_pipe import RedisPipe
from inference_pipeline.schemas import Applied, Label, Transaction
from inference_pipeline.scoring import transaction_event


async def apply_labels(redis: RedisPipe, labels: Sequence[Label]) -> Applied:
    """Fraud labels into their merchants' states, each from its label time.

    Raises:
        RedisUnavailableError: Redis did not answer (nothing is known to be applied).
    """
    frauds = [label for label in labels if label.is_fraud]
    commands = [
        merchant_command(
            "l", label.merchant_id, micros(label.label_timestamp), label.transaction_id
        )
        for label in frauds
    ]
    replies = await redis.execute(b"".join(commands), len(commands)) if commands else []
    applied = sum(reply[-1] for reply in replies)
    return Applied(
        applied=applied, unchanged=len(frauds) - applied, ignored=len(labels) - len(frauds)
    )


async def apply_transactions(redis: RedisPipe, transactions: Sequence[Transaction]) -> Applied:
    """Transactions into their cards' and merchants' states, unscored.

    Raises:
        RedisUnavailableError: Redis did not answer.
    """
    commands = [c for t in transactions for c in state_commands("a", transaction_event(t))]
    replies = await redis.execute(b"".join(commands), len(commands))
    # A transaction is new when its card state took it (both keys see the same ids).
    applied = sum(reply[-1] for reply in replies[::2])
    return Applied(applied=applied, unchanged=len(transactions) - applied)
