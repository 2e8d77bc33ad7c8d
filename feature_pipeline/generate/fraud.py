"""Fraud scenarios, each a pattern that a fraud model can learn from features and that a
single rule (such as an amount threshold) does not catch.

Every scenario fills a budget of fraudulent transactions with whole events (the last one
cut short), draws the event's cards, times, merchants and amounts as arrays, and tags its
rows with the scenario and event, which only the labels feed will carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from feature_pipeline.generate import catalog as C
from feature_pipeline.generate.config import GeneratorConfig
from feature_pipeline.generate.fraud_context import (
    CASH_OUT_CATEGORIES,
    DAY,
    HOUR,
    TESTING_CATEGORIES,
    FraudContext,
    event_sizes,
    offsets,
)
from feature_pipeline.generate.reference import MerchantIndex, Population
from feature_pipeline.generate.sampling import expand, fill_budget, rng_for, row_cdf, sample_rows
from feature_pipeline.generate.transactions import TxBatch, draw_amounts

CLONE_CATEGORIES = {
    "electronics": 0.3,
    "jewelry": 0.2,
    "clothing": 0.2,
    "grocery": 0.1,
    "fuel": 0.05,
    "restaurant": 0.15,
}
CNP_CATEGORIES = {"electronics": 0.35, "online_retail": 0.3, "travel": 0.15, "clothing": 0.2}
LOCAL_CLONE_CATEGORIES = {"electronics": 0.3, "clothing": 0.3, "jewelry": 0.15, "grocery": 0.25}
TAKEOVER_CATEGORIES = {"electronics": 0.4, "jewelry": 0.2, "online_retail": 0.2, "travel": 0.2}
SKIMMED_CATEGORIES = ("fuel", "restaurant", "grocery", "cafe")


def card_testing(ctx: FraudContext, budget: int) -> TxBatch:
    """Stolen card numbers checked with a burst of tiny online payments seconds apart,
    then used for quickly escalating purchases once one goes through."""
    rng, pop = ctx.rng, ctx.pop
    n_small = rng.integers(3, 9, ceil(budget / 7 * 1.5) + 2)
    n_escalating = rng.integers(1, 4, n_small.size)
    sizes = fill_budget(n_small + n_escalating, budget)
    n_small = np.minimum(n_small[: sizes.size], sizes)
    cards = ctx.victims(np.arange(pop.n_cards), sizes.size)
    start = rng.integers(0, max(ctx.window - 4 * HOUR, 1), sizes.size)
    owner, pos = expand(sizes)
    small = pos < n_small[owner]
    first_big = pos == n_small[owner]
    gap = np.where(
        small,
        rng.integers(8, 76, owner.size),
        np.where(
            first_big,
            rng.integers(3 * 60, 45 * 60, owner.size),
            rng.integers(2 * 60, 25 * 60, owner.size),
        ),
    )
    t = start[owner] + offsets(owner, gap)
    card = cards[owner]
    merchant = _testing_merchants(ctx, owner, small, sizes.size)
    amount = _testing_amounts(ctx, owner, card, small, pos - n_small[owner], sizes.size)
    city = ctx.fraudster_cities(sizes.size)
    lat, lon = ctx.device_location(city)
    return ctx.batch(
        "card_testing",
        owner,
        card,
        t,
        merchant,
        np.ones(owner.size, bool),
        lat[owner],
        lon[owner],
        amount,
        city[owner],
        earliest=np.zeros(sizes.size, dtype=np.int64),
    )


def _testing_merchants(
    ctx: FraudContext, owner: np.ndarray, small: np.ndarray, n_events: int
) -> np.ndarray:
    """Probes mostly at the event's one testing merchant (else another small online shop);
    the escalating purchases at cash-out shops, half of them the ring's usual ones."""
    rng = ctx.rng
    probe_merchant = ctx.testing_pool[rng.integers(0, ctx.testing_pool.size, n_events)]
    testing_cats = np.array([C.cat(c) for c in TESTING_CATEGORIES], dtype=np.int8)
    cash_cats = np.array([C.cat(c) for c in CASH_OUT_CATEGORIES], dtype=np.int8)
    return np.where(
        small,
        np.where(
            rng.random(owner.size) < 0.75,
            probe_merchant[owner],
            ctx.online_merchants(
                testing_cats[rng.integers(0, 2, owner.size)], ctx.testing_pool, 0.0
            ),
        ),
        ctx.online_merchants(cash_cats[rng.integers(0, 3, owner.size)], ctx.cash_out_pool, 0.5),
    )


