"""Online features of a feature service for a batch of transactions, in one Redis round trip.

``FeatureStore.get_online_features`` resolves the service against the registry, builds
protobuf entity keys, groups views and converts every value through several layers on
*every call*: about a millisecond of Python before the first byte goes to Redis. Here that
work is done once: :class:`ServingPlan` resolves the service at start-up into, per entity,
the Redis hash key layout and the hash fields of all its views (Feast's own
``_redis_key`` and ``_mmh3``, so the keys and fields are exactly those Feast writes and
reads). A batch of transactions is then one pipeline of ``HMGET``s (one per entity key, all
views of the entity at once), the values are parsed with Feast's protobuf ``Value``, and the
on-demand features run through the view's own ``transform_dict`` from the registry, the
same function ``get_historical_features`` ran for training. ``tests/inference`` checks the
result against ``get_online_features`` value for value.

Like Feast's Redis online store, values are returned whatever their age (there is no TTL
check on the online read); the age of each view's row is returned beside them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.on_demand_feature_view import OnDemandFeatureView

FULL_NAME_SEPARATOR = "__"
"""``view__feature``: the names ``get_historical_features(..., full_feature_names=True)``
gives, which training stores as the model's feature order."""


@dataclass(frozen=True)
class ViewPlan:
    """One feature view of the service: which of its features are served."""

    name: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class EntityPlan:
    """Everything read from one Redis hash: the views keyed by one entity."""

    join_key: str
    views: tuple[ViewPlan, ...]
    fields: tuple[bytes | str, ...]
    """HMGET fields: every served feature of every view (murmur3 of ``view:feature``),
    then one ``_ts:<view>`` per view."""


@dataclass(frozen=True)
class OnDemandPlan:
    """An on-demand view: its inputs (stored features and request fields) and outputs."""

    name: str
    view: OnDemandFeatureView
    inputs: tuple[str, ...]
    """Full names of the stored features it reads."""
    request_fields: tuple[str, ...]
    features: tuple[str, ...]


@dataclass
class OnlineFeatures:
    """Features of a batch of rows, column-wise.

    Attributes:
        values: Full feature name -> one value per row (None where missing).
        event_times: View -> the epoch seconds of each row's stored event time (None where
            the entity has no row in that view).
    """

    values: dict[str, list[Any]]
    event_times: dict[str, list[float | None]]

    def row_found(self, view: str, row: int) -> bool:
        return self.event_times[view][row] is not None


