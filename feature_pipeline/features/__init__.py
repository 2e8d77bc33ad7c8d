"""Point-in-time feature tables, one per Feast feature view, as pure Spark transformations.

Each function takes bronze DataFrames and returns a feature table keyed by entity and
``event_timestamp``. A row describes the entity's state *after* every event at or before
its timestamp, so Feast's point-in-time join (latest row at or before the entity row's
timestamp) never sees an event later than the one it is asked about. docs/features.md
states each feature's exact window.
"""

from feature_pipeline.features.card_profile import card_profile_features
from feature_pipeline.features.card_transactions import WINDOWS, card_transaction_features
from feature_pipeline.features.merchant_risk import MERCHANT_WINDOWS, merchant_risk_features

__all__ = [
    "MERCHANT_WINDOWS",
    "WINDOWS",
    "card_profile_features",
    "card_transaction_features",
    "merchant_risk_features",
]