def _testing_amounts(
    ctx: FraudContext,
    owner: np.ndarray,
    card: np.ndarray,
    small: np.ndarray,
    step: np.ndarray,
    n_events: int,
) -> np.ndarray:
    """Probes of a few units (often exactly 1.00); then purchases roughly doubling at each
    ``step``, up to the card's credit limit."""
    rng = ctx.rng
    small_amount = np.where(
        rng.random(owner.size) < 0.35, 1.0, np.round(rng.uniform(0.5, 5.0, owner.size), 2)
    )
    first_amount = rng.uniform(60, 200, n_events)  # then roughly doubling at each step
    big_amount = first_amount[owner] * 2.0**step * rng.uniform(0.8, 1.25, owner.size)
    return np.where(
        small, small_amount, np.round(np.minimum(big_amount, ctx.pop.credit_limit[card]), 2)
    )


def impossible_travel(ctx: FraudContext, budget: int) -> TxBatch:
    """A cloned card used in shops on another continent minutes or hours after the real
    card paid at home: no flight is that fast."""
    rng, pop, g = ctx.rng, ctx.pop, ctx.genuine
    sizes = event_sizes(rng, 1, 5, budget)
    at_home = ~g.online & (g.city == pop.home_city[g.card]) & (g.t < ctx.window - 3 * HOUR)
    candidates = rng.permutation(np.flatnonzero(at_home))
    _, first = np.unique(g.card[candidates], return_index=True)
    anchors = rng.permutation(candidates[first])[: sizes.size]
    sizes = sizes[: anchors.size]
    owner, pos = expand(sizes)

    home = pop.home_city[g.card[anchors]]
    other_continent = C.CITY_CONTINENT[:, None] != C.CITY_CONTINENT[None, :]
    far_cdf = row_cdf(other_continent * C.CITY_MERCHANT_WEIGHT[None, :] + 1e-12)
    far_city = sample_rows(far_cdf, home, rng.random(home.size)).astype(np.int8)
    first_t = g.t[anchors] + rng.integers(10 * 60, 3 * HOUR, anchors.size)
    gap = rng.integers(5 * 60, 90 * 60, owner.size)
    t = first_t[owner] + offsets(owner, gap)
    card = g.card[anchors][owner]
    category = ctx.draw_categories(CLONE_CATEGORIES, owner.size)
    merchant = pop.index.pick(
        MerchantIndex.key(far_city[owner], category, False), rng.random(owner.size)
    )
    amount = draw_amounts(rng, pop, card, category, rng.uniform(1.5, 3.5, owner.size))
    return ctx.batch(
        "impossible_travel",
        owner,
        card,
        t,
        merchant,
        np.zeros(owner.size, bool),
        pop.m_lat[merchant],
        pop.m_lon[merchant],
        amount,
        far_city[owner],
    )


