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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, cast

from fraud_platform.event_features import card_values, merchant_values
from fraud_platform.event_state import TransactionEvent, card_command, merchant_command
from fraud_platform.feast_redis import clean, decode_value, key_function, timestamp_seconds
from fraud_platform.resp import encode

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.on_demand_feature_view import OnDemandFeatureView

FULL_NAME_SEPARATOR = "__"
"""``view__feature``: the names ``get_historical_features(..., full_feature_names=True)``
gives, which training stores as the model's feature order."""


def full_name(view: str, feature: str) -> str:
    """``view__feature``."""
    return f"{view}{FULL_NAME_SEPARATOR}{feature}"


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
    # The default is a placeholder (bytes() of a str fails): resolve() always passes one.
    key_of: Callable[[str], bytes] = field(
        compare=False, repr=False, default=cast("Callable[[str], bytes]", bytes)
    )
    """The Redis hash of an entity value (see :func:`key_function`)."""

    if TYPE_CHECKING:  # per instance, set by __post_init__ (ClassVar: not dataclass fields)
        _head: ClassVar[bytes]
        _tail: ClassVar[bytes]

    def __post_init__(self) -> None:
        fields = encode("HMGET", "key", *self.fields)
        # Everything but the key is the same for every entity value: encoded once.
        object.__setattr__(self, "_head", b"*%d\r\n$5\r\nHMGET\r\n" % (len(self.fields) + 2))
        object.__setattr__(self, "_tail", fields[fields.index(b"$3\r\nkey\r\n") + 9 :])

    def command(self, value: str) -> bytes:
        """The HMGET of one entity value, in RESP."""
        key = self.key_of(value)
        return b"%s$%d\r\n%s\r\n%s" % (self._head, len(key), key, self._tail)


EVENT_STATES = {"card_id": card_values, "merchant_id": merchant_values}
"""Join key -> the features of its event state's read (``fraud_platform.event_features``)."""


