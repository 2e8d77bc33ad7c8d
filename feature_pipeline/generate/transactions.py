"""Genuine card activity: how often, when, where, at which merchant, and how much.

Everything is drawn for all transactions at once with numpy. The only sequential rule,
that a cardholder cannot be in two places faster than they can travel, is enforced with a
segmented running maximum instead of a loop (see :func:`enforce_travel_times`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numpy as np

from feature_pipeline.generate import catalog as C
from feature_pipeline.generate.config import GeneratorConfig
from feature_pipeline.generate.reference import MerchantIndex, Population
from feature_pipeline.generate.sampling import expand, hash_unit, rng_for, row_cdf, sample_rows

log = logging.getLogger(__name__)

GROUND_SPEED_KMH = 100.0
"""Fastest a cardholder moves between two shops of the same area."""
FLIGHT_SPEED_KMH = 800.0
"""Fastest door-to-door travel between cities; the tests allow genuine activity up to 900."""
FLIGHT_DISTANCE_KM = 300.0
TRIP_MAX_SPEED_KMH = 750.0
"""Destinations too far to reach over the one-day gap a trip leaves are not offered."""
HABITUAL_SHARE_HOME = 0.65
HABITUAL_SHARE_ONLINE = 0.5
HABITUAL_SHARE_AWAY = 0.1
TRIP_MEALS_AND_HOTELS = 0.3
ONLINE_BLUR_DEG = 0.03


@dataclass
class TxBatch:
    """Transactions as parallel arrays; times are seconds since the window's start."""

    card: np.ndarray
    t: np.ndarray
    merchant: np.ndarray
    category: np.ndarray
    online: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    amount: np.ndarray
    city: np.ndarray
    """Where the cardholder (or the fraudster) is; for card-present, the merchant's city."""
    scenario: np.ndarray
    """Index into ``SCENARIOS``; -1 for genuine."""
    event: np.ndarray
    """Fraud event the row belongs to; -1 for genuine."""

    def __len__(self) -> int:
        return int(self.t.size)

    def take(self, idx: np.ndarray) -> TxBatch:
        return TxBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @classmethod
    def concat(cls, batches: list[TxBatch]) -> TxBatch:
        return cls(
            **{f.name: np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(cls)}
        )


def day_weights(config: GeneratorConfig) -> np.ndarray:
    """Weekly rhythm: the probability that a transaction falls on each day of the window."""
    first_weekday = config.start_date.weekday()
    w = C.WEEKDAY_WEIGHT[(first_weekday + np.arange(config.days)) % 7]
    return w / w.sum()


def trip_destination_cdf() -> np.ndarray:
    """Per home city, where trips go: mostly the same continent, never too far to reach
    in the day of travel a trip leaves free of transactions."""
    gap_h = 24.0 - np.abs(C.CITY_UTC_OFFSET_H[:, None] - C.CITY_UTC_OFFSET_H[None, :])
    reachable = C.CITY_DISTANCE_KM / gap_h <= TRIP_MAX_SPEED_KMH
    np.fill_diagonal(reachable, False)
    same = C.CITY_CONTINENT[:, None] == C.CITY_CONTINENT[None, :]
    w = np.where(same, 0.65, 0.35) * reachable * C.CITY_MERCHANT_WEIGHT[None, :]
    w[w.sum(axis=1) == 0] = 1.0
    return row_cdf(w)


@dataclass(frozen=True)
class TripPlan:
    """Where travelling cards are on each day; only travellers get a row."""

    row: np.ndarray
    """Per card, its row in the maps, or -1."""
    city: np.ndarray
    """(travellers, days): city of the cardholder that day."""
    shift: np.ndarray
    """(travellers, days): -1/+1 on travel days, moving their purchases to a day before or
    after, so a flight always separates the last purchase at home from the first away."""


