"""The SQL of the point-in-time join and of the latest rows, for DuckDB.

Built as text for :mod:`fraud_platform.offline_store`, which runs it: per feature view, an
``ASOF LEFT JOIN`` of the entity rows with the view's keys and event times, then the
features of the matched rows, with one rule for ties (:func:`tie_order`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd
from feast.infra.offline_stores.file_source import FileSource

from fraud_platform.feast_repo import batch_source

if TYPE_CHECKING:
    from feast.data_source import DataSource
    from feast.feature_view import FeatureView

ROW = "__entity_row"
"""Column numbering the entity rows: the result comes back in their order."""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def scan(source: DataSource, repo_path: Path | str | None) -> str:
    """``read_parquet`` of a file source: one file, or every Parquet file under a folder
    (hive partitions, files of a rewritten partition unioned by column name)."""
    if not isinstance(source, FileSource):
        raise TypeError(f"{source.name}: only FileSource is supported, not {type(source)}")
    path = source.path
    if "://" not in path:
        path = str(FileSource.get_uri_for_file_path(repo_path=repo_path, uri=path))
    if not path.endswith(".parquet"):
        path = path.rstrip("/") + "/**/*.parquet"
    literal = "'" + path.replace("'", "''") + "'"
    return f"read_parquet({literal}, hive_partitioning = true, union_by_name = true)"


def tie_order(timestamp: str, created: str | None, features: Sequence[str]) -> str:
    """The order that picks one row among a key's rows (first = chosen): the latest event
    time, then the latest ``created``, then, for rows equal in both, the greatest feature
    values compared column by column in the view's order (nulls lowest). The last rule
    makes the choice depend on the rows alone, not on file or thread order."""
    keys = [f"{quote(timestamp)} DESC"]
    keys += [f"{quote(created)} DESC NULLS LAST"] if created else []
    keys += [f"{quote(name)} DESC NULLS LAST" for name in features]
    return ", ".join(keys)


def _source_columns(view: FeatureView) -> tuple[dict[str, str], list[str]]:
    """``feature name -> source column`` for the view's features, and its join keys'
    source columns (``field_mapping`` maps source columns to feature names)."""
    reverse = {new: old for old, new in batch_source(view).field_mapping.items()}
    features = {f.name: reverse.get(f.name, f.name) for f in view.features}
    keys = [reverse.get(column.name, column.name) for column in view.entity_columns]
    return features, keys


class _ViewRows(NamedTuple):
    """What the join needs of a view's rows that can serve ``[start, end]`` entity rows."""

    scan: str
    where: str
    keys: list[str]
    ts: str
    created: str | None
    features: dict[str, str]
    """feature -> source column"""


def _view_rows(
    view: FeatureView, repo_path: Any, start: datetime | None, end: datetime
) -> _ViewRows:
    source = batch_source(view)
    features, keys = _source_columns(view)
    ts = source.timestamp_field
    where = [f"{quote(ts)} <= TIMESTAMPTZ '{end.isoformat()}'"]
    if start is not None:
        where.append(f"{quote(ts)} >= TIMESTAMPTZ '{start.isoformat()}'")
    return _ViewRows(
        scan(source, repo_path),
        " AND ".join(where),
        keys,
        ts,
        source.created_timestamp_column or None,
        features,
    )


class _ViewSql(NamedTuple):
    """One view's parts of the query (see :func:`_asof_sql`)."""

    narrow: str
    """CTE: the view's keys and event times."""
    matched: str
    """Select item of ``matched``: the event time the ASOF join found."""
    asof: str
    """Join clause of ``matched``."""
    chosen: str
    """CTE: one row per matched (key, time), with the features."""
    join: str
    """Join clause of the final select."""
    fresh: str
    """Condition: the match is within the view's TTL."""


