"""Feature views keyed by card: transaction velocity and amounts, and the card's profile."""

from datetime import timedelta

from data_sources import card_profile_source, card_transaction_source
from entities import card
from feast import FeatureView, Field
from feast.types import Float64, Int32, Int64

_WINDOWS = ("10m", "1h", "24h", "7d", "30d")

card_transaction_features = FeatureView(
    name="card_transaction_features",
    entities=[card],
    # 30 days, the longest window. A row is the card's state right after its last
    # transaction; once that transaction is more than 30 days old every window it
    # describes has fully elapsed, so the row says nothing true about the present and a
    # missing value (no recent activity) is the honest answer. Shorter windows age
    # faster than the TTL: the request-time features carry the elapsed time for that.
    ttl=timedelta(days=30),
    schema=[
        *[
            field
            for window in _WINDOWS
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
            description="Unix seconds of the transaction the row describes.",
        ),
    ],
    source=card_transaction_source,
    online=True,
    description="Velocity and amount statistics over trailing windows, and the step from "
    "the previous transaction, as of the card's latest transaction.",
    tags={"team": "fraud", "table": "silver/card_transaction_features"},
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
