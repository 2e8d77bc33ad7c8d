"""What the fraud scenarios share: the population and the genuine activity fraud hides in,
the few merchants fraud rings reuse, and how a scenario draws devices and assembles its rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import numpy as np

from feature_pipeline.generate import catalog as C
from feature_pipeline.generate.config import SCENARIOS, GeneratorConfig, ScenarioName
from feature_pipeline.generate.reference import HOME_SPREAD_DEG, MerchantIndex, Population
from feature_pipeline.generate.sampling import fill_budget
from feature_pipeline.generate.transactions import TxBatch

HOUR = 3_600
DAY = 86_400

CASH_OUT_CATEGORIES = ("electronics", "jewelry", "online_retail")
TESTING_CATEGORIES = ("entertainment", "online_retail")


@dataclass
class FraudContext:
    """What every scenario needs: the population, the genuine activity it hides in, and
    the few merchants fraud rings reuse (which makes per-merchant risk a real signal)."""

    config: GeneratorConfig
    pop: Population
    genuine: TxBatch
    rng: np.random.Generator
    cash_out_pool: np.ndarray = field(init=False)
    testing_pool: np.ndarray = field(init=False)
    compromised_merchants: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cash_out_pool = self._pool(CASH_OUT_CATEGORIES, 8)
        self.testing_pool = self._pool(TESTING_CATEGORIES, 4)

    @property
    def window(self) -> int:
        return self.config.window_seconds

    def _pool(self, categories: tuple[str, ...], size: int) -> np.ndarray:
        codes = [C.cat(c) for c in categories]
        eligible = np.flatnonzero(self.pop.m_online & np.isin(self.pop.m_category, codes))
        return self.rng.choice(eligible, min(size, eligible.size), replace=False).astype(np.int32)

    def victims(self, candidates: np.ndarray, n: int) -> np.ndarray:
        """Distinct cards where there are enough, so events do not overlap on a card."""
        return self.rng.choice(candidates, n, replace=n > candidates.size).astype(np.int32)

    def draw_categories(self, weights: dict[str, float], n: int) -> np.ndarray:
        codes = np.array([C.cat(c) for c in weights], dtype=np.int8)
        p = np.array(list(weights.values()))
        return codes[self.rng.choice(codes.size, n, p=p / p.sum())]

    def online_merchants(
        self, category: np.ndarray, pool: np.ndarray, pool_share: float
    ) -> np.ndarray:
        """Online merchants of the given categories, or, for ``pool_share`` of the rows,
        one of the ring's usual merchants."""
        merchant = self.pop.index.pick(
            MerchantIndex.key(0, category, True), self.rng.random(category.size)
        )
        use_pool = self.rng.random(category.size) < pool_share
        merchant[use_pool] = pool[self.rng.integers(0, pool.size, int(use_pool.sum()))]
        return merchant

    def fraudster_cities(
        self, n: int, home: np.ndarray | None = None, local_share: float = 0.0
    ) -> np.ndarray:
        """Where a fraudster's device appears: anywhere, or, for ``local_share`` of the
        events, in the victim's home city (proxies and local mules hide the origin)."""
        city = self.rng.choice(C.N_CITIES, n, p=C.CITY_MERCHANT_WEIGHT)
        if home is not None:
            local = self.rng.random(n) < local_share
            city[local] = home[local]
        return city.astype(np.int8)

    def device_location(self, city: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The same spread as cardholders' homes: IP geolocation is city-level at best.
        lat = C.CITY_LAT[city] + self.rng.normal(0, HOME_SPREAD_DEG, city.size)
        lon = C.CITY_LON[city] + self.rng.normal(0, HOME_SPREAD_DEG, city.size) / np.cos(
            np.radians(C.CITY_LAT[city])
        )
        return np.round(lat, 6), np.round(lon, 6)

    def batch(
        self,
        scenario: ScenarioName,
        owner: np.ndarray,
        card: np.ndarray,
        t: np.ndarray,
        merchant: np.ndarray,
        online: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        amount: np.ndarray,
        city: np.ndarray,
        earliest: np.ndarray | None = None,
    ) -> TxBatch:
        """Assemble a scenario's rows.

        Events that run past the window's end are moved earlier as a whole (not before
        ``earliest``, per event, where the timing relative to genuine activity matters), so
        that short windows keep their fraud rate; rows still outside are dropped.
        """
        if earliest is not None:
            n_events = int(owner.max()) + 1 if owner.size else 0
            last = np.full(n_events, np.iinfo(np.int64).min)
            first = np.full(n_events, np.iinfo(np.int64).max)
            np.maximum.at(last, owner, t)
            np.minimum.at(first, owner, t)
            shift = np.maximum(np.minimum(0, self.window - 1 - last), earliest - first)
            t = t + shift[owner]
        b = TxBatch(
            card=card.astype(np.int32),
            t=t.astype(np.int64),
            merchant=merchant.astype(np.int32),
            category=self.pop.m_category[merchant].astype(np.int8),
            online=online.astype(bool),
            lat=lat,
            lon=lon,
            amount=amount,
            city=city.astype(np.int8),
            scenario=np.full(t.size, SCENARIOS.index(scenario), dtype=np.int8),
            event=owner.astype(np.int32),
        )
        return b.take(np.flatnonzero((b.t >= 0) & (b.t < self.window)))


def offsets(owner: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Time of each row from its event's first row, given the gaps before each row."""
    starts = np.ones(owner.size, dtype=bool)
    starts[1:] = owner[1:] != owner[:-1]
    gap = np.where(starts, 0, gap)
    cum = np.cumsum(gap)
    return cum - cum[np.flatnonzero(starts)][np.cumsum(starts) - 1]


def event_sizes(rng: np.random.Generator, low: int, high: int, budget: int) -> np.ndarray:
    """Rows per event, ``low`` to ``high - 1`` each, adding up to ``budget`` (the last cut)."""
    mean = (low + high - 1) / 2
    return fill_budget(rng.integers(low, high, ceil(budget / mean * 1.5) + 2), budget)
