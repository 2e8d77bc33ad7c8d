"""Feast's DuckDB offline store, with the point-in-time join done by DuckDB ``ASOF`` joins.

Registered in ``feature_repo/feature_store.yaml`` as the offline store type, so every
``get_historical_features`` (training sets, batch scoring, parity, the notebook) and
Feast's own materialization engine read the silver Parquet tables on S3 through it.

Why a subclass and not Feast's ``duckdb`` store as it ships (0.67):

- **Speed and memory at scale.** Feast joins each view with a range join (key equal,
  feature time between entity time - TTL and entity time) and then keeps the latest row
  per entity row with a window function. Its cost is entity rows x feature rows per key
  inside the TTL: the 30-day merchant view holds hundreds to thousands of rows per
  merchant, so 1M entity rows become 10^8 to 10^9 intermediate rows (measured in
  ``benchmarks/point_in_time.py``). An ``ASOF LEFT JOIN`` keeps one row per entity row
  by construction and costs a sort of each side; joining on keys and times first, then
  fetching the features of the matched rows only, keeps those sorts narrow (the SQL is
  built in :mod:`fraud_platform.asof_sql`).
- **Every entity row back.** A ``LEFT`` join of the entity rows, numbered on the way in
  and returned in their order: no row is dropped, none is collapsed with another that
  shares its keys and time.
- **Ties.** Feast orders rows of equal event time by ``created`` only, so two rows that
  also share ``created`` come back in whatever order the threads read them. Here
  :func:`tie_order` finishes the order (docs/features.md, "Ties in the offline store"),
  the same rule for the point-in-time join and for ``pull_latest`` (materialization).
- **S3 without internet.** Feast reads a ``FileSource`` with ``ibis.read_parquet``, which
  neither lists a partitioned folder nor loads ``httpfs`` without downloading it. This
  store loads ``httpfs`` from its pinned wheel (``duckdb-extension-httpfs``, the same
  version as ``duckdb``) and configures S3 from the standard AWS variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import pandas as pd
import pyarrow as pa
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.infra.offline_stores.offline_utils import infer_event_timestamp_from_entity_df
from feast.on_demand_feature_view import OnDemandFeatureView
from pydantic import PositiveInt, StrictStr

from fraud_platform.asof_sql import ROW, asof_sql, quote, scan, tie_order
from fraud_platform.duckdb_s3 import connect

if TYPE_CHECKING:
    import duckdb
    from feast.data_source import DataSource
    from feast.feature_view import FeatureView
    from feast.infra.registry.base_registry import BaseRegistry
    from feast.repo_config import RepoConfig
    from feast.saved_dataset import SavedDatasetStorage, ValidationReference


EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
"""The time span given to the join of no entity rows."""


class AsofDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """``offline_store:`` of ``feature_store.yaml``. S3 keys and endpoint come from the
    standard AWS variables (``fraud_platform.settings.S3Settings``), never from the file."""

    type: StrictStr = "fraud_platform.offline_store.AsofDuckDBOfflineStore"
    s3_url_style: Literal["path", "vhost"] = "path"
    """``path`` for MinIO and SeaweedFS (and accepted by AWS S3)."""
    s3_region: StrictStr | None = None
    threads: int | None = None
    """DuckDB worker threads (default: one per core)."""
    memory_limit: StrictStr | None = None
    """DuckDB's memory limit, e.g. ``4GB`` (default: 80% of RAM); past it DuckDB spills
    to its temporary directory instead of growing."""
    entity_rows_per_query: PositiveInt = 3_000_000
    """A point-in-time join of more entity rows runs as consecutive queries of this many
    (in their order, each reading only the feature rows its time span needs). Not every
    stage of a query can spill: under a 4 GB limit, 9.3M entity rows in one query failed
    to pin memory where 7.6M passed."""


TRANSFORM_ROWS = 500_000
"""Rows an on-demand view transforms at a time (see :class:`OwnInputsOnly`)."""


class OwnInputsOnly:
    """An on-demand feature view that Feast's ``to_arrow`` hands only the columns the view
    reads (its request fields and source features), not the whole result, a slice of
    :data:`TRANSFORM_ROWS` rows at a time.

    A python-mode view turns the table it is given into Python lists (``to_pydict``), and
    its function returns more lists: on the whole result of a 7.6M-row training set (56
    columns) that was 425M Python objects, about 14 GB, for a function that reads 12
    columns; on those 12 columns of the 9.3M rows of a 10M-scale training run, still
    5 GB of objects alive at once (the run's peak). A slice's objects are freed before
    the next slice's are made. Everything else is the view's own.
    """

    def __init__(self, view: OnDemandFeatureView) -> None:
        self._view = view

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)

    def transform_arrow(self, table: pa.Table, full_feature_names: bool = False) -> pa.Table:
        inputs = set(input_columns(self._view))
        own = table.select([c for c in table.column_names if c in inputs])
        parts = [
            self._view.transform_arrow(own.slice(start, TRANSFORM_ROWS), full_feature_names)
            for start in range(0, max(own.num_rows, 1), TRANSFORM_ROWS)
        ]
        # A slice whose output column is all null infers Arrow's null type: promoted to
        # the other slices' type.
        return pa.concat_tables(parts, promote_options="permissive")


def input_columns(view: OnDemandFeatureView) -> Iterator[str]:
    """The columns an on-demand view may read: request fields, and each source feature
    under its short name and its full names (Feast's ``transform_arrow`` fills in one
    from the other)."""
    for request in view.source_request_sources.values():
        yield from (field.name for field in request.schema)
    for projection in view.source_feature_view_projections.values():
        for feature in projection.features:
            yield feature.name
            yield f"{projection.name}__{feature.name}"
            yield f"{projection.name_to_use()}__{feature.name}"


class AsofRetrievalJob(RetrievalJob):
    """Queries on the store's DuckDB connection, run when the result is asked for, one
    after another, their results concatenated; Feast's base class applies the on-demand
    views to the Arrow result.

    Each query is given as its SQL and, for a point-in-time join, its slice of the entity
    rows, registered as ``entity_rows`` while it runs.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        queries: list[tuple[str, pa.Table | None]],
        *,
        on_demand_feature_views: list[OnDemandFeatureView] | None = None,
        full_feature_names: bool = False,
        metadata: RetrievalMetadata | None = None,
    ) -> None:
        super().__init__()
        self._con: duckdb.DuckDBPyConnection | None = con
        self._queries = queries
        self._odfvs = on_demand_feature_views or []
        self._full_feature_names = full_feature_names
        self._metadata = metadata

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return [cast("OnDemandFeatureView", OwnInputsOnly(view)) for view in self._odfvs]

    @property
    def metadata(self) -> RetrievalMetadata | None:
        return self._metadata

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        """The query's result. The connection is closed once it is fetched: DuckDB keeps
        its buffer pool (up to ``memory_limit``) for as long as the connection lives, and
        the caller's next step (a training set in pandas) needs that memory. A job is
        fetched once."""
        if self._con is None:
            raise RuntimeError("this retrieval job was already fetched: ask the store again")
        con, queries = self._con, self._queries
        self._con, self._queries = None, []
        try:
            results = []
            for sql, entity_rows in queries:
                if entity_rows is not None:
                    con.register("entity_rows", entity_rows)
                results.append(con.sql(sql).to_arrow_table())
                if entity_rows is not None:
                    con.unregister("entity_rows")
            return results[0] if len(results) == 1 else pa.concat_tables(results)
        finally:
            con.close()

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas()

    def to_df(
        self, validation_reference: ValidationReference | None = None, timeout: int | None = None
    ) -> pd.DataFrame:
        """Feast's ``to_df`` (on-demand views applied to the Arrow result), converted
        column by column, each Arrow column freed as it is converted, without Feast's
        ``reset_index`` (a deep copy of a frame that already has a fresh index): at 7.6M
        rows and 48 features, two fewer copies of the result (about 8 GB) at the peak."""
        if validation_reference is not None:
            return super().to_df(validation_reference, timeout)
        table = self.to_arrow(timeout=timeout)
        return table.to_pandas(self_destruct=True, split_blocks=True)

    def persist(
        self,
        storage: SavedDatasetStorage,
        allow_overwrite: bool = False,
        timeout: int | None = None,
    ) -> None:
        raise NotImplementedError("saved datasets are not used by this project")


