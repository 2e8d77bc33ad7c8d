"""The offline store's point-in-time join on tiny hand-made tables on the real S3 server,
against a reference written here in plain Python (no DuckDB, no Feast).

Cases: an entity row before, at and after a feature row; TTL expiry; ties on event time
(broken by ``created``, then by the greatest feature values); an entity without rows; a
null key; repeated entity rows; a source whose field mapping renames its columns; the
latest row per key that materialization pulls; the join run as one query and as
consecutive queries of a few entity rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

T0 = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
CARD_TTL = timedelta(hours=1)
MERCHANT_TTL = timedelta(days=1)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# (card_id, event minute, created minute, amount, count): the created times and values
# make every tie rule decide something.
CARD_ROWS = [
    ("c1", 0, 60, 1.0, 1),
    ("c1", 0, 120, 2.0, 2),  # same event time, later created: wins over the row above
    ("c1", 30, 90, 3.0, 3),
    ("c1", 30, 90, 4.0, 1),  # full tie with the row above: the greater amount wins
    ("c1", 45, 90, None, 9),  # a null amount loses the full tie below
    ("c1", 45, 90, 5.0, 0),
    ("c2", 0, 10, 7.0, 7),
    ("c2", 0, None, 8.0, 8),  # a null created loses to any created
]
MERCHANT_ROWS = [("m1", -600, 0, 0.1), ("m1", 20, 30, 0.2), ("m2", 5, 5, 0.5)]
# (row id, card, merchant, minute): before, at, after, TTL expiry, no rows, null key.
ENTITY_ROWS = [
    ("before", "c1", "m1", -1),
    ("at", "c1", "m1", 0),
    ("after", "c1", "m1", 15),
    ("tie", "c1", "m2", 30),
    ("null-loses", "c1", "m2", 50),
    ("ttl-inside", "c1", "m1", 45 + 60),
    ("ttl-expired", "c1", "m1", 45 + 61),
    ("created-null", "c2", "m2", 1),
    ("no-rows", "c9", "m9", 10),
    ("null-key", None, "m1", 10),
    ("repeat-1", "c1", "m1", 15),
    ("repeat-2", "c1", "m1", 15),
    ("merchant-older", "c2", "m1", 19),
]


def _greatest(rows: list[dict[str, Any]], columns: list[str]) -> dict[str, Any] | None:
    """The documented choice: latest event time, then latest created (null lowest), then
    the greatest values column by column (null lowest)."""

    def key(row: dict[str, Any]) -> tuple:
        parts = [row["event_timestamp"]]
        for column in ["created", *columns]:
            value = row[column]
            parts.append((value is not None, value if value is not None else 0))
        return tuple(parts)

    return max(rows, key=key, default=None)


def reference(
    rows: list[dict[str, Any]],
    key: str,
    value: Any,
    at: datetime,
    ttl: timedelta,
    columns: list[str],
) -> dict[str, Any] | None:
    """The row a point-in-time join must return for one entity row."""
    if value is None:
        return None
    candidates = [r for r in rows if r[key] == value and at - ttl <= r["event_timestamp"] <= at]
    return _greatest(candidates, columns)


def _card_rows() -> list[dict[str, Any]]:
    return [
        {
            "card_id": c,
            "event_timestamp": _at(e),
            "created": None if m is None else _at(m),
            "amount": a,
            "txn_count": n,
        }
        for c, e, m, a, n in CARD_ROWS
    ]


def _merchant_rows() -> list[dict[str, Any]]:
    # Source column names as the pipeline writes them; the view reads them renamed.
    return [
        {"merchant_id": m, "event_timestamp": _at(e), "created": _at(c), "rate": r}
        for m, e, c, r in MERCHANT_ROWS
    ]


def _write(rows: list[dict[str, Any]], uri: str, split_files: bool) -> None:
    """Parquet on S3 in the pipeline's shapes: ``event_date`` partitions with UTC
    microsecond timestamps; the tie rows go to two files, so no file order can decide."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fraud_platform.s3 import arrow_filesystem

    fs = arrow_filesystem()
    table = pa.Table.from_pylist(rows).cast(
        pa.schema(
            [
                (
                    name,
                    pa.timestamp("us", tz="UTC")
                    if name in ("event_timestamp", "created")
                    else pa.string()
                    if name.endswith("_id")
                    else pa.float64()
                    if name != "txn_count"
                    else pa.int64(),
                )
                for name in rows[0]
            ]
        )
    )
    base = uri.removeprefix("s3://")
    parts = (
        [table.slice(0, len(rows) // 2), table.slice(len(rows) // 2)] if split_files else [table]
    )
    for i, part in enumerate(parts):
        pq.write_table(part, f"{base}/event_date=2026-10-01/part-{i:05d}.parquet", filesystem=fs)


@pytest.fixture(scope="module", params=[3_000_000, 4], ids=["one-query", "queries-of-4-rows"])
def tiny_store(stack_env: dict[str, str], tmp_path_factory, request) -> Iterator[Any]:
    """A Feast repo of two views over the tables above, on the project's offline store;
    its joins run as one query, then as consecutive queries of 4 entity rows."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    from fraud_platform.settings import S3Settings

    s3 = S3Settings()
    root = s3.uri("offline-store", uuid.uuid4().hex[:8])
    _write(_card_rows(), f"{root}/cards", split_files=True)
    _write(_merchant_rows(), f"{root}/merchants", split_files=False)
    repo: Path = tmp_path_factory.mktemp("tiny-repo")
    (repo / "feature_store.yaml").write_text(
        "project: tiny\nprovider: local\n"
        f"registry:\n  registry_type: sql\n  path: sqlite:///{repo / 'registry.db'}\n"
        "offline_store:\n  type: fraud_platform.offline_store.AsofDuckDBOfflineStore\n"
        f"  s3_url_style: path\n  entity_rows_per_query: {request.param}\n"
        f"online_store:\n  type: sqlite\n  path: {repo / 'online.db'}\n"
        "entity_key_serialization_version: 3\n"
    )
    card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.STRING)
    merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING)
    cards = FeatureView(
        name="cards",
        entities=[card],
        ttl=CARD_TTL,
        schema=[Field(name="amount", dtype=Float64), Field(name="txn_count", dtype=Int64)],
        source=FileSource(
            name="cards_src",
            path=f"{root}/cards",
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        ),
    )
    merchants = FeatureView(
        name="merchants",
        entities=[merchant],
        ttl=MERCHANT_TTL,
        schema=[Field(name="merchant_rate", dtype=Float64)],
        source=FileSource(
            name="merchants_src",
            path=f"{root}/merchants",
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
            field_mapping={"rate": "merchant_rate"},
        ),
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply([card, merchant, cards, merchants])
    yield store


def _entity_df() -> pd.DataFrame:
    ids, cards, merchants, minutes = zip(*ENTITY_ROWS, strict=True)
    return pd.DataFrame(
        {
            "row": ids,
            "card_id": cards,
            "merchant_id": merchants,
            "event_timestamp": [pd.Timestamp(_at(m)) for m in minutes],
        }
    )


def test_point_in_time_join_matches_the_reference(tiny_store) -> None:
    entity = _entity_df()
    result = tiny_store.get_historical_features(
        entity_df=entity, features=["cards:amount", "cards:txn_count", "merchants:merchant_rate"]
    ).to_df()
    # Every entity row, once, in the order given, repeated and null-keyed ones included.
    assert list(result["row"]) == list(entity["row"])
    cards, merchants = _card_rows(), _merchant_rows()
    for got in result.to_dict("records"):
        at = got["event_timestamp"].to_pydatetime()
        card = reference(cards, "card_id", got["card_id"], at, CARD_TTL, ["amount", "txn_count"])
        merchant = reference(
            merchants, "merchant_id", got["merchant_id"], at, MERCHANT_TTL, ["rate"]
        )
        for column, expected in (
            ("amount", card and card["amount"]),
            ("txn_count", card and card["txn_count"]),
            ("merchant_rate", merchant and merchant["rate"]),
        ):
            assert pd.isna(got[column]) if expected is None else got[column] == expected, (
                got["row"],
                column,
                got[column],
                expected,
            )


def test_each_case_picks_the_documented_row(tiny_store) -> None:
    """The reference above, spelled out: what each case must give."""
    result = (
        tiny_store.get_historical_features(
            entity_df=_entity_df(),
            features=["cards:amount", "merchants:merchant_rate"],
            full_feature_names=True,
        )
        .to_df()
        .set_index("row")
    )
    amount = result["cards__amount"]
    assert pd.isna(amount["before"])
    assert amount["at"] == 2.0 and amount["after"] == 2.0  # later created wins
    assert amount["tie"] == 4.0  # full tie: greater value
    assert amount["null-loses"] == 5.0  # full tie: null lowest
    assert amount["ttl-inside"] == 5.0 and pd.isna(amount["ttl-expired"])
    assert amount["created-null"] == 7.0  # null created lowest
    assert pd.isna(amount["no-rows"]) and pd.isna(amount["null-key"])
    assert amount["repeat-1"] == amount["repeat-2"] == 2.0
    rate = result["merchants__merchant_rate"]
    assert rate["before"] == 0.1 and rate["ttl-inside"] == 0.2  # renamed source column
    assert rate["merchant-older"] == 0.1  # 10 h old, inside a day


def test_latest_row_per_key_follows_the_same_rule(tiny_store) -> None:
    """What materialization pulls (``pull_latest_from_table_or_query``)."""
    view = tiny_store.get_feature_view("cards")
    provider = tiny_store._get_provider()
    job = provider.offline_store.pull_latest_from_table_or_query(
        config=tiny_store.config,
        data_source=view.batch_source,
        join_key_columns=["card_id"],
        feature_name_columns=["amount", "txn_count"],
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
        start_date=_at(-60),
        end_date=_at(60),
    )
    latest = job.to_df().set_index("card_id")
    cards = _card_rows()
    for card_id in ("c1", "c2"):
        expected = _greatest([r for r in cards if r["card_id"] == card_id], ["amount", "txn_count"])
        assert latest.loc[card_id, "amount"] == expected["amount"]
        assert latest.loc[card_id, "txn_count"] == expected["txn_count"]