def _view_sql(
    i: int, view: FeatureView, rows: _ViewRows, event_col: str, ttl: timedelta | None
) -> _ViewSql:
    alias, at = f"v{i}", quote(f"__v{i}_time")
    key_map = view.projection.join_key_map or {}
    pairs = [
        (quote(key_map.get(c.name, c.name)), quote(key))
        for c, key in zip(view.entity_columns, rows.keys, strict=True)
    ]
    ts = quote(rows.ts)
    keys_ts = ", ".join([*(k for _, k in pairs), ts])
    on = [
        *(f"e.{ek} = {alias}_k.{k}" for ek, k in pairs),
        f"e.{quote(event_col)} >= {alias}_k.{ts}",
    ]
    created = [rows.created] if rows.created else []
    wide = list(dict.fromkeys([*rows.keys, rows.ts, *created, *rows.features.values()]))
    pairs_of_view = ", ".join([*(f"{ek} AS {k}" for ek, k in pairs), f"{at} AS {ts}"])
    same = [f"v.{k} = m.{k}" for _, k in pairs]
    order = tie_order(rows.ts, rows.created, list(rows.features.values()))
    back = [*(f"{alias}.{k} = e.{ek}" for ek, k in pairs), f"{alias}.{ts} = e.{at}"]
    micros = int(ttl.total_seconds() * 1_000_000) if ttl else None
    return _ViewSql(
        narrow=f"{alias}_k AS (SELECT {keys_ts} FROM {rows.scan} WHERE {rows.where})",
        matched=f"{alias}_k.{ts} AS {at}",
        asof=f"ASOF LEFT JOIN {alias}_k ON {' AND '.join(on)}",
        chosen=(
            f"{alias} AS (SELECT {', '.join('v.' + quote(c) for c in wide)} FROM {rows.scan} v "
            f"SEMI JOIN (SELECT DISTINCT {pairs_of_view} FROM matched WHERE {at} IS NOT NULL) m "
            f"ON {' AND '.join([*same, f'v.{ts} = m.{ts}'])} WHERE {rows.where} "
            f"QUALIFY row_number() OVER (PARTITION BY {keys_ts} ORDER BY {order}) = 1)"
        ),
        join=f"LEFT JOIN {alias} ON {' AND '.join(back)}",
        fresh=(
            f"e.{at} >= e.{quote(event_col)} - INTERVAL '{micros} microseconds'"
            if micros is not None
            else "TRUE"
        ),
    )


def asof_sql(
    views: list[FeatureView],
    refs: list[str],
    repo_path: Any,
    event_col: str,
    entity_columns: list[str],
    first: pd.Timestamp,
    last: pd.Timestamp,
    full_names: bool,
) -> str:
    """One query, in two steps per view.

    1. ``ASOF LEFT JOIN`` the entity rows with the view's keys and event times only: the
       latest event time at or before each entity row's. Narrow rows keep the join's sorts
       cheap, and Parquet reads only those columns.
    2. The feature values of the matched (key, time) pairs: the view's rows with those
       pairs (a semi join, about one row per entity row), one per pair by
       :func:`tie_order`, joined back on key and time. A match older than the view's TTL
       gives nulls (the latest row is too old, so is every earlier one).

    Ordering a whole 10M-row table by key, time and every feature would cost as much as
    the join; the tie rule only ever orders the rows of matched pairs.
    """
    parts: list[_ViewSql] = []
    selects = [f"e.{quote(c)}" for c in entity_columns]
    for i, view in enumerate(views):
        prefix = view.projection.name_to_use()
        wanted = [ref.split(":", 1)[1] for ref in refs if ref.startswith(f"{prefix}:")]
        if not wanted:
            continue
        ttl: timedelta | None = view.ttl or None
        start = (first - ttl).to_pydatetime() if ttl else None
        rows = _view_rows(view, repo_path, start, last.to_pydatetime())
        part = _view_sql(i, view, rows, event_col, ttl)
        parts.append(part)
        base = view.projection.name_alias or view.name
        for name in wanted:
            value = f"CASE WHEN {part.fresh} THEN v{i}.{quote(rows.features[name])} END"
            selects.append(f"{value} AS {quote(f'{base}__{name}' if full_names else name)}")
    if not parts:
        return f"SELECT {', '.join(selects)} FROM entity_rows e ORDER BY e.{quote(ROW)}"
    matched = ", ".join(p.matched for p in parts)
    ctes = [
        *(p.narrow for p in parts),
        f"matched AS (SELECT e.*, {matched} FROM entity_rows e {' '.join(p.asof for p in parts)})",
        *(p.chosen for p in parts),
    ]
    return (
        f"WITH {', '.join(ctes)} SELECT {', '.join(selects)} FROM matched e "
        f"{' '.join(p.join for p in parts)} ORDER BY e.{quote(ROW)}"
    )
