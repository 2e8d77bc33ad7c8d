"""The point-in-time benchmark's reference: the expected features of each entity row by
Polars ``join_asof`` over the same silver tables (no Feast, no DuckDB), and the row-by-row
comparison of a store's result with it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from benchmarks.point_in_time_tables import CARD_COLUMNS, MERCHANT_COLUMNS


def polars_options() -> dict[str, str]:
    """Polars' S3 options from the project's S3 settings."""
    from fraud_platform.settings import S3Settings

    s3 = S3Settings()
    secret = s3.secret_access_key.get_secret_value() if s3.secret_access_key else ""
    return {
        "aws_endpoint_url": s3.endpoint_url or "",
        "aws_region": s3.region,
        "aws_access_key_id": s3.access_key_id or "",
        "aws_secret_access_key": secret,
        "aws_allow_http": "true",
    }


def reference(entity: pd.DataFrame) -> pd.DataFrame:
    """The features of each entity row by Polars ``join_asof``, written without Feast or
    DuckDB: per key and event time the row with the latest ``created``, then the greatest
    values in the view's column order (nulls lowest); then the latest row at or before
    the entity time, within the TTL."""
    import polars as pl

    out = (
        pl.from_pandas(entity[["transaction_id", "card_id", "merchant_id", "event_timestamp"]])
        .with_columns(pl.col("event_timestamp").dt.cast_time_unit("us"))
        .sort("event_timestamp")
    )
    for view in _views():
        out = out.join_asof(
            _latest_rows(view),
            on="event_timestamp",
            by=view.key,
            strategy="backward",
            tolerance=view.ttl,
        )
    return out.to_pandas()


class _View(NamedTuple):
    """A feature view as the reference reads it: its table, key, columns and TTL."""

    name: str
    table: str
    key: str
    columns: list[str]
    mapping: dict[str, str]
    ttl: timedelta


def _views() -> tuple[_View, ...]:
    from fraud_platform import layout

    return (
        _View(
            "card_transaction_features",
            layout.CARD_TRANSACTION_FEATURES,
            "card_id",
            list(CARD_COLUMNS),
            {},
            timedelta(days=30),
        ),
        _View(
            "card_profile_features",
            layout.CARD_PROFILE_FEATURES,
            "card_id",
            ["issue_timestamp", "credit_limit", "home_latitude", "home_longitude"],
            {},
            timedelta(days=3650),
        ),
        _View(
            "merchant_risk_features",
            layout.MERCHANT_RISK_FEATURES,
            "merchant_id",
            list(MERCHANT_COLUMNS),
            {c: f"merchant_{c}" for c in MERCHANT_COLUMNS},
            timedelta(days=30),
        ),
    )


def _latest_rows(view: _View) -> Any:
    """The view's rows, one per key and event time by the tie rule, its columns named as
    Feast's full feature names, sorted by event time."""
    import polars as pl

    from fraud_platform import layout
    from fraud_platform.settings import S3Settings

    uri = S3Settings().uri(layout.SILVER, view.table)
    path = uri + (
        "/part-00000.parquet" if view.table == layout.CARD_PROFILE_FEATURES else "/**/*.parquet"
    )
    columns = view.columns
    return (
        pl.scan_parquet(path, storage_options=polars_options(), hive_partitioning=False)
        .select(view.key, "event_timestamp", "created", *columns)
        .sort([view.key, "event_timestamp", "created", *columns], nulls_last=False)
        .unique(subset=[view.key, "event_timestamp"], keep="last")
        .drop("created")
        .rename({c: f"{view.name}__{view.mapping.get(c, c)}" for c in columns})
        .with_columns(pl.col("event_timestamp").dt.convert_time_zone("UTC"))
        .sort("event_timestamp")
        .collect()
    )


def mismatches(result: pd.DataFrame, expected: pd.DataFrame) -> tuple[int, dict[str, int]]:
    """Rows (and per feature) where the store's value differs from the reference's."""
    columns = [c for c in expected.columns if "__" in c]
    merged = result[["transaction_id", *columns]].merge(
        expected[["transaction_id", *columns]], on="transaction_id", suffixes=("", "_ref")
    )
    bad = np.zeros(len(merged), bool)
    per_feature = {}
    for column in columns:
        got = pd.to_numeric(merged[column], errors="coerce").astype("float64").to_numpy()
        want = merged[f"{column}_ref"].astype("float64").to_numpy()
        differ = ~((got == want) | (np.isnan(got) & np.isnan(want)))
        if differ.any():
            per_feature[column] = int(differ.sum())
        bad |= differ
    return int(bad.sum()), per_feature