class AsofDuckDBOfflineStore(DuckDBOfflineStore):
    """Feast's DuckDB store with ``ASOF`` point-in-time joins (see the module docstring).
    Writes (``offline_write_batch``, logged features) are Feast's own, inherited."""

    # A created-time cutoff would need every row per key, not one: not offered.
    supports_filter_by_created_timestamp = False

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str,
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        if not isinstance(entity_df, pd.DataFrame):
            raise TypeError("entity_df must be a pandas DataFrame (SQL is not supported)")
        event_col = infer_event_timestamp_from_entity_df(dict(entity_df.dtypes))
        entity = entity_df.copy(deep=False)  # new columns only: the caller's frame is kept
        entity[event_col] = pd.to_datetime(entity[event_col], utc=True)
        entity[ROW] = range(len(entity))
        rows = pa.Table.from_pandas(entity, preserve_index=False)
        times = entity[event_col]
        del entity
        per_query = config.offline_store.entity_rows_per_query
        queries: list[tuple[str, pa.Table | None]] = []
        for start in range(0, max(len(rows), 1), per_query):
            span = times.iloc[start : start + per_query]
            first, last = (span.min(), span.max()) if len(span) else (EPOCH, EPOCH)
            sql = asof_sql(
                feature_views,
                feature_refs,
                config.repo_path,
                event_col,
                list(entity_df.columns),
                first,
                last,
                full_feature_names,
            )
            queries.append((sql, rows.slice(start, per_query)))
        del rows
        first, last = (times.min(), times.max()) if len(times) else (EPOCH, EPOCH)
        odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        return AsofRetrievalJob(
            connect(config.offline_store),
            queries,
            on_demand_feature_views=odfvs,
            full_feature_names=full_feature_names,
            metadata=RetrievalMetadata(
                features=feature_refs,
                keys=[c for c in entity_df.columns if c != event_col],
                min_event_timestamp=first.to_pydatetime(),
                max_event_timestamp=last.to_pydatetime(),
            ),
        )

    @staticmethod
    def pull_latest_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None,
        start_date: datetime,
        end_date: datetime,
    ) -> RetrievalJob:
        """The latest row per key in ``[start_date, end_date]``, by :func:`tie_order`."""
        return _pull(
            config,
            data_source,
            join_key_columns,
            feature_name_columns,
            timestamp_field,
            created_timestamp_column,
            start_date,
            end_date,
            latest=True,
        )

    @staticmethod
    def pull_all_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> RetrievalJob:
        return _pull(
            config,
            data_source,
            join_key_columns,
            feature_name_columns,
            timestamp_field,
            created_timestamp_column,
            start_date,
            end_date,
            latest=False,
        )


