"""Request-time features: the incoming transaction compared with the card's stored state.

One python-mode on-demand feature view whose function is the only implementation of these
features: `get_historical_features` runs it over the training rows and `get_online_features`
(and `feast serve`) over each request, so training and serving cannot drift apart.

Feast 0.67 rebuilds the function from its source text in the registry and runs it with
nothing else of this module in scope, so the function is self-contained: its imports and
helpers live inside its body.
"""

import warnings

from card_features import card_profile_features, card_transaction_features
from feast import Field, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, UnixTimestamp

# Feast warns on every plan and apply that on-demand views "do not scale well for offline
# retrieval". This one is a python-mode loop over plain lists: about a microsecond of work
# per training row, so a million-row training set adds seconds, not a scaling problem.
warnings.filterwarnings(
    "ignore", message="On demand feature view is an experimental feature", category=RuntimeWarning
)

transaction_request = RequestSource(
    name="transaction_request",
    schema=[
        Field(name="amount", dtype=Float64),
        Field(name="latitude", dtype=Float64),
        Field(name="longitude", dtype=Float64),
        Field(name="transaction_timestamp", dtype=UnixTimestamp),
    ],
    description="The transaction being scored: amount, where and when (UTC).",
)


@on_demand_feature_view(
    sources=[
        card_transaction_features[
            [
                "amount_mean_30d",
                "amount_max_30d",
                "last_latitude",
                "last_longitude",
                "last_txn_timestamp",
            ]
        ],
        card_profile_features[["issue_timestamp", "home_latitude", "home_longitude"]],
        transaction_request,
    ],
    schema=[
        Field(name="amount_to_mean_30d_ratio", dtype=Float64),
        Field(name="amount_z_like_30d", dtype=Float64),
        Field(name="seconds_since_last_txn", dtype=Float64),
        Field(name="distance_from_home_km", dtype=Float64),
        Field(name="distance_from_last_txn_km", dtype=Float64),
        Field(name="implied_speed_kmh", dtype=Float64),
        Field(name="card_age_days", dtype=Float64),
    ],
    mode="python",
    description="Amount against the card's 30-day mean, time and distance since its last "
    "transaction, implied travel speed, distance from home, card age.",
)
def transaction_request_features(inputs: dict[str, list]) -> dict[str, list]:
    # long: Feast rebuilds this function from its source text alone, so its helpers must
    # live inside its body (see the module docstring); split out, they would not be found.
    """Request-time features for a batch of transactions (one list element per row).

    A missing input (no stored state for the card, a transaction without a location)
    gives a null feature, never an error:

    - ``amount_to_mean_30d_ratio``: amount / the card's 30-day mean amount.
    - ``amount_z_like_30d``: (amount - 30-day mean) / (30-day max - 30-day mean). A true
      z-score needs a standard deviation, which the feature table does not hold; the
      spread up to the card's 30-day maximum is the scale instead: 0 at the mean, 1 at
      the largest amount of the last 30 days, above 1 beyond it. Null when the card has
      no spread (all its amounts equal) and the amount differs from them.
    - ``seconds_since_last_txn``: transaction time - the card's last transaction time.
    - ``distance_from_home_km``, ``distance_from_last_txn_km``: great-circle distances.
    - ``implied_speed_kmh``: distance from the last transaction / elapsed time; null when
      no time has elapsed.
    - ``card_age_days``: transaction time - the card's issue time, in days.
    """
    import math
    from datetime import UTC, datetime

    earth_radius_km = 6371.0088

    def number(value):
        if value is None or isinstance(value, bool):
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return None if math.isnan(value) or math.isinf(value) else value

    def epoch_seconds(value):
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.timestamp()
        return number(value)

    def distance_km(lat1, lon1, lat2, lon2):
        if None in (lat1, lon1, lat2, lon2):
            return None
        phi1, phi2 = math.radians(lat1), math.radians(lat2)
        half_dphi = math.radians(lat2 - lat1) / 2
        half_dlambda = math.radians(lon2 - lon1) / 2
        a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
        return 2 * earth_radius_km * math.asin(min(1.0, math.sqrt(a)))

    def ratio(numerator, denominator):
        if numerator is None or denominator is None or denominator == 0:
            return None
        return numerator / denominator

    out = {
        "amount_to_mean_30d_ratio": [],
        "amount_z_like_30d": [],
        "seconds_since_last_txn": [],
        "distance_from_home_km": [],
        "distance_from_last_txn_km": [],
        "implied_speed_kmh": [],
        "card_age_days": [],
    }
    for i in range(len(inputs["amount"])):
        amount = number(inputs["amount"][i])
        mean = number(inputs["amount_mean_30d"][i])
        peak = number(inputs["amount_max_30d"][i])
        lat = number(inputs["latitude"][i])
        lon = number(inputs["longitude"][i])
        at = epoch_seconds(inputs["transaction_timestamp"][i])
        last_at = number(inputs["last_txn_timestamp"][i])
        issued_at = number(inputs["issue_timestamp"][i])

        spread = None if peak is None or mean is None or peak <= mean else peak - mean
        elapsed = None if at is None or last_at is None else at - last_at
        from_last = distance_km(
            number(inputs["last_latitude"][i]), number(inputs["last_longitude"][i]), lat, lon
        )
        out["amount_to_mean_30d_ratio"].append(ratio(amount, mean))
        if amount is None or mean is None:
            z_like = None
        elif amount == mean:
            z_like = 0.0
        else:
            z_like = ratio(amount - mean, spread)
        out["amount_z_like_30d"].append(z_like)
        out["seconds_since_last_txn"].append(elapsed)
        out["distance_from_home_km"].append(
            distance_km(
                number(inputs["home_latitude"][i]),
                number(inputs["home_longitude"][i]),
                lat,
                lon,
            )
        )
        out["distance_from_last_txn_km"].append(from_last)
        out["implied_speed_kmh"].append(
            None
            if from_last is None or elapsed is None or elapsed <= 0
            else from_last / (elapsed / 3600.0)
        )
        out["card_age_days"].append(
            None if at is None or issued_at is None else (at - issued_at) / 86400.0
        )
    return out
