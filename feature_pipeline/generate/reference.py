"""Reference data (cards, merchants) and the hidden behaviour profile of each card.

The population depends on the seed and sizes only, never on the window, so that windows
generated one after another share their cards and merchants like a real issuer's data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from feature_pipeline.generate import catalog as C
from feature_pipeline.generate.config import GeneratorConfig
from feature_pipeline.generate.sampling import rng_for, row_cdf

CREDIT_LIMITS = np.array(
    [500, 1_000, 1_500, 2_500, 4_000, 6_000, 8_000, 12_000, 20_000], dtype=np.float64
)
ONLINE_MERCHANT_SHARE = 0.15
TRAVELLER_SHARE = 0.35
SHARED_ACCOUNT_SHARE = 0.15
HOME_SPREAD_DEG = 0.06
"""Spread of homes around their city centre (about 7 km)."""


def prefixed_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded numbers, built by Arrow kernels instead of a Python loop."""
    digits = pc.utf8_lpad(pa.array(numbers, type=pa.int64()).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def id_width(n: int, minimum: int) -> int:
    return max(minimum, len(str(max(n - 1, 0))))


@dataclass(frozen=True)
class MerchantIndex:
    """Merchants grouped by (city, category) for card-present and by category for online,
    so a merchant is drawn for millions of transactions with two array lookups."""

    order: np.ndarray
    start: np.ndarray
    count: np.ndarray

    @classmethod
    def build(cls, city: np.ndarray, category: np.ndarray, online: np.ndarray) -> MerchantIndex:
        key = cls.key(city, category, online)
        order = np.argsort(key, kind="stable")
        sorted_keys = key[order]
        all_keys = np.arange((C.N_CITIES + 1) * C.N_CATEGORIES)
        start = np.searchsorted(sorted_keys, all_keys, side="left")
        count = np.searchsorted(sorted_keys, all_keys, side="right") - start
        return cls(order=order, start=start, count=count)

    @staticmethod
    def key(
        city: np.ndarray | int, category: np.ndarray | int, online: np.ndarray | bool
    ) -> np.ndarray:
        """Group key: online merchants form one extra pseudo-city."""
        city_part = np.where(online, C.N_CITIES, city).astype(np.int64)
        return city_part * C.N_CATEGORIES + np.asarray(category, dtype=np.int64)

    def pick(self, key: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The merchant at quantile ``u`` of group ``key`` (every group is non-empty)."""
        count = self.count[key]
        offset = np.minimum((u * count).astype(np.int64), count - 1)
        return self.order[self.start[key] + offset].astype(np.int32)


@dataclass(frozen=True)
class Population:
    """Cards and merchants as frames (the reference feeds) and as arrays (for generation)."""

    cards: pd.DataFrame
    merchants: pd.DataFrame
    card_ids: pa.Array
    merchant_ids: pa.Array
    home_city: np.ndarray
    home_lat: np.ndarray
    home_lon: np.ndarray
    credit_limit: np.ndarray
    level: np.ndarray
    """Multiplier of the card's amounts: some cardholders simply spend more."""
    activity: np.ndarray
    """Relative transaction rate (mean 1)."""
    category_cdf: np.ndarray
    """Per-card cumulative preference over categories."""
    online_propensity: np.ndarray
    traveller: np.ndarray
    m_city: np.ndarray
    m_category: np.ndarray
    m_online: np.ndarray
    m_lat: np.ndarray
    m_lon: np.ndarray
    index: MerchantIndex

    @property
    def n_cards(self) -> int:
        return int(self.home_city.size)


def _jitter(
    rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, sigma_deg: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Scatter points around a centre; longitude degrees shrink with latitude."""
    d_lat = rng.normal(0.0, 1.0, lat.size) * sigma_deg
    d_lon = rng.normal(0.0, 1.0, lat.size) * sigma_deg / np.cos(np.radians(lat))
    return np.round(lat + d_lat, 6), np.round(lon + d_lon, 6)


def _build_merchants(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    physical_cats = np.flatnonzero(C.CAT_PHYSICAL)
    online_cats = np.flatnonzero(C.CAT_HAS_ONLINE)
    n_online = max(online_cats.size, round(n * ONLINE_MERCHANT_SHARE))
    n_physical = n - n_online
    cover_city, cover_cat = np.meshgrid(np.arange(C.N_CITIES), physical_cats, indexing="ij")
    if n_physical < cover_city.size:
        raise ValueError(f"n_merchants={n} cannot cover every city and category")
    # One shop of each category in each city first, then the rest where the people are.
    extra = n_physical - cover_city.size
    cat_w = C.CAT_WEIGHT[physical_cats] ** 0.7
    p_city = rng.choice(C.N_CITIES, extra, p=C.CITY_MERCHANT_WEIGHT)
    p_cat = physical_cats[rng.choice(physical_cats.size, extra, p=cat_w / cat_w.sum())]
    city = np.concatenate([cover_city.ravel(), p_city])
    category = np.concatenate([cover_cat.ravel(), p_cat])
    # Most shops in town, a fifth in the outskirts (a short drive away).
    sigma = np.where(rng.random(n_physical) < 0.8, 0.035, 0.2)
    lat, lon = _jitter(rng, C.CITY_LAT[city], C.CITY_LON[city], sigma)

    online_w = C.CAT_WEIGHT[online_cats] * C.CAT_ONLINE[online_cats]
    o_cat = np.concatenate(
        [
            online_cats,
            online_cats[
                rng.choice(
                    online_cats.size, n_online - online_cats.size, p=online_w / online_w.sum()
                )
            ],
        ]
    )
    o_city = rng.choice(C.N_CITIES, n_online, p=C.CITY_MERCHANT_WEIGHT)  # registered seat
    o_lat, o_lon = _jitter(rng, C.CITY_LAT[o_city], C.CITY_LON[o_city], 0.05)

    perm = rng.permutation(n)  # ids carry no hint of the merchant's kind
    return {
        "city": np.concatenate([city, o_city]).astype(np.int8)[perm],
        "category": np.concatenate([category, o_cat]).astype(np.int8)[perm],
        "online": np.concatenate([np.zeros(n_physical, bool), np.ones(n_online, bool)])[perm],
        "lat": np.concatenate([lat, o_lat])[perm],
        "lon": np.concatenate([lon, o_lon])[perm],
    }


def build_population(config: GeneratorConfig) -> Population:
    """Draw the cards, their behaviour profiles and the merchants."""
    # One function on purpose: its steps are the order of the seeded random draws.
    rng = rng_for(config.seed, 0)
    n = config.n_cards
    home_city = rng.choice(C.N_CITIES, n, p=C.CITY_HOME_WEIGHT).astype(np.int8)
    home_lat, home_lon = _jitter(rng, C.CITY_LAT[home_city], C.CITY_LON[home_city], HOME_SPREAD_DEG)
    level = rng.lognormal(0.0, 0.45, n)
    tier = np.rint(3.5 + 3.0 * np.log(level) + rng.normal(0.0, 1.0, n))
    credit_limit = CREDIT_LIMITS[np.clip(tier, 0, CREDIT_LIMITS.size - 1).astype(np.int64)]
    activity = rng.gamma(2.0, 0.5, n)
    preferences = rng.gamma(C.CAT_WEIGHT * 25.0, 1.0, (n, C.N_CATEGORIES)) + 1e-12
    online_propensity = rng.lognormal(0.0, 0.5, n)
    traveller = rng.random(n) < TRAVELLER_SHARE
    new_account = rng.random(n) >= SHARED_ACCOUNT_SHARE
    new_account[0] = True
    account_no = np.cumsum(new_account) - 1
    # A sixth of the cards are recent (issued in the last 90 days); the rest up to 6 years.
    age_days = np.where(rng.random(n) < 0.15, rng.integers(1, 90, n), rng.integers(90, 2_200, n))
    # datetime.date objects: the reference feed has dates, not timestamps.
    issue_date = (np.datetime64(config.start_date, "D") - age_days).astype(object)

    merchants = _build_merchants(rng, config.n_merchants)

    card_ids = prefixed_ids("c", np.arange(n), id_width(n, 6))
    merchant_ids = prefixed_ids("m", np.arange(config.n_merchants), id_width(config.n_merchants, 5))
    cards_df = _cards_frame(card_ids, account_no, issue_date, credit_limit, home_lat, home_lon)
    merchants_df = _merchants_frame(merchant_ids, merchants)
    return Population(
        cards=cards_df,
        merchants=merchants_df,
        card_ids=card_ids,
        merchant_ids=merchant_ids,
        home_city=home_city,
        home_lat=home_lat,
        home_lon=home_lon,
        credit_limit=credit_limit,
        level=level,
        activity=activity,
        category_cdf=row_cdf(preferences),
        online_propensity=online_propensity,
        traveller=traveller,
        m_city=merchants["city"],
        m_category=merchants["category"],
        m_online=merchants["online"],
        m_lat=merchants["lat"],
        m_lon=merchants["lon"],
        index=MerchantIndex.build(merchants["city"], merchants["category"], merchants["online"]),
    )


def _cards_frame(
    card_ids: pa.Array,
    account_no: np.ndarray,
    issue_date: np.ndarray,
    credit_limit: np.ndarray,
    home_lat: np.ndarray,
    home_lon: np.ndarray,
) -> pd.DataFrame:
    """The cards reference feed: ids as Arrow strings, issue dates as dates."""
    return pd.DataFrame(
        {
            "card_id": pd.arrays.ArrowStringArray(card_ids),
            "account_id": pd.arrays.ArrowStringArray(
                prefixed_ids("a", account_no, id_width(int(account_no[-1]) + 1, 6))
            ),
            "issue_date": pd.Series(issue_date, dtype=object),
            "credit_limit": credit_limit,
            "home_latitude": home_lat,
            "home_longitude": home_lon,
        }
    )


def _merchants_frame(merchant_ids: pa.Array, merchants: dict[str, np.ndarray]) -> pd.DataFrame:
    """The merchants reference feed, categories by name."""
    return pd.DataFrame(
        {
            "merchant_id": pd.arrays.ArrowStringArray(merchant_ids),
            "merchant_category": pd.Categorical.from_codes(
                merchants["category"], categories=list(C.CATEGORY_NAMES)
            ),
            "merchant_latitude": merchants["lat"],
            "merchant_longitude": merchants["lon"],
            "is_online": merchants["online"],
        }
    )
