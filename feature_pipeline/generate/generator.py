"""Assemble the generator's stages into the four frames of the landing zone.

Ids are built by Arrow kernels and the low-cardinality columns are categoricals, which
keeps ten million rows to about a gigabyte and a few seconds of work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from feature_pipeline.generate import catalog as C
from feature_pipeline.generate.config import SCENARIOS, GeneratorConfig
from feature_pipeline.generate.fraud import generate_fraud
from feature_pipeline.generate.labels import label_times
from feature_pipeline.generate.reference import Population, build_population
from feature_pipeline.generate.transactions import TxBatch, generate_genuine

log = logging.getLogger(__name__)

Step = Callable[[str], None]


@dataclass(frozen=True)
class GeneratedData:
    """The generated feeds. ``labels`` rows are aligned with ``transactions`` rows."""

    config: GeneratorConfig
    cards: pd.DataFrame
    merchants: pd.DataFrame
    transactions: pd.DataFrame
    labels: pd.DataFrame
    compromised_merchants: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-safe counts, fraud rate per scenario and date ranges."""
        n = len(self.transactions)
        n_fraud = int(self.labels["is_fraud"].sum())
        by_scenario = self.labels["fraud_scenario"].value_counts()
        label_ts = self.labels["label_timestamp"]
        return {
            "rows": {
                "cards": len(self.cards),
                "merchants": len(self.merchants),
                "transactions": n,
                "labels": len(self.labels),
            },
            "fraud": {
                "transactions": n_fraud,
                "rate": round(n_fraud / n, 6) if n else 0.0,
                "by_scenario": {s: int(by_scenario.get(s, 0)) for s in SCENARIOS},
                "compromised_merchants": list(self.compromised_merchants),
            },
            "event_date_range": [
                self.config.start_date.isoformat(),
                self.config.last_date.isoformat(),
            ],
            "label_date_range": [
                label_ts.min().date().isoformat(),
                label_ts.max().date().isoformat(),
            ]
            if n
            else [],
            "seed": self.config.seed,
        }


def _noop(_: str) -> None:
    return None


def generate(config: GeneratorConfig, on_step: Step | None = None) -> GeneratedData:
    """Generate reference data, transactions and labels in memory.

    Args:
        config: what to generate; the same config gives identical frames.
        on_step: called with the name of each finished stage (progress reporting).

    Returns:
        The four frames, transactions sorted by ``event_timestamp``.
    """
    step = on_step or _noop
    started = time.perf_counter()
    pop = build_population(config)
    step("reference")
    genuine = generate_genuine(config, pop)
    step("genuine")
    fraud = generate_fraud(config, pop, genuine)
    step("fraud")
    batch = TxBatch.concat([genuine, fraud.batch])
    del genuine
    batch = batch.take(np.argsort(batch.t, kind="stable"))
    is_fraud, label_t = label_times(config, batch)
    transactions, ids = _transactions_frame(config, pop, batch)
    labels = _labels_frame(config, batch, ids, is_fraud, label_t)
    step("frames")
    duration = time.perf_counter() - started
    log.info(
        "generated %d transactions (%d fraud) in %.1fs", len(batch), int(is_fraud.sum()), duration
    )
    return GeneratedData(
        config=config,
        cards=pop.cards,
        merchants=pop.merchants,
        transactions=transactions,
        labels=labels,
        compromised_merchants=[str(pop.merchant_ids[m]) for m in fraud.compromised_merchants],
        duration_s=duration,
    )


def _timestamps(config: GeneratorConfig, seconds: np.ndarray) -> pd.Series:
    epoch = int(config.start.timestamp())
    return pd.Series(pd.to_datetime(seconds + epoch, unit="s", utc=True))


def transaction_ids(config: GeneratorConfig, t: np.ndarray) -> pa.Array:
    """``tx<event date><sequence within the date>``: unique, sortable, and identical when the
    same window is generated again, so a rerun replaces rather than duplicates."""
    day = t // 86_400
    n_days = int(day.max()) + 1 if t.size else 0
    seq = np.arange(t.size, dtype=np.int64) - np.searchsorted(day, day, side="left")
    dates = pa.array(
        [(config.start_date + timedelta(days=int(d))).strftime("%Y%m%d") for d in range(n_days)]
    )
    width = max(8, len(str(int(seq.max()) if t.size else 0)))
    digits = pc.utf8_lpad(pa.array(seq).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise("tx", dates.take(pa.array(day)), digits, "")


def _transactions_frame(
    config: GeneratorConfig, pop: Population, batch: TxBatch
) -> tuple[pd.DataFrame, pd.arrays.ArrowStringArray]:
    ids = pd.arrays.ArrowStringArray(transaction_ids(config, batch.t))
    card_categories = pd.Index(pop.card_ids.to_numpy(zero_copy_only=False))
    merchant_categories = pd.Index(pop.merchant_ids.to_numpy(zero_copy_only=False))
    frame = pd.DataFrame(
        {
            "transaction_id": ids,
            "card_id": pd.Categorical.from_codes(batch.card, categories=card_categories),
            "merchant_id": pd.Categorical.from_codes(
                batch.merchant, categories=merchant_categories
            ),
            "amount": batch.amount.astype(np.float64),
            "currency": pd.Categorical.from_codes(np.zeros(len(batch), np.int8), [config.currency]),
            "merchant_category": pd.Categorical.from_codes(
                batch.category, categories=list(C.CATEGORY_NAMES)
            ),
            "channel": pd.Categorical.from_codes(
                batch.online.astype(np.int8), categories=list(C.CHANNELS)
            ),
            "latitude": batch.lat,
            "longitude": batch.lon,
            "event_timestamp": _timestamps(config, batch.t),
        }
    )
    return frame, ids


def _labels_frame(
    config: GeneratorConfig,
    batch: TxBatch,
    ids: pd.arrays.ArrowStringArray,
    is_fraud: np.ndarray,
    label_t: np.ndarray,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": ids,
            "is_fraud": is_fraud,
            "label_timestamp": _timestamps(config, label_t),
            "fraud_scenario": pd.Categorical.from_codes(batch.scenario, categories=list(SCENARIOS)),
        }
    )
