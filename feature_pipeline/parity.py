"""Online/offline parity: what serving reads equals what training would have read.

For a sample of cards and merchants, the vector of the feature service read from Redis
(``get_online_features``) is compared value for value with the vector of
``get_historical_features`` as of the materialization time, request-time features
included (both run the same on-demand function over the same request data).

The sample only holds entities with a row within each view's TTL before ``as_of``: the
offline store gives nulls past a view's TTL, while Redis keeps a key's last value until it
is overwritten, so such entities are not comparable (the staleness they represent is
measured separately, as feature age).

``python -m feature_pipeline.parity`` (``make parity``) prints the result as JSON, each
difference on stderr, and exits with 1 when there is any.
"""

from __future__ import annotations

import logging
import math
import random
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore, FeatureView

log = logging.getLogger(__name__)

SERVICE = "fraud_detection_v1"
MAX_REPORTED = 50
"""Differences listed in the result (all are counted)."""


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def materialized_until(store: FeatureStore, service: FeatureService) -> datetime:
    """The instant up to which every view of the service has been materialized."""
    views = _service_views(store, service)
    ends = [v.most_recent_end_time for v in views]
    if not ends or any(end is None for end in ends):
        never = [v.name for v, end in zip(views, ends, strict=True) if end is None]
        raise ValueError(f"not materialized yet: {never}")
    return min(_utc(end) for end in ends if end is not None)


def _service_views(store: FeatureStore, service: FeatureService) -> list[FeatureView]:
    names = {p.name for p in service.feature_view_projections}
    return [v for v in store.list_feature_views() if v.name in names]


def keys_with_rows(
    store: FeatureStore,
    view: FeatureView,
    start: datetime,
    end: datetime,
    s3: S3Settings | None = None,
) -> set[Any]:
    """Entity keys of ``view`` that have a row with ``start <= event time <= end``."""
    import pyarrow.dataset as ds

    from fraud_platform.feast_repo import file_source
    from fraud_platform.s3 import arrow_filesystem

    s3 = s3 or S3Settings()
    source = file_source(view)
    reverse = {v: k for k, v in (source.field_mapping or {}).items()}
    (join_key,) = [store.get_entity(name).join_key for name in view.entities]
    key_column = reverse.get(join_key, join_key)
    ts_column = reverse.get(source.timestamp_field, source.timestamp_field)
    dataset = ds.dataset(
        source.path.removeprefix("s3://"),
        filesystem=arrow_filesystem(s3, source.s3_endpoint_override or None),
        format="parquet",
        partitioning="hive",
    )
    ts_type = dataset.schema.field(ts_column).type

    def bound(value: datetime):
        import pyarrow as pa

        return pa.scalar(value if ts_type.tz else value.replace(tzinfo=None), type=ts_type)

    condition = (ds.field(ts_column) >= bound(start)) & (ds.field(ts_column) <= bound(end))
    if "event_date" in dataset.schema.names:
        condition &= (ds.field("event_date") >= start.date().isoformat()) & (
            ds.field("event_date") <= end.date().isoformat()
        )
    keys = dataset.to_table(columns=[key_column], filter=condition)[key_column]
    return set(keys.drop_null().unique().to_pylist())


def request_rows(entities: list[dict[str, Any]], as_of: datetime) -> list[dict[str, Any]]:
    """Deterministic request data for each entity row: an amount, a place (missing for
    every fifth row, to cover the null path) and the request time."""
    rows = []
    for i, entity in enumerate(entities):
        located = i % 5 != 4
        rows.append(
            {
                **entity,
                "amount": round(5.0 + 37.3 * (i % 17), 2),
                "latitude": 40.0 + 0.731 * (i % 11) if located else None,
                "longitude": -3.0 + 1.37 * (i % 13) if located else None,
                "transaction_timestamp": as_of,
            }
        )
    return rows


def _null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def same_value(online: Any, offline: Any) -> bool:
    """Equal values, with None and NaN both meaning null and ints equal to equal floats."""
    if _null(online) or _null(offline):
        return _null(online) and _null(offline)
    if isinstance(online, int | float) and isinstance(offline, int | float):
        return float(online) == float(offline)
    if hasattr(offline, "item"):
        return online == offline.item()
    return online == offline


