"""The door to the Feast repo: every pipeline opens its ``FeatureStore`` here.

The repo is ``feature_repo/`` of this source tree or ``FEAST_REPO_PATH``, configured by the
environment through ``feature_store.yaml``'s ``${VAR}`` substitutions. Nobody builds a
``RepoConfig`` by hand.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView
    from feast.data_source import DataSource
    from feast.infra.offline_stores.file_source import FileSource

DEFAULT_REPO_PATH = Path(__file__).resolve().parents[1] / "feature_repo"
"""The Feast repo of this source tree; ``FEAST_REPO_PATH`` overrides it (images that
install the package without the source tree)."""

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


class FeatureRepoError(RuntimeError):
    """The Feast repo cannot be opened (no ``feature_store.yaml``, unset variables), or a
    view of it lacks what the code reads (a batch source, a Parquet file source)."""


def repo_path(path: Path | str | None = None) -> Path:
    """The Feast repo to use: ``path``, else ``FEAST_REPO_PATH``, else ``feature_repo/``."""
    chosen = Path(path or os.environ.get("FEAST_REPO_PATH") or DEFAULT_REPO_PATH)
    return chosen.expanduser().resolve()


def _check_environment(config_file: Path) -> None:
    """Fail naming the variables ``feature_store.yaml`` needs that are not set.

    Feast substitutes with ``os.path.expandvars``, which leaves an unset variable as its
    literal ``${NAME}``: the error would surface later as an unparseable registry URL or
    Redis address.
    """
    text = "\n".join(line.split("#", 1)[0] for line in config_file.read_text().splitlines())
    missing = sorted({a or b for a, b in _VARIABLE.findall(text)} - set(os.environ))
    if missing:
        raise FeatureRepoError(
            f"{config_file} needs these environment variables, which are not set: "
            f"{', '.join(missing)} (source .local/stack.env for the local stack)"
        )


def open_store(repo_path: Path | None = None) -> FeatureStore:
    """The project's ``FeatureStore``.

    Args:
        repo_path: The Feast repo; defaults to ``FEAST_REPO_PATH`` or ``feature_repo/``.

    Raises:
        FeatureRepoError: No ``feature_store.yaml`` there, or a variable it uses is unset.
    """
    from feast import FeatureStore

    path = resolve_repo(repo_path)
    return FeatureStore(repo_path=str(path))


def resolve_repo(path: Path | str | None = None) -> Path:
    """The Feast repo folder, checked: ``feature_store.yaml`` exists and its variables are set."""
    resolved = repo_path(path)
    config_file = resolved / "feature_store.yaml"
    if not config_file.is_file():
        raise FeatureRepoError(f"No Feast repo at {resolved}: feature_store.yaml is missing")
    _check_environment(config_file)
    return resolved


def batch_source(view: FeatureView) -> DataSource:
    """The view's batch source (Feast allows a view without one; the repo's all have one)."""
    source = view.batch_source
    if source is None:
        raise FeatureRepoError(f"{view.name}: the feature view has no batch source")
    return source


def file_source(view: FeatureView) -> FileSource:
    """The view's batch source, a Parquet file source (local or on S3)."""
    from feast.infra.offline_stores.file_source import FileSource

    source = batch_source(view)
    if not isinstance(source, FileSource):
        raise FeatureRepoError(f"{view.name}: a file source is expected, not {source!r}")
    return source
