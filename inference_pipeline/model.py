"""The served model: the registry's ``champion`` loaded once, and swapped when the alias moves.

A :class:`ServedModel` is immutable: a booster, the feature order it was trained with, its
thresholds and the serving plan of its feature service. It predicts through Treelite's
GTIL when that gives the booster's probabilities bit for bit (checked at load) and the
batch is small: XGBoost's ``inplace_predict`` spends 0.15 to 0.45 ms per call on fixed
work (a new context that reads the cgroup files, a walk of every tree for its depth,
Python wrapping) that a single transaction pays in full, and GTIL scores one row of the
same trees in a quarter of that; but GTIL's cost grows with every row and tree while
XGBoost's barely does, so a batch past :data:`GTIL_MAX_ROW_TREES` goes to XGBoost (the
same bits either way).

:class:`ModelHolder` keeps the current one in a single attribute; a refresh loads the new
version completely (download, plan, a test prediction) before assigning it, so a request
always scores with one whole model, the old or the new, and none is dropped during a swap.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud_platform.decision import Decision, decide
from fraud_platform.model_registry import alias_version, load_version
from inference_pipeline.online_features import FULL_NAME_SEPARATOR, ServingPlan
from inference_pipeline.schemas import ModelRef
from inference_pipeline.settings import ModelSettings

if TYPE_CHECKING:
    import xgboost as xgb

log = logging.getLogger(__name__)

GTIL_MAX_ROW_TREES = 2400
"""Rows x trees up to which GTIL is the faster predictor. Measured on 48 features, depth 5,
one thread: the two cross at about 16 rows of 100 trees and 8 rows of 300 or 600 trees
(for 64 rows of 400 trees GTIL takes 1.6 ms, XGBoost 0.5 ms)."""


class ModelUnavailableError(RuntimeError):
    """No model is loaded (no version has the alias yet, or it could not be loaded)."""


@dataclass(frozen=True)
class ServedModel:
    """One registered version, ready to score."""

    ref: ModelRef
    booster: xgb.Booster
    features: tuple[str, ...]
    """Full feature names (``view__feature``) in the order the booster takes them."""
    review: float
    decline: float
    plan: ServingPlan
    forest: Forest | None = None
    """The booster as a Treelite model, when it predicts exactly as the booster does."""

    @cached_property
    def short_names(self) -> tuple[tuple[str, str], ...]:
        """``(full name, feature name)`` of each input, for the missing-feature list;
        derived once per loaded model, not per scored batch."""
        return tuple((name, name.split(FULL_NAME_SEPARATOR, 1)[1]) for name in self.features)

    @classmethod
    def build(
        cls,
        ref: ModelRef,
        booster: xgb.Booster,
        metadata: dict[str, Any],
        plan_for: Callable[[str], ServingPlan],
    ) -> ServedModel:
        """Check the metadata against the feature service and make the booster serve.

        Raises:
            ValueError: the metadata lacks the feature order or thresholds, or the model
                takes a feature its feature service does not provide.
        """
        try:
            features = tuple(metadata["features"])
            thresholds = metadata["thresholds"]
            review, decline = float(thresholds["review"]), float(thresholds["decline"])
            service = metadata["feature_service"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{ref.name} v{ref.version}: model metadata lacks {exc}") from exc
        plan = plan_for(service)
        unknown = sorted(set(features) - set(plan.feature_names))
        if unknown:
            raise ValueError(
                f"{ref.name} v{ref.version} takes features {service} does not serve: {unknown}"
            )
        # One thread per prediction: a batch of a few rows gains nothing from more, and
        # OpenMP's spinning threads take the cores the event loop and Redis need.
        booster.set_param({"nthread": 1})
        model = cls(
            ref=ref,
            booster=booster,
            features=features,
            review=review,
            decline=decline,
            plan=plan,
            forest=exact_forest(booster, len(features)),
        )
        model.predict(np.full((1, len(features)), np.nan, np.float32))
        return model

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Fraud probabilities of the rows of a float32 matrix in :attr:`features` order."""
        if self.forest is not None and len(matrix) * self.forest.trees <= GTIL_MAX_ROW_TREES:
            scores = self.forest.predict(matrix)
        else:
            # The matrix is built in the model's feature order (feature_matrix), so the
            # name check of each call is redundant.
            scores = self.booster.inplace_predict(matrix, validate_features=False)
        return np.asarray(scores, dtype=np.float64).reshape(-1)

    def decide(self, probability: float) -> Decision:
        """The decision at the thresholds stored with the model."""
        return decide(probability, self.review, self.decline)


