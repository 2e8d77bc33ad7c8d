"""The trailing windows of the features, by name: part of the contract, since the feature
tables, the Feast views, the validation gates and the online state all name their columns
after them (``txn_count_10m``, ``fraud_count_30d``). Values are the windows' lengths in
seconds; docs/features.md defines how a window at instant ``t`` is bounded."""

from __future__ import annotations

CARD_WINDOWS: dict[str, int] = {
    "10m": 10 * 60,
    "1h": 60 * 60,
    "24h": 24 * 60 * 60,
    "7d": 7 * 24 * 60 * 60,
    "30d": 30 * 24 * 60 * 60,
}
"""Per-card transaction velocity and amount windows."""

MERCHANT_WINDOWS: dict[str, int] = {
    "1d": 24 * 60 * 60,
    "7d": 7 * 24 * 60 * 60,
    "30d": 30 * 24 * 60 * 60,
}
"""Per-merchant transaction and (label-delayed) fraud windows."""