def check_parity(
    sample_size: int = 100,
    as_of: datetime | None = None,
    *,
    store: FeatureStore | None = None,
    service_name: str = SERVICE,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare online and offline vectors of the feature service for sampled entities.

    Args:
        sample_size: Entity rows to compare (fewer if fewer entities qualify).
        as_of: The instant to compare at; the end of the last materialization common to
            the service's views by default.
        store: The feature store; :func:`feature_pipeline.feature_store.open_store` by
            default.
        service_name: The feature service to compare.
        seed: Seed of the sample.

    Returns:
        JSON-safe result: ``ok``, the instant, rows and features compared, the names of
        the differing features and the first differences (entity, feature, both values).
    """
    from feature_pipeline.feature_store import open_store

    started = time.perf_counter()
    store = store or open_store()
    service = store.get_feature_service(service_name)
    as_of = (_utc(as_of) if as_of else materialized_until(store, service)).replace(microsecond=0)
    entities, join_keys = _sampled_entities(store, service, as_of, sample_size, seed)
    count = len(entities)
    rows = request_rows(entities, as_of)
    online = store.get_online_features(features=service, entity_rows=rows).to_dict()
    offline_rows = _offline_vectors(store, service, rows, as_of, join_keys)
    features = [f.name for p in service.feature_view_projections for f in p.features]
    differences, differing = _differences(online, offline_rows, join_keys, features, count)
    all_null = [f for f in features if all(_null(v) for v in online[f][:count])]
    duration = time.perf_counter() - started
    log.info(
        "parity %s as of %s: %d rows x %d features, %d differences in %.1fs",
        service_name,
        as_of,
        count,
        len(features),
        len(differences),
        duration,
    )
    return {
        "ok": not differences,
        "service": service_name,
        "as_of": as_of.isoformat(),
        "rows_compared": count,
        "features_compared": len(features),
        "differing_features": sorted(differing),
        # Null on both sides in every row: compared, but proving little.
        "all_null_features": all_null,
        "differences_count": len(differences),
        "differences": [_json_safe(d) for d in differences[:MAX_REPORTED]],
        "duration_s": round(duration, 2),
    }


def _sampled_entities(
    store: FeatureStore, service: FeatureService, as_of: datetime, sample_size: int, seed: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Entity rows to compare and their join keys: per join key, a sample of the entities
    that have rows within every view's TTL before ``as_of``."""
    by_key: dict[str, set[Any]] = {}
    for view in _service_views(store, service):
        (join_key,) = [store.get_entity(name).join_key for name in view.entities]
        start = as_of - view.ttl if view.ttl else datetime(1970, 1, 1, tzinfo=UTC)
        keys = keys_with_rows(store, view, start, as_of)
        seen = by_key.get(join_key)
        by_key[join_key] = keys if seen is None else seen & keys
    rng = random.Random(seed)
    samples = {
        key: rng.sample(sorted(values), min(sample_size, len(values)))
        for key, values in by_key.items()
    }
    if not samples or not all(samples.values()):
        empty = [key for key, values in samples.items() if not values]
        raise ValueError(f"no {empty} with rows within the TTL before {as_of}")
    # Every sampled entity appears once; the shorter samples repeat to fill the rows.
    count = max(len(values) for values in samples.values())
    entities = [
        {key: values[i % len(values)] for key, values in samples.items()} for i in range(count)
    ]
    return entities, list(samples)


def _offline_vectors(
    store: FeatureStore,
    service: FeatureService,
    rows: list[dict[str, Any]],
    as_of: datetime,
    join_keys: list[str],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The service's vectors from the offline store for the same request rows, by their
    join key values."""
    import pandas as pd

    entity_df = pd.DataFrame(rows)
    entity_df["event_timestamp"] = pd.Timestamp(as_of)
    entity_df["transaction_timestamp"] = pd.to_datetime(
        entity_df["transaction_timestamp"], utc=True
    )
    # One call: the offline store returns every entity row, repeated entities included.
    offline = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    return {tuple(row[k] for k in join_keys): row for row in offline.to_dict("records")}


def _differences(
    online: dict[str, list[Any]],
    offline_rows: dict[tuple[Any, ...], dict[str, Any]],
    join_keys: list[str],
    features: list[str],
    count: int,
) -> tuple[list[dict[str, Any]], set[str]]:
    """Each differing (row, feature), a row missing offline counting as one; and the names
    of the differing features."""
    differences: list[dict[str, Any]] = []
    differing: set[str] = set()
    for i in range(count):
        ids = tuple(online[k][i] for k in join_keys)
        entity = dict(zip(join_keys, ids, strict=True))
        expected = offline_rows.get(ids)
        if expected is None:
            differing.add("<row missing offline>")
            differences.append({**entity, "feature": None, "online": "row", "offline": None})
            continue
        for feature in features:
            if not same_value(online[feature][i], expected.get(feature)):
                differing.add(feature)
                differences.append(
                    {
                        **entity,
                        "feature": feature,
                        "online": online[feature][i],
                        "offline": expected.get(feature),
                    }
                )
    return differences, differing


def _json_safe(record: dict[str, Any]) -> dict[str, Any]:
    def safe(value: Any) -> Any:
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, datetime | timedelta):
            return str(value)
        return value

    return {k: safe(v) for k, v in record.items()}
