"""Applying the feature definitions safely (the store is opened by
``fraud_platform.feast_repo.open_store``, re-exported here for the pipeline's callers).

``apply_definitions`` is ``feast apply`` run from Python, preceded by the checks Feast does
not make: every file source exists on S3, and every column a feature view reads (join keys,
timestamps, features) is in its Parquet schema with a compatible type. Feast would accept
such a definition and only fail at the first materialization or training run, far from the
change that caused it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraud_platform.feast_repo import batch_source, open_store, resolve_repo
from fraud_platform.s3 import arrow_filesystem
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    import pyarrow as pa
    from feast import FeatureStore, FeatureView
    from feast.repo_contents import RepoContents

log = logging.getLogger(__name__)


class FeatureDefinitionError(ValueError):
    """A definition does not match the data: a missing source path or column.

    Attributes:
        problems: One line per problem, each naming the feature view and the path or
            column at fault.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "Feature definitions do not match the feature tables:\n  - " + "\n  - ".join(problems)
        )


@contextlib.contextmanager
def _repo_on_path(path: Path) -> Iterator[None]:
    """Import the repo's modules the way ``feast apply`` does, and forget them after.

    Feast names each definition module after its path relative to the working directory
    and the modules import each other by those names (``from entities import card``), so
    parsing happens from inside the repo with the repo on ``sys.path``. The modules are
    dropped before and after: ``data_sources`` resolves S3 paths from the environment at
    import time, and a cached module would keep the paths of a previous environment.
    """
    names = {p.stem for p in path.glob("*.py")}

    def forget() -> None:
        for name in names:
            sys.modules.pop(name, None)

    previous_cwd = Path.cwd()
    previous_path = list(sys.path)
    previous_bytecode = sys.dont_write_bytecode
    forget()
    os.chdir(path)
    sys.path.insert(0, str(path))
    sys.dont_write_bytecode = True  # as `feast apply`: no __pycache__ in the repo
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        sys.path[:] = previous_path
        sys.dont_write_bytecode = previous_bytecode
        forget()


def load_definitions(path: Path | str | None = None) -> RepoContents:
    """Parse the repo's definition modules into Feast objects, as ``feast apply`` does."""
    from feast.repo_operations import parse_repo

    resolved = resolve_repo(path)
    with _repo_on_path(resolved):
        return parse_repo(resolved)


def source_columns(feature_view: FeatureView, join_keys: list[str]) -> dict[str, str]:
    """Where each column the view reads comes from: ``{source column: what it feeds}``.

    Join keys, the event and created timestamps, and every feature, with the source's
    field mapping applied in reverse (the view's names are the mapped ones).
    """
    source = batch_source(feature_view)
    reverse = {v: k for k, v in (source.field_mapping or {}).items()}
    columns = {reverse.get(key, key): "join key" for key in join_keys}
    columns[reverse.get(source.timestamp_field, source.timestamp_field)] = "event timestamp"
    if source.created_timestamp_column:
        created = source.created_timestamp_column
        columns[reverse.get(created, created)] = "created timestamp"
    for feature in feature_view.features:
        columns[reverse.get(feature.name, feature.name)] = f"feature {feature.name}"
    return columns


def _compatible(feast_type: Any, arrow_type: pa.DataType) -> bool:
    """Whether Feast can store values of ``arrow_type`` as ``feast_type`` without loss."""
    import pyarrow as pa
    from feast.types import Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp

    if pa.types.is_null(arrow_type):
        return True  # no value at all: nothing to convert
    if feast_type in (Int32, Int64):
        return pa.types.is_integer(arrow_type)
    if feast_type in (Float32, Float64):
        return pa.types.is_floating(arrow_type) or pa.types.is_integer(arrow_type)
    if feast_type == String:
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if feast_type == Bool:
        return pa.types.is_boolean(arrow_type)
    if feast_type == UnixTimestamp:
        return pa.types.is_timestamp(arrow_type)
    return True


def table_schema(
    path: str, endpoint_override: str | None = None, s3: S3Settings | None = None
) -> pa.Schema | None:
    """The Parquet schema of a (hive-partitioned) table on S3; None if there is no table.

    Files and folders starting with ``_`` or ``.`` (staging, markers) are not part of it,
    as for every other reader of the table.
    """
    import pyarrow.dataset as ds
    from pyarrow import fs

    s3 = s3 or S3Settings()
    filesystem = arrow_filesystem(s3, endpoint_override)
    key = path.removeprefix("s3://")
    info = filesystem.get_file_info(key)
    if info.type == fs.FileType.NotFound:
        return None
    dataset = ds.dataset(key, filesystem=filesystem, format="parquet", partitioning="hive")
    if not dataset.files:
        return None
    return dataset.schema