def plan_trips(rng: np.random.Generator, pop: Population, days: int) -> TripPlan:
    """Up to three trips per traveller, each in its own slice of the window, each with a
    travel day before and after and at least one home day between trips."""
    travellers = np.flatnonzero(pop.traveller)
    row = np.full(pop.n_cards, -1, dtype=np.int64)
    row[travellers] = np.arange(travellers.size)
    city = np.repeat(pop.home_city[travellers][:, None], days, axis=1)
    shift = np.zeros((travellers.size, days), dtype=np.int8)
    n_trips = np.minimum(rng.poisson(days / 40.0, travellers.size), 3)
    owner, j = expand(n_trips)
    segment = days // np.maximum(n_trips[owner], 1)
    stay = np.minimum(rng.integers(2, 10, owner.size), segment - 3)
    keep = stay >= 1
    owner, j, segment, stay = owner[keep], j[keep], segment[keep], stay[keep]
    span = stay + 2
    start = j * segment + 1 + (rng.random(owner.size) * (segment - span)).astype(np.int64)
    end = start + span - 1
    dest = sample_rows(
        trip_destination_cdf(), pop.home_city[travellers[owner]], rng.random(owner.size)
    ).astype(np.int8)
    trip, pos = expand(stay)
    city[owner[trip], start[trip] + 1 + pos] = dest[trip]
    shift[owner, start] = -1
    shift[owner, end] = np.where(end + 1 < days, 1, -1)
    return TripPlan(row=row, city=city, shift=shift)


def enforce_travel_times(
    card: np.ndarray, t: np.ndarray, lat: np.ndarray, lon: np.ndarray
) -> np.ndarray:
    """Delay transactions so consecutive ones of a card are reachable in time.

    Rows are sorted by (card, time). With ``g`` the minimum gap before each row, the
    earliest feasible times follow ``t'[i] = max(t[i], t'[i-1] + g[i])``, whose closed form
    ``G[i] + max(t[k] - G[k] for k <= i)`` (``G`` the running sum of ``g`` within the card)
    is a segmented cumulative maximum: one vectorised pass, no loop.
    """
    n = t.size
    if n == 0:
        return t
    same = np.zeros(n, dtype=bool)
    same[1:] = card[1:] == card[:-1]
    dist = np.zeros(n)
    dist[1:] = C.haversine_km(lat[:-1], lon[:-1], lat[1:], lon[1:])
    dist[~same] = 0.0
    speed = np.where(dist < FLIGHT_DISTANCE_KM, GROUND_SPEED_KMH, FLIGHT_SPEED_KMH)
    gap = np.ceil(dist / speed * 3600.0).astype(np.int64)
    cum = np.cumsum(gap)
    cum_card = cum - np.maximum.accumulate(np.where(same, 0, cum))
    rank = np.cumsum(~same) - 1
    span = int(t.max() - t.min() + cum_card.max() + 1)
    shifted = np.maximum.accumulate(t - cum_card + rank * span) - rank * span
    return shifted + cum_card


