"""The point-in-time benchmark's data: a month of card, merchant and profile feature rows
written to S3 in the silver layout (random values, a few rows duplicated to exercise the
tie rule), and the entity rows drawn from the same transactions."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from fraud_platform.windows import CARD_WINDOWS, MERCHANT_WINDOWS

console = Console(stderr=True)

START = datetime(2026, 9, 1, tzinfo=UTC)
DAYS = 30
DUPLICATES = 0.001


def day_transactions(day: int, transactions: int, seed: int) -> dict[str, np.ndarray]:
    """One day of transactions: card and merchant numbers, instants (µs), amounts."""
    rng = np.random.default_rng([seed, day])
    n = transactions // DAYS
    cards, merchants = max(1_000, transactions // (DAYS * 2)), max(200, transactions // 1200)
    start = int((START + timedelta(days=day)).timestamp() * 1e6)
    return {
        "card": rng.integers(0, cards, n),
        "merchant": rng.integers(0, merchants, n),
        "at": np.sort(rng.integers(start, start + 86_400_000_000, n)),
        "amount": np.round(rng.gamma(2.0, 30.0, n), 2),
        "latitude": rng.uniform(36, 60, n),
        "longitude": rng.uniform(-9, 25, n),
    }


def ids(kind: str, numbers: np.ndarray) -> Any:
    """``kind`` followed by each number: the card and merchant ids, as Arrow strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(kind, pc.cast(pa.array(numbers), pa.string()), "")


def _feature_table(
    keys: Any,
    key: str,
    at: np.ndarray,
    rng: np.random.Generator,
    columns: dict[str, str],
    created: datetime,
) -> Any:
    """Rows with random values; a few written twice (later created, or a full tie)."""
    import pyarrow as pa

    n = len(at)
    dup = rng.random(n) < DUPLICATES
    index = np.r_[np.arange(n), np.flatnonzero(dup)]
    made = np.full(len(index), np.datetime64(created.replace(tzinfo=None), "us"))
    later = np.r_[np.zeros(n, bool), rng.random(int(dup.sum())) < 0.5]
    made[later] += np.timedelta64(3600, "s")
    data: dict[str, Any] = {
        key: keys.take(pa.array(index)),
        "event_timestamp": pa.array(at[index], pa.timestamp("us", "UTC")),
        "created": pa.array(made, pa.timestamp("us", "UTC")),
    }
    for name, kind in columns.items():
        if kind == "int64":
            data[name] = pa.array(rng.integers(0, 500, len(index)), pa.int64())
        elif kind == "int32":
            data[name] = pa.array(rng.integers(0, 50, len(index)), pa.int32())
        else:
            values = np.round(rng.uniform(0, 1_000, len(index)), 2)
            values[rng.random(len(index)) < 0.02] = np.nan
            data[name] = pa.array(values, pa.float64(), from_pandas=True)
    return pa.table(data)


CARD_COLUMNS = {
    **{
        f"{stat}_{w}": ("int64" if stat == "txn_count" else "float64")
        for w in CARD_WINDOWS
        for stat in ("txn_count", "amount_sum", "amount_mean", "amount_max")
    },
    "distinct_merchants_24h": "int32",
    "seconds_since_prev_txn": "float64",
    "distance_from_prev_km": "float64",
    "speed_from_prev_kmh": "float64",
    "last_latitude": "float64",
    "last_longitude": "float64",
    "last_amount": "float64",
    "last_txn_timestamp": "int64",
}
MERCHANT_COLUMNS = {
    f"{stat}_{w}": ("float64" if stat == "fraud_rate" else "int64")
    for w in MERCHANT_WINDOWS
    for stat in ("txn_count", "fraud_count", "fraud_rate")
}