def compromised_merchant(ctx: FraudContext, budget: int) -> TxBatch:
    """Skimmers at a few busy shops for a while; days later, a share of the cards that paid
    there are used for online and local card-present fraud."""
    rng, pop = ctx.rng, ctx.pop
    sizes = event_sizes(rng, 1, 7, budget)
    cards, exposure = _skimmed_cards(ctx, sizes.size)
    sizes = sizes[: cards.size]
    owner, t = _skimmed_card_times(ctx, exposure, sizes)
    card = cards[owner]
    online = rng.random(owner.size) < 0.7
    category = np.where(
        online,
        ctx.draw_categories(CNP_CATEGORIES, owner.size),
        ctx.draw_categories(LOCAL_CLONE_CATEGORIES, owner.size),
    ).astype(np.int8)
    home = pop.home_city[card]
    merchant = np.where(
        online,
        ctx.online_merchants(
            np.where(online, category, C.cat("online_retail")).astype(np.int8),
            ctx.cash_out_pool,
            0.4,
        ),
        pop.index.pick(
            MerchantIndex.key(home, np.where(online, C.cat("grocery"), category), False),
            rng.random(owner.size),
        ),
    )
    device_city = ctx.fraudster_cities(sizes.size, pop.home_city[cards], 0.4)
    d_lat, d_lon = ctx.device_location(device_city)
    lat = np.where(online, d_lat[owner], pop.m_lat[merchant])
    lon = np.where(online, d_lon[owner], pop.m_lon[merchant])
    city = np.where(online, device_city[owner], home)
    amount = draw_amounts(
        rng, pop, card, pop.m_category[merchant], rng.uniform(1.0, 2.5, owner.size)
    )
    return ctx.batch(
        "compromised_merchant",
        owner,
        card,
        t,
        merchant,
        online,
        lat,
        lon,
        amount,
        city,
        earliest=exposure + 600,
    )


