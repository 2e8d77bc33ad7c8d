"""Feature views keyed by merchant: volume and fraud rate from delayed labels."""

from datetime import timedelta

from data_sources import merchant_risk_push
from entities import merchant
from feast import FeatureView, Field
from feast.types import Float64, Int64

from fraud_platform.windows import MERCHANT_WINDOWS

merchant_risk_features = FeatureView(
    name="merchant_risk_features",
    entities=[merchant],
    # 30 days, the longest window, as for cards: past it, the merchant's last row counts
    # transactions and frauds that have all left every window. A merchant that has not
    # traded for a month then reads as missing (unknown risk) rather than as its month-old
    # fraud rate; the model treats missing merchant risk explicitly.
    ttl=timedelta(days=30),
    schema=[
        field
        # Named merchant_<column> through the source's field mapping (see data_sources.py).
        for window in MERCHANT_WINDOWS
        for field in (
            Field(name=f"merchant_txn_count_{window}", dtype=Int64),
            Field(name=f"merchant_fraud_count_{window}", dtype=Int64),
            Field(name=f"merchant_fraud_rate_{window}", dtype=Float64),
        )
    ],
    source=merchant_risk_push,
    online=True,
    description="Transactions, label-delayed frauds and fraud rate per merchant over 1, 7 "
    "and 30 days; a label counts only from the time it became known.",
    # online=events: served from the event state (windows at the transaction's instant);
    # get_online_features and `feast serve` return the rows the backfill or the last
    # materialization wrote (docs/features.md, "Serving").
    tags={"team": "fraud", "table": "silver/merchant_risk_features", "online": "events"},
)
