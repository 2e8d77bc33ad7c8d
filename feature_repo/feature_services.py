"""Feature services: the versioned feature lists models are trained and served with.

A model version is bound to one service; changing what a model sees means a new service
(``fraud_detection_v2``), never editing v1 under a model already trained on it.

Training reads the service offline with ``full_feature_names=True``: the model's features
are named ``view__feature`` and recorded with its version, and the scoring API serves those
names from its own Redis read. Every feature name is also unique on its own (merchant
features carry a ``merchant_`` prefix), so a caller of Feast's online API reads plain names
(``full_feature_names=False``) and maps each by the part after ``__``: Feast 0.67's
``get_online_features(..., full_feature_names=True)`` silently drops the on-demand features.
"""

from card_features import card_profile_features, card_transaction_features
from feast import FeatureService
from merchant_features import merchant_risk_features
from on_demand_features import transaction_request_features

fraud_detection_v1 = FeatureService(
    name="fraud_detection_v1",
    features=[
        card_transaction_features,
        card_profile_features,
        merchant_risk_features,
        transaction_request_features,
    ],
    description="Card velocity and amounts, card profile, merchant risk and the "
    "request-time comparison of the transaction with the card's state.",
    tags={"model": "fraud_xgboost", "version": "1"},
)