def _skimmed_cards(ctx: FraudContext, n_cards: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_cards`` cards skimmed at a few busy shops during the skimming period, and
    when each was first exposed; the shops are kept as ``ctx.compromised_merchants``."""
    rng, pop, g, window = ctx.rng, ctx.pop, ctx.genuine, ctx.window
    c0 = int(rng.uniform(0.05, 0.35) * window)
    length = min(int(np.clip(0.25 * window, DAY, 10 * DAY)), window - c0)
    skimmable = np.isin(pop.m_category, [C.cat(c) for c in SKIMMED_CATEGORIES]) & ~pop.m_online
    in_window = ~g.online & (g.t >= c0) & (g.t < c0 + length) & skimmable[g.merchant]
    rows = np.flatnonzero(in_window)
    n_merchants = pop.m_city.size
    pairs = np.unique(g.merchant[rows].astype(np.int64) * pop.n_cards + g.card[rows])
    cards_per_merchant = np.bincount(pairs // pop.n_cards, minlength=n_merchants)
    # Busy shops are the ones worth skimming: draw among the busiest quarter, adding shops
    # until twice the needed cards were exposed (a few shops; more for large populations).
    busy = np.flatnonzero(cards_per_merchant > 0)
    busy = busy[np.argsort(-cards_per_merchant[busy], kind="stable")][: max(30, busy.size // 4)]
    busy = rng.permutation(busy)
    reach = np.cumsum(cards_per_merchant[busy])
    n_chosen = min(busy.size, max(2, int(np.searchsorted(reach, 2 * n_cards)) + 1))
    chosen = busy[:n_chosen]
    ctx.compromised_merchants = [int(m) for m in chosen]
    exposed_rows = rows[np.isin(g.merchant[rows], chosen)]
    # Rows are sorted by card then time: the first row per card is its first exposure.
    exposed_cards, first = np.unique(g.card[exposed_rows], return_index=True)
    exposure = g.t[exposed_rows][first]
    pick = rng.permutation(exposed_cards.size)[:n_cards]
    return exposed_cards[pick], exposure[pick]


def _skimmed_card_times(
    ctx: FraudContext, exposure: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's event and instant: a card's fraud starts one to twelve days after its
    exposure (sooner near the window's end), its rows minutes to hours apart."""
    rng, window = ctx.rng, ctx.window
    delay = rng.uniform(1 * DAY, 12 * DAY, exposure.size)
    room = np.maximum(window - HOUR - exposure, 600)
    late = rng.uniform(0.2, 1.0, exposure.size) * room  # near the window's end: what is left
    delay = np.where(exposure + delay < window - HOUR, delay, late)
    owner, _ = expand(sizes)
    max_gap = int(min(10 * HOUR, max(window // 12, 20 * 60)))  # short windows: tighter
    t = (exposure + delay.astype(np.int64))[owner] + offsets(
        owner, rng.integers(10 * 60, max_gap, owner.size)
    )
    return owner, t


def account_takeover(ctx: FraudContext, budget: int) -> TxBatch:
    """Stolen online credentials: for a day or two, large online purchases in categories
    the cardholder rarely uses, mostly at night in the cardholder's time zone."""
    rng, pop, g = ctx.rng, ctx.pop, ctx.genuine
    sizes = event_sizes(rng, 3, 10, budget)
    active = np.unique(g.card)
    cards = ctx.victims(active if active.size else np.arange(pop.n_cards), sizes.size)
    owner, pos = expand(sizes)
    card = cards[owner]
    home = pop.home_city[card]
    day0 = rng.integers(0, ctx.config.days, sizes.size)
    second_day = 0.4 if ctx.config.days > 1 else 0.0
    day = day0[owner] + np.where(pos > 0, rng.random(owner.size) < second_day, 0)
    night = (pos == 0) | (rng.random(owner.size) < 0.7)
    hour = np.where(night, rng.uniform(0, 6, owner.size), rng.uniform(0, 24, owner.size))
    t = day * DAY + (hour * HOUR).astype(np.int64) - C.CITY_UTC_OFFSET_H[home] * HOUR
    order = np.lexsort((t, owner))
    card, t, home = card[order], t[order], home[order]

    category = ctx.draw_categories(TAKEOVER_CATEGORIES, owner.size)
    merchant = ctx.online_merchants(category, ctx.cash_out_pool, 0.4)
    amount = draw_amounts(
        rng, pop, card, pop.m_category[merchant], rng.uniform(2.5, 6.0, owner.size)
    )
    device_city = ctx.fraudster_cities(sizes.size, pop.home_city[cards], 0.5)
    lat, lon = ctx.device_location(device_city)
    return ctx.batch(
        "account_takeover",
        owner,
        card,
        t,
        merchant,
        np.ones(owner.size, bool),
        lat[owner],
        lon[owner],
        amount,
        device_city[owner],
        earliest=np.zeros(sizes.size, dtype=np.int64),
    )


SCENARIO_FUNCTIONS = {
    "card_testing": card_testing,
    "impossible_travel": impossible_travel,
    "compromised_merchant": compromised_merchant,
    "account_takeover": account_takeover,
}


@dataclass(frozen=True)
class FraudResult:
    batch: TxBatch
    compromised_merchants: list[int]


def generate_fraud(config: GeneratorConfig, pop: Population, genuine: TxBatch) -> FraudResult:
    """All scenarios' fraudulent transactions, with event ids unique across scenarios."""
    rng = rng_for(config.seed, 2, config.start_date.toordinal(), config.days)
    ctx = FraudContext(config=config, pop=pop, genuine=genuine, rng=rng)
    batches: list[TxBatch] = []
    next_event = 0
    for scenario, budget in config.fraud_budgets(len(genuine)).items():
        if budget <= 0:
            continue
        b = SCENARIO_FUNCTIONS[scenario](ctx, budget)
        b.event += next_event
        next_event = int(b.event.max()) + 1 if len(b) else next_event
        batches.append(b)
    if not batches:
        empty = genuine.take(np.empty(0, dtype=np.int64))
        return FraudResult(batch=empty, compromised_merchants=[])
    return FraudResult(
        batch=TxBatch.concat(batches), compromised_merchants=ctx.compromised_merchants
    )
