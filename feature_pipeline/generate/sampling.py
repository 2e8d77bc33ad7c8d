"""Vectorised sampling helpers shared by the generator's stages.

They replace per-row Python loops: drawing from a different discrete distribution per row,
stable pseudo-random choices keyed on ids, and expanding per-event sizes into rows.
"""

from __future__ import annotations

import numpy as np


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator per stage, so that changing one stage (or the window)
    leaves the draws of the others unchanged."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def row_cdf(weights: np.ndarray) -> np.ndarray:
    """Row-wise cumulative distribution of non-negative weights (each row sums to 1)."""
    cdf = np.cumsum(weights, axis=1, dtype=np.float64)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    return cdf


def sample_rows(cdf: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw one column index per element from the distribution in ``cdf[rows]``.

    Offsetting row ``i`` by ``i`` makes the flattened CDF increasing, so one
    ``searchsorted`` serves all rows without materialising ``cdf[rows]`` (which would be
    rows x columns floats, gigabytes at ten million rows).
    """
    n_rows, n_cols = cdf.shape
    flat = (cdf + np.arange(n_rows, dtype=np.float64)[:, None]).ravel()
    rows = np.asarray(rows, dtype=np.int64)
    idx = np.searchsorted(flat, rows + np.minimum(u, 1.0 - 1e-12), side="right")
    return np.clip(idx - rows * n_cols, 0, n_cols - 1)


def hash_unit(*keys: np.ndarray | int) -> np.ndarray:
    """A stable uniform [0, 1) per tuple of integer keys (splitmix64 mixing).

    Used for habitual choices, such as a card's usual grocery store: the same keys give
    the same choice on every draw, with no state to keep.
    """
    with np.errstate(over="ignore"):
        h: np.ndarray = np.asarray(np.uint64(0x9E3779B97F4A7C15))
        for k in keys:
            h = (h ^ np.asarray(k).astype(np.uint64)) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(29)
    return (np.asarray(h) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def expand(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For events of the given sizes: each row's event index and position in its event."""
    sizes = np.asarray(sizes, dtype=np.int64)
    owner = np.repeat(np.arange(sizes.size), sizes)
    starts = np.cumsum(sizes) - sizes
    pos = np.arange(owner.size, dtype=np.int64) - starts[owner]
    return owner, pos


def fill_budget(sizes: np.ndarray, budget: int) -> np.ndarray:
    """Keep events in order until their rows reach ``budget``; the last one is cut short."""
    total = np.cumsum(sizes)
    n_events = min(int(np.searchsorted(total, budget, side="left")) + 1, total.size)
    kept = sizes[:n_events].copy()
    if n_events and total[n_events - 1] > budget:
        kept[-1] -= total[n_events - 1] - budget
    return kept[kept > 0]