@dataclass(frozen=True)
class EventViewPlan:
    """A view tagged ``online: events``: served from the entity's event state, its windows
    computed at the transaction's instant, not read from a stored row."""

    name: str
    join_key: str
    features: tuple[str, ...]
    state_names: tuple[str, ...]
    """Each feature's name in the event state's values (the batch source's column)."""

    def command(self, flags: str, event: TransactionEvent) -> bytes:
        if self.join_key == "card_id":
            return card_command(flags, event)
        return merchant_command(flags, event.merchant_id, event.at_us, event.transaction_id)

    def values(self, reply: Sequence[Any]) -> dict[str, Any]:
        return EVENT_STATES[self.join_key](reply)


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
            transformation = self.view.feature_transformation
            if transformation is None:
                raise ValueError(f"{self.name}: a python-mode view without a transformation")
            return transformation.udf(inputs)
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

    def __init__(
        self,
        project: str,
        service: str,
        entities: tuple[EntityPlan, ...],
        on_demand: tuple[OnDemandPlan, ...],
        feature_names: tuple[str, ...],
        request_fields: tuple[str, ...],
        event_views: tuple[EventViewPlan, ...] = (),
    ) -> None:
        self.project = project
        self.service = service
        self.entities = entities
        self.event_views = event_views
        self.on_demand = on_demand
        self.feature_names = feature_names
        """Full names of every feature of the service, in the service's order."""
        self.request_fields = request_fields
        """Fields a request must supply for the on-demand views."""
        self.join_keys = tuple(entity.join_key for entity in entities)
        self.stored_views = (
            *(view.name for e in entities for view in e.views),
            *(view.name for view in event_views),
        )
        self.views_by_join_key: dict[str, tuple[str, ...]] = {}
        for join_key, name in [(e.join_key, v.name) for e in entities for v in e.views] + [
            (v.join_key, v.name) for v in event_views
        ]:
            self.views_by_join_key[join_key] = (*self.views_by_join_key.get(join_key, ()), name)
        # Every name decode() fills, joined once here, not per batch.
        self._entity_columns = tuple(
            tuple(full_name(view.name, f) for view in entity.views for f in view.features)
            for entity in entities
        )
        self._event_columns = tuple(
            tuple(
                (full_name(view.name, f), state)
                for f, state in zip(view.features, view.state_names, strict=True)
            )
            for view in event_views
        )
        self._on_demand_columns = tuple(
            (
                tuple((name.split(FULL_NAME_SEPARATOR, 1)[1], name) for name in odfv.inputs),
                tuple((f, full_name(odfv.name, f)) for f in odfv.features),
            )
            for odfv in on_demand
        )

    @classmethod
    def resolve(cls, store: FeatureStore, service_name: str) -> ServingPlan:
        """Resolve ``service_name`` from the store's registry.

        Raises:
            ValueError: the service reads a view keyed by several entities, or by a
                non-string key, which this plan does not support.
        """
        stored, on_demand, names = _read_features(store, service_name)
        entities, event_views = _stored_plans(store, stored)
        request_fields = tuple(dict.fromkeys(f for p in on_demand for f in p.request_fields))
        return cls(
            store.project,
            service_name,
            entities,
            tuple(on_demand),
            tuple(names),
            request_fields,
            tuple(event_views),
        )

    def pipeline(self, events: Sequence[TransactionEvent], flags: str = "ra") -> tuple[bytes, int]:
        """One RESP payload for a batch of transactions, and how many commands it holds:
        the HMGETs of the stored views, entity after entity, row after row, then each event
        view's script call per row (``flags``: "ra" reads the state before each transaction
        and applies it, "r" only reads), in the order :meth:`decode` expects."""
        payload = b"".join(
            [
                entity.command(getattr(event, entity.join_key))
                for entity in self.entities
                for event in events
            ]
            + [view.command(flags, event) for view in self.event_views for event in events]
        )
        return payload, (len(self.entities) + len(self.event_views)) * len(events)

    def decode(
        self,
        replies: Sequence[Sequence[Any]],
        events: Sequence[TransactionEvent],
        request: dict[str, list[Any]],
        flags: str = "ra",
    ) -> OnlineFeatures:
        """The features of ``events`` from the replies, on-demand ones included.

        Args:
            replies: One reply per command of :meth:`pipeline`, in its order.
            events: The transactions the pipeline was built for.
            request: Request field -> one value per row, for the on-demand views.
            flags: The flags the pipeline was built with.
        """
        rows = len(events)
        values: dict[str, list[Any]] = {}
        event_times: dict[str, list[float | None]] = {}
        for position, (entity, names) in enumerate(
            zip(self.entities, self._entity_columns, strict=True)
        ):
            block = replies[position * rows : (position + 1) * rows]
            for column, name in enumerate(names):
                values[name] = [decode_value(reply[column]) for reply in block]
            for column, view in enumerate(entity.views, start=len(names)):
                event_times[view.name] = [timestamp_seconds(reply[column]) for reply in block]
        applied = "a" in flags
        for position, (event_view, columns) in enumerate(
            zip(self.event_views, self._event_columns, strict=True), start=len(self.entities)
        ):
            block = replies[position * rows : (position + 1) * rows]
            states = [event_view.values(reply[:-1] if applied else reply) for reply in block]
            for name, state_name in columns:
                values[name] = [state[state_name] for state in states]
            # The state is evaluated at the transaction's instant: its age is 0 wherever
            # the entity has events in the state.
            event_times[event_view.name] = [
                event.at_us / 1e6 if _has_events(state) else None
                for event, state in zip(events, states, strict=True)
            ]
        for odfv, (inputs_named, outputs_named) in zip(
            self.on_demand, self._on_demand_columns, strict=True
        ):
            inputs = {short: values[name] for short, name in inputs_named}
            inputs.update({field: request[field] for field in odfv.request_fields})
            output = odfv.transform(inputs)
            for feature, name in outputs_named:
                values[name] = [clean(v) for v in output[feature]]
        return OnlineFeatures(values=values, event_times=event_times)