def _pull(
    config: RepoConfig,
    source: DataSource,
    keys: list[str],
    features: list[str],
    ts: str,
    created: str | None,
    start: datetime | None,
    end: datetime | None,
    latest: bool,
) -> RetrievalJob:
    columns = list(dict.fromkeys([*keys, *features, ts, *([created] if created else [])]))
    # Latest rows feed materialization, whose engine renames columns by the push source's
    # field mapping when a view has one (feast compute_engines/feature_builder.py) and so
    # misses the batch source's: the rows leave already named as the view names them.
    renamed = source.field_mapping if latest else {}
    where = [
        f"{quote(ts)} {op} TIMESTAMPTZ '{bound.isoformat()}'"
        for op, bound in ((">=", start), ("<=", end))
        if bound is not None
    ]
    selected = ", ".join(
        f"{quote(c)} AS {quote(renamed[c])}" if c in renamed else quote(c) for c in columns
    )
    sql = f"SELECT {selected} FROM {scan(source, config.repo_path)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if latest:
        sql += (
            f" QUALIFY row_number() OVER (PARTITION BY {', '.join(map(quote, keys))} "
            f"ORDER BY {tie_order(ts, created, features)}) = 1"
        )
    return AsofRetrievalJob(connect(config.offline_store), [(sql, None)])