class Forest:
    """A Treelite model scored by GTIL on one thread, through GTIL's C call.

    ``treelite.gtil.predict`` builds and parses a JSON configuration on every call, and its
    ``_predict_impl`` asks the C library for the model's input and output types (five
    calls) and the output's shape on every call: about 25 µs of the 30 it takes to score
    one transaction of a 43-tree model. The configuration, types and per-row output shape
    are read once here and each call is the prediction alone (treelite is pinned, and the
    load check of :func:`exact_forest` runs through this same call).
    """

    def __init__(self, model: Any) -> None:
        from treelite.gtil.gtil import GTILConfig
        from treelite.util import c_str, typestr_to_ctypes_type, typestr_to_numpy_type

        self.model = model
        self.trees: int = model.num_tree
        self._config = GTILConfig(predict_type="default", nthread=1)
        input_type, output_type = model.input_type, model.output_type
        self._input_dtype = typestr_to_numpy_type(input_type)
        self._input_pointer = ctypes.POINTER(typestr_to_ctypes_type(input_type))
        self._input_name = c_str(input_type)
        self._output_dtype = typestr_to_numpy_type(output_type)
        self._output_pointer = ctypes.POINTER(typestr_to_ctypes_type(output_type))
        self.features: int = model.num_feature
        self._row_shape = self._output_shape(1)[1:]

    def _output_shape(self, rows: int) -> tuple[int, ...]:
        from treelite.core import _LIB, _check_call

        shape = ctypes.POINTER(ctypes.c_uint64)()
        dims = ctypes.c_uint64()
        _check_call(
            _LIB.TreeliteGTILGetOutputShape(
                self.model.handle,
                ctypes.c_uint64(rows),
                self._config.handle,
                ctypes.byref(shape),
                ctypes.byref(dims),
            )
        )
        return tuple(int(shape[i]) for i in range(dims.value))

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        from treelite.core import _LIB, _check_call

        rows = np.ascontiguousarray(matrix, dtype=self._input_dtype)
        if rows.ndim != 2 or rows.shape[1] != self.features:
            raise ValueError(f"expected rows of {self.features} features, got {rows.shape}")
        out = np.empty((rows.shape[0], *self._row_shape), self._output_dtype)
        _check_call(
            _LIB.TreeliteGTILPredict(
                self.model.handle,
                rows.ctypes.data_as(self._input_pointer),
                self._input_name,
                ctypes.c_uint64(rows.shape[0]),
                out.ctypes.data_as(self._output_pointer),
                self._config.handle,
            )
        )
        return out


def exact_forest(booster: xgb.Booster, n_features: int, rows: int = 512) -> Forest | None:
    """The booster as a Treelite model if it gives the booster's probabilities exactly on a
    probe of random rows (values over the split range, a third missing), else None: a
    model Treelite reads differently keeps XGBoost's slower predictor."""
    import treelite

    try:
        forest = Forest(treelite.frontend.from_xgboost(booster))
    except treelite.TreeliteError as exc:
        log.warning("Treelite cannot read the model, XGBoost predicts: %s", exc)
        return None
    if forest.features != n_features:
        log.warning(
            "Treelite reads %d features, not %d: XGBoost predicts", forest.features, n_features
        )
        return None
    rng = np.random.default_rng(0)
    probe = rng.standard_normal((rows, n_features)) * 10.0 ** rng.integers(0, 5, n_features)
    probe[rng.random(probe.shape) < 0.33] = np.nan
    probe = np.vstack([probe, np.full((1, n_features), np.nan)]).astype(np.float32)
    expected = booster.inplace_predict(probe, validate_features=False).reshape(-1)
    if not np.array_equal(expected, forest.predict(probe).reshape(-1)):
        log.warning("Treelite's probabilities differ from XGBoost's, XGBoost predicts")
        return None
    return forest


class ModelHolder:
    """The current model and the refresh that follows the alias."""

    def __init__(
        self,
        settings: ModelSettings,
        plan_for: Callable[[str], ServingPlan],
        load: Callable[[str, str], tuple[Any, dict[str, Any]]] = load_version,
        find_version: Callable[[str, str], str | None] = alias_version,
    ) -> None:
        self.settings = settings
        self._plan_for = plan_for
        self._load = load
        self._find_version = find_version
        self._lock = threading.Lock()
        self.current: ServedModel | None = None
        self.problem: str | None = "not loaded yet (loading from the registry)"
        """Why the newest check did not leave a model of the alias in place, or None; it
        names no host (it is shown to unauthenticated callers)."""

    def get(self) -> ServedModel:
        model = self.current
        if model is None:
            raise ModelUnavailableError(f"no model to score with: {self.problem}")
        return model

    def refresh(self) -> bool:
        """Load the alias's version if it is not the one served. Blocking (run it in a
        thread); errors are kept in :attr:`problem` and the current model keeps serving.

        Returns:
            True if a new version was swapped in.
        """
        name, alias = self.settings.name, self.settings.alias
        with self._lock:
            try:
                version = self._find_version(name, alias)
                if version is None:
                    self.problem = f"no version of {name!r} has the alias {alias!r}"
                    return False
                if self.current is not None and self.current.ref.version == version:
                    self.problem = None
                    return False
                booster, metadata = self._load(name, version)
                model = ServedModel.build(
                    ModelRef(name=name, version=version, alias=alias),
                    booster,
                    metadata,
                    self._plan_for,
                )
            except Exception as exc:  # the registry or S3 down, a broken version: keep serving
                # The cause names hosts and ports: logged, not put in public answers.
                self.problem = (
                    f"loading {name}@{alias} failed ({type(exc).__name__}; the cause is in the log)"
                )
                log.exception("model refresh failed; the current model keeps serving")
                return False
            previous = self.current
            self.current = model
            self.problem = None
        log.info(
            "serving %s v%s (was %s)", name, version, previous.ref.version if previous else "none"
        )
        return True
