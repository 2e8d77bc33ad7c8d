"""The event-fed features' windows and the arithmetic that turns window statistics into values.

One semantics (``docs/features.md``): a transaction at ``t`` sees the state before it, the
events (transactions and fraud labels) with instants in ``[t - w, t)``. Two implementations
compute the window statistics, the offline kernels (``feature_pipeline.features``, Polars)
and the online event state (``fraud_platform.event_state``, Lua in Redis); both read their
windows from here. The step from statistics to features is Spark expressions offline and
:func:`card_values` / :func:`merchant_values` online: written so that both give the same
double (a sum is rounded to cents, which hides the order of additions; a mean is that
rounded sum over the count; nothing else is rounded, so the last-ulp differences of the two
sides' ``sin``/``asin`` stay far inside the replay's 1e-9 tolerance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fraud_platform.windows import CARD_WINDOWS, MERCHANT_WINDOWS

MICROS = 1_000_000
DISTINCT_MERCHANTS_WINDOW = CARD_WINDOWS["24h"]
HISTORY_SECONDS = 30 * 86_400
"""The longest window: the last and previous transactions are looked for in it too."""
EARTH_RADIUS_KM = 6371.0088


def haversine_km(
    lat1: float | None, lon1: float | None, lat2: float | None, lon2: float | None
) -> float | None:
    """Great-circle distance, the same operations in the same order as the offline
    ``feature_pipeline.features.geo.haversine_km``; None if a coordinate is missing."""
    if lat1 is None or lon1 is None or lat2 is None or lon2 is None:
        return None
    dlat = math.radians(lat2 - lat1)
    dlon = math.radians(lon2 - lon1)
    cos_product = math.cos(math.radians(lat1)) * math.cos(math.radians(lat2))
    a = math.sin(dlat / 2) ** 2 + cos_product * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _number(text: bytes | str | None) -> float | None:
    return None if text is None else float(text)


_CARD_NAMES = tuple(
    (i, f"txn_count_{w}", f"amount_sum_{w}", f"amount_mean_{w}", f"amount_max_{w}")
    for i, w in enumerate(CARD_WINDOWS)
)
_MERCHANT_NAMES = tuple(
    (i, f"txn_count_{w}", f"fraud_count_{w}", f"fraud_rate_{w}")
    for i, w in enumerate(MERCHANT_WINDOWS)
)
"""Each window's position in the Lua reply and its features' names, joined once (these
functions run for every scored transaction)."""


def card_values(reply: Sequence[Any]) -> dict[str, Any]:
    """A card's features from the Lua read (``fraud_platform/lua/card.lua``'s layout)."""
    values: dict[str, Any] = {}
    for i, count_name, sum_name, mean_name, max_name in _CARD_NAMES:
        # The sum is always there (0 for an empty window); the max is absent then.
        count, total, peak = reply[3 * i], float(reply[3 * i + 1]), _number(reply[3 * i + 2])
        rounded = round(total, 2)
        values[count_name] = count
        values[sum_name] = rounded
        values[mean_name] = rounded / count if count else None
        values[max_name] = peak
    base = 3 * len(CARD_WINDOWS)
    values["distinct_merchants_24h"] = reply[base]
    last_ts, last_amount, last_lat, last_lon, prev_ts, prev_lat, prev_lon = reply[base + 1 :]
    last_lat, last_lon = _number(last_lat), _number(last_lon)
    seconds = None if prev_ts is None else (last_ts - prev_ts) / 1e6
    distance = haversine_km(_number(prev_lat), _number(prev_lon), last_lat, last_lon)
    values["seconds_since_prev_txn"] = seconds
    values["distance_from_prev_km"] = distance
    values["speed_from_prev_kmh"] = (
        None if distance is None or not seconds else distance / (seconds / 3600)
    )
    values["last_latitude"] = last_lat
    values["last_longitude"] = last_lon
    values["last_amount"] = _number(last_amount)
    values["last_txn_timestamp"] = None if last_ts is None else last_ts // MICROS
    return values


def merchant_values(reply: Sequence[int]) -> dict[str, Any]:
    """A merchant's features from the Lua read (``fraud_platform/lua/merchant.lua``)."""
    values: dict[str, Any] = {}
    for i, txns_name, frauds_name, rate_name in _MERCHANT_NAMES:
        txns, frauds = reply[2 * i], reply[2 * i + 1]
        values[txns_name] = txns
        values[frauds_name] = frauds
        values[rate_name] = frauds / txns if txns else 0.0
    return values
