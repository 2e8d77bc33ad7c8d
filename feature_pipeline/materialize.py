"""Materialization: the latest feature row of every key, from the S3 tables into Redis.

Steps per feature view: read the interval's rows from Parquet with Arrow (partition
pruning on ``event_date``), keep the latest row per key (event time, then ``created``,
the order Feast's offline store means to apply), and hand them to the bulk writer
(:mod:`feature_pipeline.online_writer`), which writes exactly the layout Feast's Redis
online store reads and lets the newest event win atomically per key.

The registry is updated as ``FeatureStore.materialize`` does it (the view goes to
``MATERIALIZING``, then ``apply_materialization`` records the interval and makes it
``AVAILABLE_ONLINE``), so ``feast materialize-incremental`` continues where this left off.
A run writes only what it owns: each registry write starts from the view as the registry
holds it at that moment and changes only its state (or appends the run's interval), so a
``feast apply`` made while a long run reads and writes is never reverted by it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from feature_pipeline.materialize_error import MaterializationError
from feature_pipeline.online_writer import DEFAULT_BATCH_ROWS, RedisFeatureWriter, event_micros
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa
    from feast import FeatureStore, FeatureView

__all__ = [
    "MaterializationError",
    "RedisFeatureWriter",
    "latest_rows",
    "materialize",
    "read_latest",
]

log = logging.getLogger(__name__)

DEFAULT_OVERLAP = timedelta(minutes=15)


def _aware(value: datetime) -> datetime:
    """``value`` in UTC as a plain ``datetime`` (naive means UTC). Airflow passes
    pendulum's DateTime, whose arithmetic drops a ``datetime.timezone`` tzinfo."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(aware.date(), aware.timetz())


