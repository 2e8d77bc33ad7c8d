"""Online features of a feature service for a batch of transactions, in one Redis round trip.

``FeatureStore.get_online_features`` resolves the service against the registry, builds
protobuf entity keys, groups views and converts every value through several layers on
*every call*: about a millisecond of Python before the first byte goes to Redis. Here that
work is done once: :class:`ServingPlan` resolves the service at start-up into, per entity,
the Redis hash key layout and the hash fields of all its views (Feast's own
``_redis_key`` and ``_mmh3``, so the keys and fields are exactly those Feast writes and
reads), with each HMGET's field list encoded once. A batch of transactions is then one
pipeline of ``HMGET``s (one per entity key, all views of the entity at once), the values
are decoded (:func:`decode_value`), and the on-demand features run through the view's own
``transform_dict`` from the registry, the same function ``get_historical_features`` ran for
training. ``tests/inference`` checks the result against ``get_online_features`` value for
value.

Like Feast's Redis online store, values are returned whatever their age (there is no TTL
check on the online read); the age of each view's row is returned beside them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fraud_platform.resp import encode

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
    key_of: Callable[[str], bytes] = field(compare=False, repr=False, default=bytes)
    """The Redis hash of an entity value (see :func:`key_function`)."""

    def __post_init__(self) -> None:
        fields = encode("HMGET", "key", *self.fields)
        # Everything but the key is the same for every entity value: encoded once.
        object.__setattr__(self, "_head", b"*%d\r\n$5\r\nHMGET\r\n" % (len(self.fields) + 2))
        object.__setattr__(self, "_tail", fields[fields.index(b"$3\r\nkey\r\n") + 9:])

    def command(self, value: str) -> bytes:
        """The HMGET of one entity value, in RESP."""
        key = self.key_of(value)
        return b"%s$%d\r\n%s\r\n%s" % (self._head, len(key), key, self._tail)


@dataclass(frozen=True)
class OnDemandPlan:
    """An on-demand view: its inputs (stored features and request fields) and outputs."""

    name: str
    view: OnDemandFeatureView
    inputs: tuple[str, ...]
    """Full names of the stored features it reads."""
    request_fields: tuple[str, ...]
    features: tuple[str, ...]

    def transform(self, inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """The view's registered transformation over a batch of rows.

        A python-mode batch view's function is called directly: Feast's ``transform_dict``
        wraps the same function in a runtime type check of every input value (typeguard),
        which costs more than the function itself. Other modes go through Feast.
        """
        if self.view.mode == "python" and not self.view.singleton:
            return self.view.feature_transformation.udf(inputs)
        return self.view.transform_dict(inputs)


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
        self.views_by_join_key = {e.join_key: tuple(v.name for v in e.views)
                                  for e in entities}

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
                key_of=key_function(store.project, join_key),
            )
            for join_key, views in by_entity.items()
        )
        request_fields = tuple(dict.fromkeys(f for p in on_demand for f in p.request_fields))
        return cls(store.project, service_name, entities, tuple(on_demand), tuple(names),
                   request_fields)

    def pipeline(self, entity_rows: Sequence[dict[str, str]]) -> tuple[bytes, int]:
        """The HMGETs of the rows, entity after entity, row after row (the order
        :meth:`decode` expects), as one RESP payload; and how many commands it holds."""
        payload = b"".join(entity.command(row[entity.join_key])
                           for entity in self.entities for row in entity_rows)
        return payload, len(self.entities) * len(entity_rows)

    def decode(self, replies: Sequence[Sequence[bytes | None]], rows: int,
               request: dict[str, list[Any]]) -> OnlineFeatures:
        """The features of ``rows`` rows from the HMGET replies, on-demand ones included.

        Args:
            replies: One reply per command of :meth:`pipeline`, in its order.
            rows: How many entity rows the pipeline was built for.
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
                        decode_value(reply[column]) for reply in block
                    ]
                    column += 1
            for view in entity.views:
                event_times[view.name] = [_timestamp(reply[column]) for reply in block]
                column += 1
        for odfv in self.on_demand:
            inputs = {name.split(FULL_NAME_SEPARATOR, 1)[1]: values[name]
                      for name in odfv.inputs}
            inputs.update({field: request[field] for field in odfv.request_fields})
            output = odfv.transform(inputs)
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


def key_function(project: str, join_key: str) -> Callable[[str], bytes]:
    """``value -> Redis hash name`` of a single string join key, as Feast names it.

    Feast's ``_redis_key`` builds an ``EntityKey`` protobuf and serializes it for every
    call (about 20 µs). For one string key the result is a fixed head, the value's length
    (4 bytes, little endian), the value and the project: the head is taken from Feast's
    own output and the layout checked against it here, so a change of Feast's format
    falls back to calling Feast rather than to wrong keys.
    """
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    def feast_key(value: str) -> bytes:
        key = EntityKey(join_keys=[join_key], entity_values=[Value(string_val=value)])
        return _redis_key(project, key, entity_key_serialization_version=3)

    tail = project.encode()
    sample = feast_key("x")
    head = sample[: len(sample) - len(tail) - 5]
    pack = struct.Struct("<I").pack

    def fast_key(value: str) -> bytes:
        data = value.encode()
        return head + pack(len(data)) + data + tail

    checks = ("x", "card_000042", "ü-ß", "a" * 300)
    return fast_key if all(fast_key(v) == feast_key(v) for v in checks) else feast_key


_DOUBLE = struct.Struct("<d").unpack_from
_TAG_DOUBLE, _TAG_INT32, _TAG_INT64 = 0x29, 0x18, 0x20


def decode_value(data: bytes | None) -> Any:
    """A stored ``feast.types.Value`` as a Python value; None for a missing or null one.

    Doubles and integers, the types of every served feature, are read directly from the
    protobuf wire format (a double is its tag and 8 bytes, an integer its tag and a
    varint); anything else is parsed by protobuf. ``tests/unit`` checks both paths
    against protobuf's own parser.
    """
    if not data:
        return None
    tag = data[0]
    if tag == _TAG_DOUBLE and len(data) == 9:
        return _DOUBLE(data, 1)[0]
    if tag in (_TAG_INT64, _TAG_INT32) and len(data) <= 11:
        value = shift = 0
        for byte in data[1:]:
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        return value - (1 << 64) if value >= 1 << 63 else value
    return _proto_value(data)


def _proto_value(data: bytes) -> Any:
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