def generate(transactions: int, seed: int) -> dict[str, Any]:
    """Write the three silver tables under the benchmark's prefix (skipped when there)."""
    from fraud_platform import layout
    from fraud_platform.s3 import arrow_filesystem, s3_client
    from fraud_platform.settings import S3Settings

    s3 = S3Settings()
    marker = s3.key(layout.SILVER, "_generated.json")
    client = s3_client(s3)
    try:
        return json.loads(client.get_object(Bucket=s3.bucket, Key=marker)["Body"].read())
    except client.exceptions.NoSuchKey:
        pass
    fs, started = arrow_filesystem(s3), time.perf_counter()
    base = f"{s3.bucket}/{s3.key(layout.SILVER)}"
    created = START + timedelta(days=DAYS + 1)
    rows = {"card": 0, "merchant": 0}
    for day in range(DAYS):
        for kind, count in _write_day(day, transactions, seed, base, fs, created).items():
            rows[kind] += count
    cards = max(1_000, transactions // (DAYS * 2))
    _write_profiles(cards, seed, base, fs, created)
    summary = {
        "transactions": transactions,
        "seed": seed,
        "cards": cards,
        "merchants": max(200, transactions // 1200),
        "card_rows": rows["card"],
        "merchant_rows": rows["merchant"],
        "profile_rows": cards,
        "generate_s": round(time.perf_counter() - started, 1),
    }
    client.put_object(Bucket=s3.bucket, Key=marker, Body=json.dumps(summary).encode())
    return summary


def _write_day(
    day: int, transactions: int, seed: int, base: str, fs: Any, created: datetime
) -> dict[str, int]:
    """One day's card and merchant feature rows, one Parquet file per table; the rows
    written per table."""
    import pyarrow.parquet as pq

    from fraud_platform import layout

    txn = day_transactions(day, transactions, seed)
    rng = np.random.default_rng([seed, day, 1])
    date = (START + timedelta(days=day)).date().isoformat()
    rows = {}
    for kind, table, columns, key in (
        ("card", layout.CARD_TRANSACTION_FEATURES, CARD_COLUMNS, "card_id"),
        ("merchant", layout.MERCHANT_RISK_FEATURES, MERCHANT_COLUMNS, "merchant_id"),
    ):
        frame = _feature_table(ids(kind[0], txn[kind]), key, txn["at"], rng, columns, created)
        rows[kind] = frame.num_rows
        pq.write_table(frame, f"{base}/{table}/event_date={date}/part-00000.parquet", filesystem=fs)
    console.log(f"generated {date}")
    return rows


def _write_profiles(cards: int, seed: int, base: str, fs: Any, created: datetime) -> None:
    """One profile row per card, issued before the month, in one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fraud_platform import layout

    rng = np.random.default_rng([seed, 99])
    issued = rng.integers(
        int(datetime(2023, 1, 1, tzinfo=UTC).timestamp()), int(START.timestamp()), cards
    )
    profile = pa.table(
        {
            "card_id": ids("c", np.arange(cards)),
            "event_timestamp": pa.array(issued * 1_000_000, pa.timestamp("us", "UTC")),
            "created": pa.array(
                np.full(cards, int(created.timestamp() * 1e6)), pa.timestamp("us", "UTC")
            ),
            "issue_timestamp": pa.array(issued, pa.int64()),
            "credit_limit": rng.choice([1000.0, 2500.0, 5000.0], cards),
            "home_latitude": rng.uniform(36, 60, cards),
            "home_longitude": rng.uniform(-9, 25, cards),
        }
    )
    pq.write_table(
        profile, f"{base}/{layout.CARD_PROFILE_FEATURES}/part-00000.parquet", filesystem=fs
    )


def entity_transactions(rows: int, transactions: int, seed: int) -> pd.DataFrame:
    """``rows`` transactions of the last 21 days, the columns the join needs."""
    days = [day_transactions(d, transactions, seed) for d in range(DAYS - 21, DAYS)]
    joined = {k: np.concatenate([d[k] for d in days]) for k in days[0]}
    pick = np.sort(np.random.default_rng([seed, 7]).choice(len(joined["at"]), rows, replace=False))
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in pick],
            "card_id": ids("c", joined["card"][pick]).to_numpy(zero_copy_only=False),
            "merchant_id": ids("m", joined["merchant"][pick]).to_numpy(zero_copy_only=False),
            "amount": joined["amount"][pick],
            "latitude": joined["latitude"][pick],
            "longitude": joined["longitude"][pick],
            "transaction_timestamp": pd.to_datetime(joined["at"][pick], unit="us", utc=True),
        }
    )