def _has_events(state: dict[str, Any]) -> bool:
    return bool(state.get("txn_count_30d") or state.get("fraud_count_30d"))


def _read_features(
    store: FeatureStore, service_name: str
) -> tuple[dict[str, list[str]], list[OnDemandPlan], list[str]]:
    """The stored features the service reads, view by view (with the on-demand views'
    inputs, even those the service does not serve), its on-demand plans, and its feature
    names in the service's order."""
    service = store.get_feature_service(service_name)
    odfv_names = {v.name for v in store.list_on_demand_feature_views()}
    stored: dict[str, list[str]] = {}
    on_demand: list[OnDemandPlan] = []
    names: list[str] = []
    for projection in service.feature_view_projections:
        view_name = projection.name_to_use()
        features = tuple(f.name for f in projection.features)
        names += [full_name(view_name, f) for f in features]
        if projection.name in odfv_names:
            on_demand.append(
                _on_demand_plan(
                    store.get_on_demand_feature_view(projection.name), view_name, features
                )
            )
        else:
            stored.setdefault(projection.name, []).extend(features)
    for odfv in on_demand:
        for name in odfv.inputs:
            view_name, feature = name.split(FULL_NAME_SEPARATOR, 1)
            if feature not in stored.setdefault(view_name, []):
                stored[view_name].append(feature)
    return stored, on_demand, names


def _stored_plans(
    store: FeatureStore, stored: dict[str, list[str]]
) -> tuple[tuple[EntityPlan, ...], list[EventViewPlan]]:
    """The plans of the stored views: batch views grouped by their entity, event-fed
    views (tagged ``online: events``) apart.

    Raises:
        ValueError: a view keyed by several entities, or by a non-string key.
    """
    from feast.infra.online_stores.helpers import _mmh3

    by_entity: dict[str, list[ViewPlan]] = {}
    event_views: list[EventViewPlan] = []
    for view_name, view_features in stored.items():
        view = store.get_feature_view(view_name)
        if len(view.entities) != 1:
            raise ValueError(f"{view.name}: only single-entity views are served")
        entity = store.get_entity(view.entities[0])
        if entity.value_type.name != "STRING":
            raise ValueError(f"{view.name}: entity {entity.name} is not a string key")
        if view.tags.get("online") == "events":
            event_views.append(_event_view_plan(view, entity.join_key, view_features))
            continue
        by_entity.setdefault(entity.join_key, []).append(
            ViewPlan(view.name, tuple(dict.fromkeys(view_features)))
        )
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
    return entities, event_views


def _event_view_plan(view: Any, join_key: str, features: list[str]) -> EventViewPlan:
    """The plan of an event-fed view; its features are named like its batch source's
    columns in the event state's values (the source may rename them, see
    ``feature_repo/data_sources.py``)."""
    if join_key not in EVENT_STATES:
        raise ValueError(f"{view.name}: no event state is kept for {join_key}")
    renamed = {new: old for old, new in (view.batch_source.field_mapping or {}).items()}
    return EventViewPlan(
        view.name,
        join_key,
        tuple(dict.fromkeys(features)),
        tuple(renamed.get(f, f) for f in dict.fromkeys(features)),
    )


def _on_demand_plan(
    view: OnDemandFeatureView, name: str, features: tuple[str, ...]
) -> OnDemandPlan:
    inputs = tuple(
        full_name(projection.name, feature.name)
        for projection in view.source_feature_view_projections.values()
        for feature in projection.features
    )
    request_fields = tuple(
        field.name for source in view.source_request_sources.values() for field in source.schema
    )
    return OnDemandPlan(
        name=name, view=view, inputs=inputs, request_fields=request_fields, features=features
    )
