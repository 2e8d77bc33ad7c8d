"""Static world of the generator: cities, merchant categories and their behaviour.

Kept as small numpy tables indexed by integer codes, because the generator works on codes
and turns them into strings only when it builds the output frames.
"""

from __future__ import annotations

import numpy as np

# --- Cities -------------------------------------------------------------------------------
# name, latitude, longitude, UTC offset (standard time, hours), continent, share of card
# homes, share of physical merchants. Dubai hosts no cardholders: it is a travel and fraud
# destination, and puts a third continent within reach.
_CITIES: tuple[tuple[str, float, float, int, str, float, float], ...] = (
    ("London", 51.5074, -0.1278, 0, "europe", 0.14, 0.13),
    ("Paris", 48.8566, 2.3522, 1, "europe", 0.12, 0.12),
    ("Berlin", 52.5200, 13.4050, 1, "europe", 0.10, 0.10),
    ("Madrid", 40.4168, -3.7038, 1, "europe", 0.10, 0.09),
    ("Rome", 41.9028, 12.4964, 1, "europe", 0.08, 0.08),
    ("Amsterdam", 52.3676, 4.9041, 1, "europe", 0.06, 0.06),
    ("New York", 40.7128, -74.0060, -5, "north_america", 0.16, 0.14),
    ("Chicago", 41.8781, -87.6298, -6, "north_america", 0.08, 0.08),
    ("Los Angeles", 34.0522, -118.2437, -8, "north_america", 0.10, 0.09),
    ("Toronto", 43.6532, -79.3832, -5, "north_america", 0.06, 0.06),
    ("Dubai", 25.2048, 55.2708, 4, "middle_east", 0.0, 0.05),
)

CITY_LAT = np.array([c[1] for c in _CITIES])
CITY_LON = np.array([c[2] for c in _CITIES])
CITY_UTC_OFFSET_H = np.array([c[3] for c in _CITIES], dtype=np.int64)
CONTINENTS: tuple[str, ...] = tuple(dict.fromkeys(c[4] for c in _CITIES))
CITY_CONTINENT = np.array([CONTINENTS.index(c[4]) for c in _CITIES], dtype=np.int8)
CITY_HOME_WEIGHT = np.array([c[5] for c in _CITIES]) / sum(c[5] for c in _CITIES)
CITY_MERCHANT_WEIGHT = np.array([c[6] for c in _CITIES]) / sum(c[6] for c in _CITIES)
N_CITIES = len(_CITIES)

# --- Local-hour profiles --------------------------------------------------------------------
# Relative weight of each local hour 0..23: few purchases at night, category-shaped peaks.
HOUR_PROFILES: dict[str, tuple[float, ...]] = {
    "day": (
        0.2,
        0.1,
        0.05,
        0.05,
        0.05,
        0.1,
        0.4,
        1.0,
        2.0,
        3.0,
        3.5,
        4.0,
        4.2,
        4.0,
        3.8,
        3.8,
        4.0,
        4.3,
        4.2,
        3.6,
        2.6,
        1.6,
        0.9,
        0.4,
    ),
    "meals": (
        0.3,
        0.15,
        0.05,
        0.02,
        0.02,
        0.05,
        0.2,
        0.6,
        0.8,
        0.7,
        0.8,
        2.5,
        5.0,
        4.5,
        1.5,
        0.8,
        0.8,
        1.2,
        2.5,
        4.5,
        4.5,
        3.0,
        1.5,
        0.7,
    ),
    "morning": (
        0.1,
        0.05,
        0.02,
        0.02,
        0.05,
        0.3,
        1.5,
        4.0,
        5.0,
        4.0,
        3.0,
        2.5,
        2.5,
        2.0,
        2.0,
        2.0,
        1.8,
        1.5,
        1.0,
        0.6,
        0.4,
        0.3,
        0.2,
        0.1,
    ),
    "commute": (
        0.3,
        0.2,
        0.1,
        0.1,
        0.2,
        0.6,
        2.0,
        4.0,
        3.5,
        2.0,
        1.8,
        2.0,
        2.2,
        2.0,
        2.0,
        2.5,
        3.5,
        4.5,
        4.0,
        2.5,
        1.5,
        1.0,
        0.7,
        0.5,
    ),
    "evening": (
        0.8,
        0.5,
        0.3,
        0.2,
        0.1,
        0.1,
        0.3,
        0.8,
        1.2,
        1.5,
        1.8,
        2.0,
        2.2,
        2.0,
        1.8,
        1.8,
        2.0,
        2.4,
        2.8,
        3.4,
        3.8,
        3.6,
        2.8,
        1.6,
    ),
}
PROFILE_NAMES: tuple[str, ...] = tuple(HOUR_PROFILES)
HOUR_CDF = np.cumsum(np.array([HOUR_PROFILES[p] for p in PROFILE_NAMES]), axis=1)
HOUR_CDF /= HOUR_CDF[:, -1:]
ONLINE_PROFILE = PROFILE_NAMES.index("evening")

