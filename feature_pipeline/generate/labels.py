"""When each transaction's label becomes known.

Fraud is known only once the cardholder disputes it (a chargeback, days to weeks later);
a genuine transaction is known to be genuine only once the settlement window has passed
without a dispute. Features built from labels must respect these times.
"""

from __future__ import annotations

import numpy as np

from feature_pipeline.generate.config import GeneratorConfig
from feature_pipeline.generate.sampling import rng_for
from feature_pipeline.generate.transactions import TxBatch

MIN_CHARGEBACK_S = 3_600


def chargeback_delays(rng: np.random.Generator, n: int, config: GeneratorConfig) -> np.ndarray:
    """Seconds from a fraud to its chargeback: lognormal, median ``chargeback_median_days``;
    at least an hour, at most the schemes' dispute deadline."""
    days = rng.lognormal(np.log(config.chargeback_median_days), config.chargeback_sigma, n)
    seconds = np.rint(days * 86_400).astype(np.int64)
    return np.clip(seconds, MIN_CHARGEBACK_S, int(config.chargeback_max_days * 86_400))


def label_times(config: GeneratorConfig, batch: TxBatch) -> tuple[np.ndarray, np.ndarray]:
    """``(is_fraud, label_t)`` per row, ``label_t`` in seconds since the window's start.

    One delay per fraud event: a cardholder disputes the whole episode at once.
    """
    rng = rng_for(config.seed, 3, config.start_date.toordinal(), config.days)
    fraud = batch.scenario >= 0
    label_t = batch.t + int(round(config.settlement_window_days * 86_400))
    if fraud.any():
        delays = chargeback_delays(rng, int(batch.event.max()) + 1, config)
        label_t[fraud] = batch.t[fraud] + delays[batch.event[fraud]]
    return fraud.astype(np.int8), label_t
