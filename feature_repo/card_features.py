"""Feature views keyed by card: transaction velocity and amounts, and the card's profile."""

from datetime import timedelta

from data_sources import card_profile_source, card_transaction_push
from entities import card
from feast import FeatureView, Field
from feast.types import Float64, Int32, Int64

from fraud_platform.windows import CARD_WINDOWS

card_transaction_features = FeatureView(
    name="card_transaction_features",
    entities=[card],
    # 30 days, the longest window. Offline, a row is the card's state just before one of
    # its transactions and the point-in-time join finds it at that very instant, so the
    # TTL never hides it; online, the windows are computed at the transaction's instant
    # from the event state, which keeps 30 days of events.
    ttl=timedelta(days=30),
    schema=[
        *[
            field
            for window in CARD_WINDOWS
            for field in (
                Field(name=f"txn_count_{window}", dtype=Int64),
                Field(name=f"amount_sum_{window}", dtype=Float64),
                Field(name=f"amount_mean_{window}", dtype=Float64),
                Field(name=f"amount_max_{window}", dtype=Float64),
            )
        ],
        Field(name="distinct_merchants_24h", dtype=Int32),
        Field(name="seconds_since_prev_txn", dtype=Float64),
        Field(name="distance_from_prev_km", dtype=Float64),
        Field(name="speed_from_prev_kmh", dtype=Float64),
        Field(name="last_latitude", dtype=Float64),
        Field(name="last_longitude", dtype=Float64),
        Field(name="last_amount", dtype=Float64),
        Field(
            name="last_txn_timestamp",
            dtype=Int64,
            description="Unix seconds of the card's last transaction before t.",
        ),
    ],
    source=card_transaction_push,
    online=True,
    description="Velocity and amount statistics over trailing windows, the card's last "
    "transaction and the step to it, before the transaction being scored.",
    # online=events: served from the event state (windows at the transaction's instant);
    # get_online_features and `feast serve` return the rows the backfill or the last
    # materialization wrote (docs/features.md, "Serving").
    tags={"team": "fraud", "table": "silver/card_transaction_features", "online": "events"},
)

card_profile_features = FeatureView(
    name="card_profile_features",
    entities=[card],
    # 10 years (3,650 days). The row's event time is the issue date and the profile holds
    # for the card's whole life (cards expire after 3 to 5 years), so the TTL must outlive
    # any live card. It is finite on purpose: `materialize-incremental` starts its first
    # run at now - TTL, and a TTL of 0 would make it start 52 weeks back and never load
    # the profile of a card issued earlier.
    ttl=timedelta(days=3650),
    schema=[
        Field(name="issue_timestamp", dtype=Int64),
        Field(name="credit_limit", dtype=Float64),
        Field(name="home_latitude", dtype=Float64),
        Field(name="home_longitude", dtype=Float64),
    ],
    source=card_profile_source,
    online=True,
    description="Reference data of the card: issue time, credit limit and home location.",
    # A snapshot, rewritten whole from the card reference data: its event times are issue
    # dates, so a changed credit limit or a new card of an old issue date is not "newer".
    # The project's materialization reads such a view whole on every run.
    tags={"team": "fraud", "table": "silver/card_profile_features", "snapshot": "true"},
)
