"""Per-card profile: issue date, credit limit and home, valid from the card's issue date."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def card_profile_features(cards: DataFrame, created: datetime) -> DataFrame:
    """One row per card with ``event_timestamp`` at its issue date (00:00 UTC).

    The card's age is not stored: it changes every second, so the request-time features
    compute it from ``issue_timestamp`` and the transaction's own time, the same way offline
    and online. A re-ingested reference snapshot gives rows with a later ``created``, which
    Feast prefers for the same ``event_timestamp``.
    """
    from pyspark.sql import functions as F

    issued = F.col("issue_date").cast("timestamp")
    return cards.select(
        "card_id",
        issued.alias("event_timestamp"),
        F.lit(created).alias("created"),
        F.unix_seconds(issued).alias("issue_timestamp"),
        "credit_limit",
        "home_latitude",
        "home_longitude",
    )