def check_sources(repo: RepoContents, s3: S3Settings | None = None) -> dict[str, Any]:
    """Check every feature view against its table on S3.

    Returns:
        ``{view: {"path", "columns"}}`` for the views checked.

    Raises:
        FeatureDefinitionError: Listing every missing path, missing column and type
            mismatch, each with the view's name.
    """
    from feast.infra.offline_stores.file_source import FileSource

    s3 = s3 or S3Settings()
    join_key = {entity.name: entity.join_key for entity in repo.entities}
    problems: list[str] = []
    checked: dict[str, Any] = {}
    for view in sorted(repo.feature_views, key=lambda v: v.name):
        columns = source_columns(
            view, [join_key[name] for name in view.entities if name in join_key]
        )
        source = view.batch_source
        if not isinstance(source, FileSource):
            continue
        if not source.path.startswith("s3://"):
            problems.append(f"{view.name}: source path {source.path} is not on S3")
            continue
        schema = table_schema(source.path, source.s3_endpoint_override or None, s3)
        if schema is None:
            problems.append(
                f"{view.name}: source path {source.path} does not exist (no Parquet files there)"
            )
            continue
        features = {f.name: f.dtype for f in view.features}
        for column, role in columns.items():
            if column not in schema.names:
                problems.append(
                    f"{view.name}: column {column!r} ({role}) is not in the "
                    f"Parquet schema of {source.path}"
                )
                continue
            name = role.removeprefix("feature ")
            if role.startswith("feature ") and not _compatible(
                features[name], schema.field(column).type
            ):
                problems.append(
                    f"{view.name}: column {column!r} is {schema.field(column).type} in "
                    f"{source.path}, which cannot be stored as {features[name]}"
                )
        checked[view.name] = {"path": source.path, "columns": len(columns)}
    if problems:
        raise FeatureDefinitionError(problems)
    return checked


def apply_definitions(repo_path: Path | None = None, check: bool = True) -> dict[str, Any]:
    """``feast apply`` from Python, after checking the definitions against S3.

    Args:
        repo_path: The Feast repo; defaults to ``FEAST_REPO_PATH`` or ``feature_repo/``.
        check: Check source paths and columns first (see :func:`check_sources`).

    Returns:
        JSON-safe metadata: the project, what the registry now holds (views, on-demand
        views, services with their feature counts), the checked sources, Feast's diff
        lines and the duration.

    Raises:
        FeatureDefinitionError: A source path or column is missing; nothing is applied.
    """
    started = time.perf_counter()
    path = resolve_repo(repo_path)
    with _repo_on_path(path):
        from feast.repo_operations import parse_repo

        repo = parse_repo(path)
        checked = check_sources(repo) if check else {}
        store = open_store(path)
        project = store.project
        lines = _apply(store, repo)
    for line in lines:
        log.info("feast apply: %s", line)
    store.refresh_registry()
    services = {
        s.name: sum(len(p.features) for p in s.feature_view_projections)
        for s in store.list_feature_services()
    }
    duration = time.perf_counter() - started
    log.info(
        "applied project %s (%d views, %d services) in %.1fs",
        project,
        len(repo.feature_views),
        len(services),
        duration,
    )
    return {
        "project": project,
        "repo_path": str(path),
        "feature_views": sorted(v.name for v in store.list_feature_views()),
        "on_demand_feature_views": sorted(v.name for v in store.list_on_demand_feature_views()),
        "feature_services": services,
        "sources": checked,
        "changes": lines,
        "duration_s": round(duration, 2),
    }


def _apply(store: FeatureStore, repo: RepoContents) -> list[str]:
    """Apply the parsed repo to the store's registry; Feast's printed diff, as lines.

    A repo that declares no project gets the store's, as ``feast apply`` does.
    """
    from feast import Project
    from feast.repo_operations import apply_total_with_repo_instance

    if not repo.projects:
        repo.projects.append(
            Project(name=store.project, description=store.config.project_description or "")
        )
    diff = io.StringIO()
    with contextlib.redirect_stdout(diff):
        apply_total_with_repo_instance(
            store, store.project, store.registry, repo, skip_source_validation=False
        )
    return [line for line in diff.getvalue().splitlines() if line.strip()]