# Monday first: more spending on Fridays and Saturdays, less on Sundays.
WEEKDAY_WEIGHT = np.array([0.92, 0.94, 0.97, 1.0, 1.15, 1.22, 0.80])

# --- Merchant categories --------------------------------------------------------------------
# name, median amount (EUR), lognormal sigma, share of a typical card's spending count,
# propensity to be paid online (0: card-present only, 1: online only), hour profile.
_CATEGORIES: tuple[tuple[str, float, float, float, float, str], ...] = (
    ("grocery", 38.0, 0.65, 0.20, 0.0, "day"),
    ("restaurant", 32.0, 0.60, 0.13, 0.0, "meals"),
    ("cafe", 6.5, 0.50, 0.11, 0.0, "morning"),
    ("fuel", 55.0, 0.35, 0.07, 0.0, "commute"),
    ("transport", 14.0, 0.80, 0.08, 0.0, "commute"),
    ("health", 35.0, 0.80, 0.05, 0.0, "day"),
    ("clothing", 65.0, 0.75, 0.07, 0.30, "day"),
    ("entertainment", 28.0, 0.80, 0.07, 0.50, "evening"),
    ("electronics", 150.0, 1.00, 0.03, 0.45, "day"),
    ("jewelry", 320.0, 1.00, 0.006, 0.20, "day"),
    ("travel", 260.0, 0.95, 0.024, 0.60, "day"),
    ("online_retail", 42.0, 0.95, 0.12, 1.0, "evening"),
)

CATEGORY_NAMES: tuple[str, ...] = tuple(c[0] for c in _CATEGORIES)
CAT_LOG_MEDIAN = np.log(np.array([c[1] for c in _CATEGORIES]))
CAT_SIGMA = np.array([c[2] for c in _CATEGORIES])
CAT_WEIGHT = np.array([c[3] for c in _CATEGORIES]) / sum(c[3] for c in _CATEGORIES)
CAT_ONLINE = np.array([c[4] for c in _CATEGORIES])
CAT_PHYSICAL = CAT_ONLINE < 1.0
CAT_HAS_ONLINE = CAT_ONLINE > 0.0
CAT_PROFILE = np.array([PROFILE_NAMES.index(c[5]) for c in _CATEGORIES], dtype=np.int8)
N_CATEGORIES = len(_CATEGORIES)


def cat(name: str) -> int:
    """Integer code of a category name."""
    return CATEGORY_NAMES.index(name)


CHANNELS: tuple[str, ...] = ("card_present", "online")

EARTH_RADIUS_KM = 6_371.0088


def haversine_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in km, vectorised."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


CITY_DISTANCE_KM = haversine_km(
    CITY_LAT[:, None], CITY_LON[:, None], CITY_LAT[None, :], CITY_LON[None, :]
)