class ServingPlan:
    """A feature service resolved once against the registry, ready to read from Redis."""

    def __init__(self, project: str, service: str, entities: tuple[EntityPlan, ...],
                 on_demand: tuple[OnDemandPlan, ...], feature_names: tuple[str, ...],
                 request_fields: tuple[str, ...]) -> None:
        self.project = project
        self.service = service
        self.entities = entities
        self.on_demand = on_demand
        self.feature_names = feature_names
        """Full names of every feature of the service, in the service's order."""
        self.request_fields = request_fields
        """Fields a request must supply for the on-demand views."""
        self.join_keys = tuple(entity.join_key for entity in entities)
        self.stored_views = tuple(view.name for e in entities for view in e.views)

    @classmethod
    def resolve(cls, store: FeatureStore, service_name: str) -> ServingPlan:
        """Resolve ``service_name`` from the store's registry.

        Raises:
            ValueError: the service reads a view keyed by several entities, or by a
                non-string key, which this plan does not support.
        """
        from feast.infra.online_stores.helpers import _mmh3

        service = store.get_feature_service(service_name)
        odfv_names = {v.name for v in store.list_on_demand_feature_views()}
        stored: dict[str, list[str]] = {}
        on_demand: list[OnDemandPlan] = []
        names: list[str] = []
        for projection in service.feature_view_projections:
            view_name = projection.name_to_use()
            features = tuple(f.name for f in projection.features)
            names += [f"{view_name}{FULL_NAME_SEPARATOR}{f}" for f in features]
            if projection.name in odfv_names:
                on_demand.append(_on_demand_plan(store.get_on_demand_feature_view(
                    projection.name), view_name, features))
            else:
                stored.setdefault(projection.name, []).extend(features)
        # The on-demand views' inputs are read even where the service does not serve them.
        for odfv in on_demand:
            for name in odfv.inputs:
                view_name, feature = name.split(FULL_NAME_SEPARATOR, 1)
                if feature not in stored.setdefault(view_name, []):
                    stored[view_name].append(feature)
        by_entity: dict[str, list[ViewPlan]] = {}
        for view_name, features in stored.items():
            view = store.get_feature_view(view_name)
            if len(view.entities) != 1:
                raise ValueError(f"{view.name}: only single-entity views are served")
            entity = store.get_entity(view.entities[0])
            if entity.value_type.name != "STRING":
                raise ValueError(f"{view.name}: entity {entity.name} is not a string key")
            by_entity.setdefault(entity.join_key, []).append(
                ViewPlan(view.name, tuple(dict.fromkeys(features))))
        entities = tuple(
            EntityPlan(
                join_key=join_key,
                views=tuple(views),
                fields=tuple(
                    [_mmh3(f"{v.name}:{f}") for v in views for f in v.features]
                    + [f"_ts:{v.name}" for v in views]
                ),
            )
            for join_key, views in by_entity.items()
        )
        request_fields = tuple(dict.fromkeys(f for p in on_demand for f in p.request_fields))
        return cls(store.project, service_name, entities, tuple(on_demand), tuple(names),
                   request_fields)

    def redis_key(self, join_key: str, value: str) -> bytes:
        """The Redis hash of one entity, as Feast's Redis online store names it."""
        from feast.infra.online_stores.helpers import _redis_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        key = EntityKey(join_keys=[join_key], entity_values=[Value(string_val=value)])
        return _redis_key(self.project, key, entity_key_serialization_version=3)

    def commands(self, entity_rows: Sequence[dict[str, str]]) -> list[tuple[bytes, tuple]]:
        """The ``(key, fields)`` of every HMGET for the rows: entity after entity, row
        after row (the order :meth:`decode` expects)."""
        return [
            (self.redis_key(entity.join_key, row[entity.join_key]), entity.fields)
            for entity in self.entities
            for row in entity_rows
        ]

    def decode(self, replies: Sequence[Sequence[bytes | None]], rows: int,
               request: dict[str, list[Any]]) -> OnlineFeatures:
        """The features of ``rows`` rows from the HMGET replies, on-demand ones included.

        Args:
            replies: One reply per command of :meth:`commands`, in its order.
            rows: How many entity rows the commands were built for.
            request: Request field -> one value per row, for the on-demand views.
        """
        values: dict[str, list[Any]] = {}
        event_times: dict[str, list[float | None]] = {}
        for position, entity in enumerate(self.entities):
            block = replies[position * rows: (position + 1) * rows]
            column = 0
            for view in entity.views:
                for feature in view.features:
                    values[f"{view.name}{FULL_NAME_SEPARATOR}{feature}"] = [
                        _value(reply[column]) for reply in block
                    ]
                    column += 1
            for view in entity.views:
                event_times[view.name] = [_timestamp(reply[column]) for reply in block]
                column += 1
        for odfv in self.on_demand:
            inputs = {name.split(FULL_NAME_SEPARATOR, 1)[1]: values[name]
                      for name in odfv.inputs}
            inputs.update({field: request[field] for field in odfv.request_fields})
            output = odfv.view.transform_dict(inputs)
            for feature in odfv.features:
                values[f"{odfv.name}{FULL_NAME_SEPARATOR}{feature}"] = [
                    _clean(v) for v in output[feature]
                ]
        return OnlineFeatures(values=values, event_times=event_times)


def _on_demand_plan(view: OnDemandFeatureView, name: str, features: tuple[str, ...]
                    ) -> OnDemandPlan:
    inputs = tuple(
        f"{projection.name}{FULL_NAME_SEPARATOR}{feature.name}"
        for projection in view.source_feature_view_projections.values()
        for feature in projection.features
    )
    request_fields = tuple(
        field.name for source in view.source_request_sources.values()
        for field in source.schema
    )
    return OnDemandPlan(name=name, view=view, inputs=inputs, request_fields=request_fields,
                        features=features)


def _value(data: bytes | None) -> Any:
    """A stored ``feast.types.Value`` as a Python value; None for a missing or null one."""
    if not data:
        return None
    from feast.protos.feast.types.Value_pb2 import Value

    proto = Value.FromString(data)
    kind = proto.WhichOneof("val")
    return None if kind is None or kind == "null_val" else getattr(proto, kind)


def _timestamp(data: bytes | None) -> float | None:
    """A stored ``google.protobuf.Timestamp`` as epoch seconds."""
    if not data:
        return None
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp.FromString(data)
    return stamp.seconds + stamp.nanos / 1e9


def _clean(value: Any) -> Any:
    """NaN from an on-demand function is a missing value, as Feast returns it online."""
    return None if isinstance(value, float) and math.isnan(value) else value