def read_latest(
    writer: RedisFeatureWriter, start: datetime, end: datetime, s3: S3Settings | None = None
) -> tuple[pa.Table, int]:
    """The latest row per key with ``start <= event time <= end`` (bounds included, as in
    Feast's file offline store), with ``created`` breaking ties.

    Returns:
        The rows (one per key) and the number of rows read.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fraud_platform.feast_repo import file_source
    from fraud_platform.s3 import arrow_filesystem

    s3 = s3 or S3Settings()
    source = file_source(writer.view)
    filesystem = arrow_filesystem(s3, source.s3_endpoint_override or None)
    dataset = ds.dataset(
        source.path.removeprefix("s3://"),
        filesystem=filesystem,
        format="parquet",
        partitioning="hive",
    )
    ts_type = dataset.schema.field(writer.timestamp_column).type
    start, end = _aware(start), _aware(end)

    def bound(value: datetime) -> pa.Scalar:
        return pa.scalar(value if ts_type.tz else value.replace(tzinfo=None), type=ts_type)

    when = ds.field(writer.timestamp_column)
    condition = (when >= bound(start)) & (when <= bound(end))
    if "event_date" in dataset.schema.names and "event_date" not in writer.columns:
        # Hive partitions of the feature tables: read only the days of the interval.
        condition &= (ds.field("event_date") >= start.date().isoformat()) & (
            ds.field("event_date") <= end.date().isoformat()
        )
    table = dataset.to_table(columns=writer.columns, filter=condition)
    latest = latest_rows(table, writer.key_column, writer.timestamp_column, writer.created_column)
    return latest, table.num_rows


def latest_rows(table: pa.Table, key: str, timestamp: str, created: str | None = None) -> pa.Table:
    """One row per key: the latest event time, then the latest ``created`` (as Feast's
    offline store intends: a rerun's row replaces the one it corrects). Rows without a
    key are dropped; the order of the input does not matter."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = table.filter(pc.is_valid(table[key]))
    if not table.num_rows:
        return table
    encoded = pc.dictionary_encode(table[key].combine_chunks())
    if len(encoded.dictionary) == table.num_rows:
        return table  # one row per key already (an hourly run, mostly)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    event = event_micros(table[timestamp])
    # A null `created` sorts first (NaT is the smallest int64).
    made = event_micros(table[created]) if created else np.zeros(len(event), np.int64)
    order = np.lexsort((made, event, codes))
    ordered = codes[order]
    last = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
    return table.take(pa.array(order[last]))


# --------------------------------------------------------------------------- registry


def _registered(store: FeatureStore, name: str) -> FeatureView:
    """The view as the registry holds it now (not a copy read at the start of the run)."""
    return store.registry.get_feature_view(name, store.project, allow_cache=False)


def _start_materializing(store: FeatureStore, view: FeatureView) -> Any:
    """Move the view to MATERIALIZING as Feast does; returns the state to restore."""
    from feast import FeatureViewState

    current = _registered(store, view.name)
    state = getattr(current, "state", None)
    if state == FeatureViewState.MATERIALIZING:
        return FeatureViewState.GENERATED
    if state is not None and state != FeatureViewState.STATE_UNSPECIFIED:
        if not state.can_transition_to(FeatureViewState.MATERIALIZING):
            raise MaterializationError(
                f"{view.name} cannot move from {state.name} to MATERIALIZING"
            )
        current.state = FeatureViewState.MATERIALIZING
        store.registry.apply_feature_view(current, store.project, commit=True)
    return state


def _restore_state(store: FeatureStore, view: FeatureView, state: Any) -> None:
    """Put back the state a failed run found, on the view as registered now: whatever a
    ``feast apply`` changed during the run stays."""
    from feast import FeatureViewState

    if state is None or state == FeatureViewState.STATE_UNSPECIFIED:
        return
    current = _registered(store, view.name)
    if getattr(current, "state", None) == FeatureViewState.MATERIALIZING:
        current.state = state
        store.registry.apply_feature_view(current, store.project, commit=True)


def _interval(
    view: FeatureView, end: datetime, start: datetime | None, overlap: timedelta
) -> tuple[datetime, datetime]:
    """The interval to read: ``[start, end]``, or incremental from the last end.

    A view tagged ``snapshot`` (a table rewritten whole, such as the card profiles, whose
    event times are issue dates) is read whole, one TTL back from ``end``, whatever the
    start: only then does a run load every row the snapshot changed.
    """
    end = _aware(end)
    if (view.tags or {}).get("snapshot") == "true" and view.ttl:
        return end - view.ttl, end
    if start is not None:
        return _aware(start), end
    last = view.most_recent_end_time
    if last is not None:
        return _aware(last) - overlap, end
    if view.ttl and view.ttl.total_seconds() > 0:
        # First run: as Feast, go back one TTL; from `end` rather than from now, so that
        # backfilling a past interval reads the data before it.
        return end - view.ttl, end
    return datetime(1970, 1, 1, tzinfo=UTC), end


def materialize(
    end: datetime,
    start: datetime | None = None,
    overlap: timedelta = DEFAULT_OVERLAP,
    *,
    feature_views: Sequence[str] | None = None,
    store: FeatureStore | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> dict[str, Any]:
    """Load the latest feature values up to ``end`` into Redis.

    Args:
        end: Last event time to load (included). Timezone-naive means UTC.
        start: First event time to load. When omitted, each view continues from the end
            of its last materialization minus ``overlap`` (or one TTL before ``end`` the
            first time), like ``feast materialize-incremental``.
        overlap: How far before the last end to re-read, for rows that landed late.
        feature_views: Names of the views to load; all online views by default.
        store: The feature store; :func:`feature_pipeline.feature_store.open_store` by
            default.
        batch_rows: Keys per pipelined batch.

    Returns:
        JSON-safe metadata per view and in total: interval, rows read, keys, keys written
        and skipped (older than what Redis holds), duration and keys per second.
    """
    from feature_pipeline.feature_store import open_store

    started = time.perf_counter()
    store = store or open_store()
    s3 = S3Settings()
    results: dict[str, Any] = {}
    for view in _online_views(store, feature_views):
        view_start, view_end = _interval(view, end, start, overlap)
        if view_start > view_end:
            log.info("%s: nothing to do, %s is after %s", view.name, view_start, view_end)
            continue
        results[view.name] = _materialize_view(store, view, view_start, view_end, s3, batch_rows)
    duration = time.perf_counter() - started
    keys = sum(r["keys"] for r in results.values())
    working = sum(r["duration_s"] for r in results.values())
    return {
        "end": _aware(end).isoformat(),
        "views": results,
        "rows": sum(r["rows"] for r in results.values()),
        "keys": keys,
        "keys_written": sum(r["keys_written"] for r in results.values()),
        "duration_s": round(duration, 3),
        # Over the views' own durations, without opening the store (imports, registry).
        "keys_per_s": round(keys / working) if working > 0 else None,
    }


def _online_views(store: FeatureStore, names: Sequence[str] | None) -> list[FeatureView]:
    """The store's online views, or those of ``names`` (all of which must exist)."""
    views = [v for v in store.list_feature_views() if v.online]
    if names is None:
        return views
    wanted = set(names)
    unknown = wanted - {v.name for v in views}
    if unknown:
        raise MaterializationError(f"no online feature views named {sorted(unknown)}")
    return [v for v in views if v.name in wanted]


def _materialize_view(
    store: FeatureStore,
    view: FeatureView,
    view_start: datetime,
    view_end: datetime,
    s3: S3Settings,
    batch_rows: int,
) -> dict[str, Any]:
    """Load one view's latest rows of ``[view_start, view_end]`` and record the interval
    in the registry; a failure restores the view's previous materialization state."""
    view_started = time.perf_counter()
    writer = RedisFeatureWriter(store, view, batch_rows)
    previous_state = _start_materializing(store, view)
    try:
        latest, rows_read = read_latest(writer, view_start, view_end, s3)
        read_s = time.perf_counter() - view_started
        counts = writer.write(latest)
    except BaseException:
        _restore_state(store, view, previous_state)
        raise
    store.registry.apply_materialization(view, store.project, view_start, view_end)
    duration = time.perf_counter() - view_started
    result = {
        "start": view_start.isoformat(),
        "end": view_end.isoformat(),
        "rows": rows_read,
        "keys": latest.num_rows,
        **counts,
        "read_s": round(read_s, 3),
        "duration_s": round(duration, 3),
        "keys_per_s": round(latest.num_rows / duration) if duration > 0 else None,
    }
    log.info(
        "%s: %d rows, %d keys (%d written, %d older than stored) in %.2fs, %s keys/s",
        view.name,
        rows_read,
        latest.num_rows,
        counts["keys_written"],
        counts["keys_skipped"],
        duration,
        result["keys_per_s"],
    )
    return result