def generate_genuine(config: GeneratorConfig, pop: Population) -> TxBatch:
    # long: the steps are the order of the seeded random draws, and splitting them makes a
    # reordering (other data for the same seed) easy to miss.
    """The cardholders' own transactions, sorted by card then time."""
    rng = rng_for(config.seed, 1, config.start_date.toordinal(), config.days)
    n_total = config.genuine_target()
    days, window = config.days, config.window_seconds

    counts = rng.multinomial(n_total, pop.activity / pop.activity.sum())
    card = np.repeat(np.arange(pop.n_cards, dtype=np.int32), counts)
    day = rng.choice(days, n_total, p=day_weights(config)).astype(np.int64)

    trips = plan_trips(rng, pop, days)
    home = pop.home_city[card]
    city = home.copy()
    row = trips.row[card]
    tr = np.flatnonzero(row >= 0)
    day[tr] += trips.shift[row[tr], day[tr]]
    city[tr] = trips.city[row[tr], day[tr]]
    away = city != home

    category = sample_rows(pop.category_cdf, card, rng.random(n_total)).astype(np.int8)
    override = np.flatnonzero(away & (rng.random(n_total) < TRIP_MEALS_AND_HOTELS))
    category[override] = np.where(
        rng.random(override.size) < 0.6, C.cat("restaurant"), C.cat("travel")
    )
    cat_online = C.CAT_ONLINE[category]
    p_online = np.where(
        cat_online >= 1.0, 1.0, np.minimum(cat_online * pop.online_propensity[card], 0.95)
    )
    online = rng.random(n_total) < p_online

    # Habits: a card goes back to its usual shops, which a stable hash picks per category.
    habitual_share = np.where(
        online, HABITUAL_SHARE_ONLINE, np.where(away, HABITUAL_SHARE_AWAY, HABITUAL_SHARE_HOME)
    )
    habitual = rng.random(n_total) < habitual_share
    slot = rng.integers(0, 3, n_total)
    u = rng.random(n_total)
    u[habitual] = hash_unit(card[habitual], category[habitual], slot[habitual], config.seed)
    merchant = pop.index.pick(MerchantIndex.key(city, category, online), u)

    profile = np.where(online, C.ONLINE_PROFILE, C.CAT_PROFILE[category])
    hour = sample_rows(C.HOUR_CDF, profile, rng.random(n_total))
    t = (
        day * 86_400
        + hour * 3_600
        + rng.integers(0, 3_600, n_total)
        - C.CITY_UTC_OFFSET_H[city] * 3_600
    )
    t = np.where(t < 0, t + 86_400, t)
    t = np.where(t >= window, t - 86_400, t)

    # Online purchases are located where the cardholder is (home, or the hotel on a trip),
    # blurred like an IP geolocation.
    base_lat = np.where(
        away, C.CITY_LAT[city] + (hash_unit(card, city, 1) - 0.5) * 0.06, pop.home_lat[card]
    )
    base_lon = np.where(
        away, C.CITY_LON[city] + (hash_unit(card, city, 2) - 0.5) * 0.09, pop.home_lon[card]
    )
    blur = rng.normal(0.0, ONLINE_BLUR_DEG, (2, n_total))
    lat = np.where(online, base_lat + blur[0], pop.m_lat[merchant])
    lon = np.where(online, base_lon + blur[1] / np.cos(np.radians(base_lat)), pop.m_lon[merchant])

    order = np.argsort(card.astype(np.int64) * window + t)
    card, t, merchant, category, online = (
        card[order],
        t[order],
        merchant[order],
        category[order],
        online[order],
    )
    lat, lon, city = np.round(lat[order], 6), np.round(lon[order], 6), city[order]
    t = enforce_travel_times(card, t, lat, lon)
    keep = t < window
    if (dropped := int((~keep).sum())) > 0.01 * n_total:
        log.warning(
            "%d genuine transactions (%.1f%%) did not fit in the window once travel "
            "times were respected: too many per card per day",
            dropped,
            100 * dropped / n_total,
        )
    batch = TxBatch(
        card=card,
        t=t,
        merchant=merchant,
        category=category,
        online=online,
        lat=lat,
        lon=lon,
        amount=np.empty(t.size),
        city=city,
        scenario=np.full(t.size, -1, dtype=np.int8),
        event=np.full(t.size, -1, dtype=np.int32),
    )
    if not keep.all():
        batch = batch.take(np.flatnonzero(keep))
    batch.amount = draw_amounts(rng, pop, batch.card, batch.category)
    return batch


def draw_amounts(
    rng: np.random.Generator,
    pop: Population,
    card: np.ndarray,
    category: np.ndarray,
    factor: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Heavy-tailed amounts: lognormal per category, scaled by the card's spending level,
    capped by its credit limit, rounded to cents."""
    log_amount = (
        C.CAT_LOG_MEDIAN[category]
        + np.log(pop.level[card])
        + C.CAT_SIGMA[category] * rng.standard_normal(card.size)
    )
    amount = np.exp(log_amount) * factor
    return np.round(np.clip(amount, 0.5, pop.credit_limit[card]), 2)
