"""The generator's configuration: one typed, validated, immutable object per run.

Everything that changes the generated data is here, so that a config and its seed name a
data set exactly (same config, same frames).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ScenarioName = Literal[
    "card_testing", "impossible_travel", "compromised_merchant", "account_takeover"
]

SCENARIOS: tuple[ScenarioName, ...] = (
    "card_testing",
    "impossible_travel",
    "compromised_merchant",
    "account_takeover",
)
"""The fraud scenarios, in the order of their integer codes inside the generator."""

DEFAULT_SCENARIO_WEIGHTS: dict[ScenarioName, float] = {
    "card_testing": 0.25,
    "impossible_travel": 0.20,
    "compromised_merchant": 0.30,
    "account_takeover": 0.25,
}
MAX_PER_CARD_PER_DAY = 50


class GeneratorConfig(BaseModel):
    """What to generate: population, time window, volume, fraud and label timing.

    The card and merchant population depends on ``seed``, ``n_cards`` and ``n_merchants``
    only, so successive windows generated with the same seed share the same cards and
    merchants; the activity depends on the window too.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_cards: int = Field(default=5_000, ge=10, description="Cards in the population.")
    n_merchants: int = Field(
        default=1_000, ge=200, description="Merchants (at least one per city and category)."
    )
    start_date: date = Field(default=date(2025, 1, 1), description="First event date (UTC).")
    days: int = Field(default=30, ge=1, le=3_660, description="Length of the window in days.")
    n_transactions: int | None = Field(
        default=None,
        ge=1,
        description="Target number of transactions (genuine and fraud); overrides the rate.",
    )
    transactions_per_card_per_day: float = Field(
        default=1.5,
        gt=0,
        le=MAX_PER_CARD_PER_DAY,
        description="Mean genuine activity when no target is set.",
    )
    fraud_rate: float = Field(
        default=0.005, ge=0, lt=0.2, description="Share of transactions that are fraudulent."
    )
    scenario_weights: dict[ScenarioName, float] = Field(
        default_factory=lambda: dict(DEFAULT_SCENARIO_WEIGHTS),
        description="Relative share of fraudulent transactions per scenario.",
    )
    seed: int = Field(default=7, ge=0)
    settlement_window_days: float = Field(
        default=7.0,
        gt=0,
        description="After this long without a chargeback a transaction counts as genuine.",
    )
    chargeback_median_days: float = Field(default=3.0, gt=0)
    chargeback_sigma: float = Field(
        default=1.2,
        gt=0,
        description="Log-scale spread of the chargeback delay; 1.2 puts ~10% beyond 14 days.",
    )
    chargeback_max_days: float = Field(
        default=120.0, gt=0, description="Card schemes' dispute deadline: no later label."
    )
    currency: str = Field(default="EUR", min_length=3, max_length=3)

    @model_validator(mode="after")
    def _check_volume(self) -> GeneratorConfig:
        # Beyond this, cardholders could not physically get from shop to shop in time.
        if (
            self.n_transactions is not None
            and self.n_transactions > self.n_cards * self.days * MAX_PER_CARD_PER_DAY
        ):
            raise ValueError(
                f"n_transactions implies more than {MAX_PER_CARD_PER_DAY} "
                "transactions per card per day: raise n_cards or days"
            )
        return self

    @model_validator(mode="after")
    def _check_weights(self) -> GeneratorConfig:
        if any(w < 0 for w in self.scenario_weights.values()):
            raise ValueError("scenario_weights must be non-negative")
        if self.fraud_rate > 0 and sum(self.scenario_weights.values()) <= 0:
            raise ValueError("scenario_weights must have a positive weight")
        return self

    @property
    def start(self) -> datetime:
        """Start of the window, midnight UTC of ``start_date``."""
        return datetime(
            self.start_date.year, self.start_date.month, self.start_date.day, tzinfo=UTC
        )

    @property
    def end(self) -> datetime:
        """End of the window (exclusive)."""
        return self.start + timedelta(days=self.days)

    @property
    def last_date(self) -> date:
        """Last event date inside the window."""
        return self.start_date + timedelta(days=self.days - 1)

    @property
    def window_seconds(self) -> int:
        return self.days * 86_400

    def genuine_target(self) -> int:
        """Number of genuine transactions to draw."""
        if self.n_transactions is not None:
            return max(1, round(self.n_transactions * (1.0 - self.fraud_rate)))
        return max(1, round(self.n_cards * self.days * self.transactions_per_card_per_day))

    def fraud_budgets(self, n_genuine: int) -> dict[ScenarioName, int]:
        """Fraudulent transactions per scenario so that fraud / total equals ``fraud_rate``."""
        total_fraud = round(n_genuine * self.fraud_rate / (1.0 - self.fraud_rate))
        weights = {s: self.scenario_weights.get(s, 0.0) for s in SCENARIOS}
        weight_sum = sum(weights.values()) or 1.0
        budgets = {s: int(total_fraud * w / weight_sum) for s, w in weights.items()}
        # Give the rounding remainder to the largest scenarios, so the total is exact.
        remainder = total_fraud - sum(budgets.values())
        for s in sorted(weights, key=lambda k: -weights[k])[:remainder]:
            budgets[s] += 1
        return budgets
