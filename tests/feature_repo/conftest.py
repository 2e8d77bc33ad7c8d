"""Fixtures of the Feast repo suite: small hand-built feature tables on the real S3 server,
a throwaway SQL registry, and entity ids unique to the run so that the real Redis can be
shared with other runs (the run's keys are deleted at the end)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fraud_platform.windows import CARD_WINDOWS, MERCHANT_WINDOWS
from tests.conftest import REPO_ROOT

FEATURE_REPO = REPO_ROOT / "feature_repo"
DAY1 = datetime(2026, 10, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
AS_OF = DAY1 + timedelta(days=2)
"""The materialization end of the suite: after every row of the tables."""
FEAST_WRITER_DB = 1
"""Redis database the Feast-engine comparison writes to (keys unique to the run)."""


@dataclass
class FeatureTables:
    """What the suite wrote to S3, as Python rows."""

    token: str
    cards: list[str]
    merchants: list[str]
    card_rows: list[dict[str, Any]]
    profile_rows: list[dict[str, Any]]
    merchant_rows: list[dict[str, Any]]

    def latest_card_row(self, card: str, until: datetime = AS_OF) -> dict[str, Any] | None:
        """The row Feast serves for ``card`` at ``until``: latest event, then created."""
        rows = [
            r
            for r in self.card_rows
            if r["card_id"] == card and r["event_timestamp"] <= until.replace(tzinfo=None)
        ]
        return max(rows, key=lambda r: (r["event_timestamp"], r["created"]), default=None)


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def build_tables(token: str) -> FeatureTables:
    """About 40 cards and 10 merchants over two days, with the cases parity must hold for:
    nulls (a card's first transaction, a transaction without location, a profile without
    home) and cards seen on one day or both.

    Like the pipeline's tables, a key has at most one row per event time (a rerun
    replaces its partitions): Feast's file offline store does not order rows of equal
    event time by ``created`` (its sort is not stable), so such rows would make the
    offline side, not the online one, arbitrary."""
    created = _naive(DAY2 + timedelta(hours=23))
    cards = [f"c-{token}-{i:03d}" for i in range(40)]
    merchants = [f"m-{token}-{i:02d}" for i in range(10)]
    card_rows: list[dict[str, Any]] = []
    for i, card in enumerate(cards):
        days = [DAY1] if i % 3 == 0 else [DAY2] if i % 3 == 1 else [DAY1, DAY2]
        previous: dict[str, Any] | None = None
        for d, day in enumerate(days):
            at = _naive(day + timedelta(hours=8 + i % 10, minutes=7 * d, seconds=i))
            count = d + 1
            row: dict[str, Any] = {"card_id": card, "event_timestamp": at, "created": created}
            for w, window in enumerate(CARD_WINDOWS):
                total = round(20.0 + 3.5 * i + 11.25 * w + 40 * d, 2)
                row[f"txn_count_{window}"] = count + w
                row[f"amount_sum_{window}"] = total
                row[f"amount_mean_{window}"] = round(total / (count + w), 2)
                row[f"amount_max_{window}"] = round(total / (count + w) * 1.75, 2)
            row["distinct_merchants_24h"] = 1 + (i + d) % 4
            located = i % 7 != 5
            row["last_latitude"] = 40.0 + 0.37 * (i % 9) if located else None
            row["last_longitude"] = -3.0 + 0.53 * (i % 8) if located else None
            row["last_amount"] = round(5.0 + 1.5 * i + d, 2)
            if previous is None:
                row["seconds_since_prev_txn"] = None
                row["distance_from_prev_km"] = None
                row["speed_from_prev_kmh"] = None
            else:
                gap = (at - previous["event_timestamp"]).total_seconds()
                row["seconds_since_prev_txn"] = gap
                row["distance_from_prev_km"] = round(1.5 * i, 3)
                row["speed_from_prev_kmh"] = round(1.5 * i / (gap / 3600), 3)
            row["last_txn_timestamp"] = int(at.replace(tzinfo=UTC).timestamp())
            card_rows.append(row)
            previous = row
    profile_rows = []
    for i, card in enumerate(cards):
        issued = _naive(datetime(2024, 1 + i % 12, 1 + i % 27, tzinfo=UTC))
        homeless = i % 11 == 3
        profile_rows.append(
            {
                "card_id": card,
                "event_timestamp": issued,
                "created": created,
                "issue_timestamp": int(issued.replace(tzinfo=UTC).timestamp()),
                "credit_limit": 1000.0 * (1 + i % 5),
                "home_latitude": None if homeless else 40.2 + 0.11 * (i % 6),
                "home_longitude": None if homeless else -3.5 + 0.29 * (i % 5),
            }
        )
    merchant_rows = []
    for j, merchant in enumerate(merchants):
        for d, day in enumerate([DAY1, DAY2] if j % 2 else [DAY2]):
            row = {
                "merchant_id": merchant,
                "event_timestamp": _naive(day + timedelta(hours=9 + j, minutes=d)),
                "created": created,
            }
            for w, window in enumerate(MERCHANT_WINDOWS):
                txns = 10 * (j + 1) + 5 * w + d
                frauds = (j + w + d) % 3
                row[f"txn_count_{window}"] = txns
                row[f"fraud_count_{window}"] = frauds
                row[f"fraud_rate_{window}"] = round(frauds / txns, 6)
            merchant_rows.append(row)
    return FeatureTables(token, cards, merchants, card_rows, profile_rows, merchant_rows)


def write_tables(tables: FeatureTables) -> None:
    """Parquet on S3 in the pipeline's layout: hive partitions by ``event_date`` for the
    transaction and merchant tables, microsecond timestamps adjusted to UTC as Spark
    writes them. (Naive ones would also trip Feast's Dask store, whose UTC conversion
    leaves an empty partition naive: it then fails comparing it with the entity rows.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fraud_platform import layout
    from fraud_platform.s3 import arrow_filesystem
    from fraud_platform.settings import S3Settings

    s3 = S3Settings()
    fs = arrow_filesystem(s3)
    base = f"{s3.bucket}/{s3.key(layout.SILVER)}"
    utc = pa.timestamp("us", tz="UTC")

    def typed(rows: list[dict[str, Any]], ints32: tuple[str, ...] = ()) -> pa.Table:
        table = pa.Table.from_pylist(rows)
        for name in table.column_names:
            field = table.schema.field(name)
            if pa.types.is_timestamp(field.type):
                table = table.set_column(
                    table.column_names.index(name), name, table[name].cast(utc)
                )
            elif pa.types.is_null(field.type):
                # A partition where a nullable column has no value yet.
                table = table.set_column(
                    table.column_names.index(name), name, table[name].cast(pa.float64())
                )
            elif name in ints32:
                table = table.set_column(
                    table.column_names.index(name), name, table[name].cast(pa.int32())
                )
        return table

    def partitioned(rows: list[dict[str, Any]], table: str, ints32=()) -> None:
        days = sorted({r["event_timestamp"].date() for r in rows})
        for day in days:
            part = [r for r in rows if r["event_timestamp"].date() == day]
            pq.write_table(
                typed(part, ints32),
                f"{base}/{table}/event_date={day.isoformat()}/part-00000.parquet",
                filesystem=fs,
            )

    partitioned(tables.card_rows, layout.CARD_TRANSACTION_FEATURES, ("distinct_merchants_24h",))
    partitioned(tables.merchant_rows, layout.MERCHANT_RISK_FEATURES)
    pq.write_table(
        typed(tables.profile_rows),
        f"{base}/{layout.CARD_PROFILE_FEATURES}/part-00000.parquet",
        filesystem=fs,
    )


def redis_keys(tables: FeatureTables, project: str) -> list[bytes]:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    keys = []
    for join_key, ids in (("card_id", tables.cards), ("merchant_id", tables.merchants)):
        for entity in ids:
            proto = EntityKey(join_keys=[join_key], entity_values=[Value(string_val=entity)])
            keys.append(serialize_entity_key(proto, 3) + project.encode())
    return keys


@pytest.fixture(scope="session")
def feast_env(stack_env: dict[str, str], tmp_path_factory) -> Iterator[dict[str, str]]:
    """The stack's environment with a registry of this run's own (SQLite) and one S3
    prefix for the whole suite: its tests share one set of feature tables (building them
    once keeps the suite fast), unlike the per-test prefixes of the other suites."""
    registry: Path = tmp_path_factory.mktemp("feast-registry") / "registry.db"
    env = {
        "FEAST_REGISTRY_PATH": f"sqlite:///{registry}",
        "FEAST_REPO_PATH": str(FEATURE_REPO),
        "FRAUD_S3_PREFIX": f"{stack_env['FRAUD_S3_PREFIX']}/feature-repo",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield {**stack_env, **env}


@pytest.fixture(autouse=True)
def _suite_s3_prefix(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's prefix in every test, after any per-test prefix of the root conftest."""
    if "feast_env" not in request.fixturenames:
        return
    if "_own_s3_prefix" in request.fixturenames:
        request.getfixturevalue("_own_s3_prefix")
    monkeypatch.setenv("FRAUD_S3_PREFIX", request.getfixturevalue("feast_env")["FRAUD_S3_PREFIX"])


@pytest.fixture(scope="session")
def feature_tables(feast_env: dict[str, str]) -> Iterator[FeatureTables]:
    """The hand-built feature tables, written under the run's S3 prefix."""
    from fraud_platform.redis_client import redis_client

    tables = build_tables(uuid.uuid4().hex[:8])
    write_tables(tables)
    yield tables
    keys = redis_keys(tables, "fraud_detection")
    for db in (None, FEAST_WRITER_DB):
        with redis_client(**({"db": db} if db is not None else {})) as client:
            client.delete(*keys)


@pytest.fixture(scope="session")
def applied(feature_tables: FeatureTables) -> dict[str, Any]:
    """The repo applied to the run's registry, as ``apply_definitions`` reports it."""
    from feature_pipeline.feature_store import apply_definitions

    return apply_definitions()
