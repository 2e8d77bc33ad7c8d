"""The XGBoost model and the rule it must beat.

The model is a native ``xgboost.Booster`` trained with ``xgb.train``: serving loads the
same Booster and scores over the feature order stored with it (through Treelite where
that gives XGBoost's probabilities bit for bit, see ``inference_pipeline.model``).
Training is deterministic (``seed``, explicit ``nthread``, ``hist`` trees), weighs the
rare fraud class up with ``scale_pos_weight``, and stops early on the validation window
(average precision, the metric that matters at a 0.5% fraud rate), then is refit on the
whole training window with the number of trees early stopping chose (``XGBConfig.refit``):
the latest days, the closest to what the model will score, are learnt from too. The test
window is scored by the refit Booster, so what is evaluated is exactly what serving runs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from training_pipeline import progress

if TYPE_CHECKING:
    from collections.abc import Callable

    import xgboost as xgb

log = logging.getLogger(__name__)

MODEL = "xgboost"
BASELINE = "amount_rule"
"""The names of the two scores every evaluation compares: the model and the rule."""

ABSOLUTE_TIME_FEATURES = ("last_txn_timestamp", "issue_timestamp")
"""Feature-view columns that are instants (Unix seconds), kept in the service as inputs of
the request-time features (seconds since the last transaction, card age). As model
inputs they would only tell the trees *when* a row was made: every test-window value
lies beyond the training range, so a split on them learns the calendar, not fraud.
The model uses the durations derived from them instead."""


def model_features(service_features: list[str]) -> list[str]:
    """The service's features the model takes, in the service's order: all of them but
    the absolute instants (see ``ABSOLUTE_TIME_FEATURES``)."""
    return [
        name for name in service_features if name.rsplit("__", 1)[-1] not in ABSOLUTE_TIME_FEATURES
    ]


@dataclass(frozen=True)
class XGBConfig:
    """Hyperparameters; defaults suit a few hundred thousand rows on two cores."""

    max_depth: int = 5
    learning_rate: float = 0.05
    num_boost_round: int = 600
    early_stopping_rounds: int = 50
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    scale_pos_weight: float | None = None
    """Weight of a fraud relative to a genuine row; None: negatives / positives of the
    training rows (the classes then weigh the same in the loss)."""
    nthread: int = 2
    seed: int = 7
    genuine_fraction: float = 1.0
    """Share of the genuine training rows boosting reads (drawn with ``seed``); every fraud
    is read. Boosting's cost grows with the rows, and at a month of 10M transactions a
    fraud is one row in hundreds: a quarter of the genuine rows cuts the time about four
    times. The weight of a fraud follows the rows read (``scale_pos_weight``), so the
    classes still weigh the same in the loss; the validation window is never sampled, so
    early stopping and the thresholds see the real mix."""
    refit: bool = True
    """Refit on the whole training window (fit and validation) with the number of trees
    early stopping chose: the registered model then learns from the window's latest days,
    the closest to what it will score, instead of leaving them to validation only."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sampled(frame: pd.DataFrame, config: XGBConfig, label: str = "is_fraud") -> pd.DataFrame:
    """The rows of ``frame`` boosting reads: every fraud, and ``config.genuine_fraction``
    of the genuine rows (all of them at 1)."""
    if config.genuine_fraction >= 1.0:
        return frame
    drawn = np.random.default_rng(config.seed).random(len(frame)) < config.genuine_fraction
    return frame[(frame[label].to_numpy() == 1) | drawn]


def feature_matrix(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The model's input: the features in the model's order, as float32 (NaN = missing)."""
    return frame[features].astype("float32")


def rounds_counted(advance: Callable[[int], None]) -> xgb.callback.TrainingCallback:
    """An XGBoost callback that advances a progress step once per boosting round."""
    import xgboost as xgb

    class Rounds(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            advance(1)
            return False  # never stops the training

    return Rounds()


def quantized(
    frames: list[pd.DataFrame],
    features: list[str],
    label: np.ndarray,
    config: XGBConfig,
    reference: xgb.QuantileDMatrix | None = None,
) -> xgb.QuantileDMatrix:
    """The rows of ``frames`` as the histogram method's input, quantized as they are read.

    A ``DMatrix`` keeps every value (8 bytes each with its index) and the ``hist`` method
    then builds its bins beside it; a ``QuantileDMatrix`` keeps only the bins, one byte a
    value: at 7.6M rows of 48 features, about 3 GB less. Only the float32 features of the
    frames are stacked, not the frames themselves. Validation data is binned with the
    training data's cuts (``reference``).
    """
    import xgboost as xgb

    data = (
        feature_matrix(frames[0], features)
        if len(frames) == 1
        else pd.concat([feature_matrix(frame, features) for frame in frames], ignore_index=True)
    )
    return xgb.QuantileDMatrix(
        data, label=label, missing=np.nan, nthread=config.nthread, ref=reference
    )


def train_xgboost(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    features: list[str],
    config: XGBConfig | None = None,
    label: str = "is_fraud",
) -> tuple[xgb.Booster, dict[str, Any]]:
    """Train on ``train`` (its ``sampled`` rows), stopping early on ``validation``.

    Returns:
        The Booster cut at its best iteration, and ``{"best_iteration",
        "best_validation_aucpr", "scale_pos_weight", "train_rows", "train_frauds", ...}``.
    """
    import xgboost as xgb

    config = config or XGBConfig()
    train = sampled(train, config, label)
    y_train = train[label].to_numpy()
    y_val = validation[label].to_numpy()
    positives = int(y_train.sum())
    if positives == 0 or int(y_val.sum()) == 0:
        raise ValueError("training and validation windows both need at least one fraud")
    params = _params(config, y_train)
    dtrain = quantized([train], features, y_train, config)
    dval = quantized([validation], features, y_val, config, reference=dtrain)
    with progress.step("boosting (early stopping on validation)", config.num_boost_round) as on:
        # Validation only: early stopping reads its last metric, and evaluating the training
        # window too (an AUC PR over every row, each round) took a third of each round:
        # 0.31 against 0.20 s a round on 1M rows of 48 features, 2 threads.
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=config.num_boost_round,
            evals=[(dval, "validation")],
            early_stopping_rounds=config.early_stopping_rounds,
            verbose_eval=False,
            callbacks=[rounds_counted(on)],
        )
    best = int(booster.best_iteration)
    best_score = float(booster.best_score)
    booster = booster[: best + 1]
    info = {
        "best_iteration": best,
        "trees": best + 1,
        "best_validation_aucpr": best_score,
        "scale_pos_weight": float(params["scale_pos_weight"]),
        "train_rows": len(y_train),
        "train_frauds": positives,
        "genuine_fraction": config.genuine_fraction,
        "validation_rows": len(y_val),
        "validation_frauds": int(y_val.sum()),
    }
    log.info("xgboost: %s", info)
    return booster, info


def _params(config: XGBConfig, y: np.ndarray) -> dict[str, Any]:
    """XGBoost's parameters; ``scale_pos_weight`` from the labels ``y`` unless set."""
    positives = int(y.sum())
    weight = config.scale_pos_weight or (len(y) - positives) / max(positives, 1)
    return {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "aucpr"],
        "tree_method": "hist",
        "max_depth": config.max_depth,
        "eta": config.learning_rate,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "min_child_weight": config.min_child_weight,
        "lambda": config.reg_lambda,
        "scale_pos_weight": weight,
        # The intercept of the weighed classes, stated rather than estimated: with a base
        # margin of 0 the served predictor (Treelite) sums the trees bit for bit as XGBoost.
        "base_score": 0.5,
        "nthread": config.nthread,
        "seed": config.seed,
    }


def refit_xgboost(
    frames: list[pd.DataFrame],
    features: list[str],
    trees: int,
    config: XGBConfig | None = None,
    label: str = "is_fraud",
) -> tuple[xgb.Booster, dict[str, Any]]:
    """Train ``trees`` trees on the rows of ``frames`` (the whole training window), without
    early stopping: the number of trees was chosen on the validation window beforehand."""
    import xgboost as xgb

    config = config or XGBConfig()
    frames = [sampled(frame, config, label) for frame in frames]
    y = np.concatenate([frame[label].to_numpy() for frame in frames])
    params = _params(config, y)
    matrix = quantized(frames, features, y, config)
    with progress.step("refit on the whole training window", trees) as on:
        booster = xgb.train(
            params,
            matrix,
            num_boost_round=trees,
            verbose_eval=False,
            callbacks=[rounds_counted(on)],
        )
    info = {
        "rows": len(y),
        "frauds": int(y.sum()),
        "trees": trees,
        "scale_pos_weight": float(params["scale_pos_weight"]),
    }
    log.info("xgboost refit on the whole training window: %s", info)
    return booster, info


def predict(booster: xgb.Booster, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Fraud scores in [0, 1], the way serving computes them (``inplace_predict``)."""
    if len(frame) == 0:
        return np.zeros(0)
    return np.asarray(booster.inplace_predict(feature_matrix(frame, features)), dtype=np.float64)


def feature_importance(booster: xgb.Booster, features: list[str]) -> dict[str, float]:
    """Total gain per feature (0 for features no tree splits on), in the model's order."""
    # A list only for vector leaves (multi-output models), not this binary classifier.
    gains = cast("dict[str, float]", booster.get_score(importance_type="total_gain"))
    return {name: float(gains.get(name, 0.0)) for name in features}


@dataclass(frozen=True)
class AmountRule:
    """The rule baseline: flag a transaction whose amount reaches a threshold.

    Its ranking score is the amount itself (any threshold on it is the rule), so the
    ranking metrics measure the best any amount threshold can do. Its probability is the
    fraud rate above and below the threshold fitted on the training rows, which is what
    the Brier score reads.
    """

    threshold: float
    p_above: float
    p_below: float

    @classmethod
    def fit(cls, amount: np.ndarray, y: np.ndarray) -> AmountRule:
        """The threshold with the best F1 on the given rows."""
        amount = np.asarray(amount, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        order = np.argsort(-amount, kind="mergesort")
        sorted_amount, sorted_y = amount[order], y[order]
        caught = np.cumsum(sorted_y)
        flagged = np.arange(1, len(y) + 1)
        # Only the last row of a run of equal amounts is a real threshold.
        last_of_value = np.append(sorted_amount[1:] != sorted_amount[:-1], True)
        positives = max(int(y.sum()), 1)
        f1 = np.where(last_of_value, 2 * caught / (flagged + positives), -1.0)
        best = int(np.argmax(f1))
        threshold = float(sorted_amount[best])
        above = amount >= threshold
        p_above = float(y[above].mean()) if above.any() else 0.0
        p_below = float(y[~above].mean()) if (~above).any() else 0.0
        return cls(threshold=threshold, p_above=p_above, p_below=p_below)

    def score(self, amount: np.ndarray) -> np.ndarray:
        return np.nan_to_num(np.asarray(amount, dtype=np.float64), nan=0.0)

    def probability(self, amount: np.ndarray) -> np.ndarray:
        amount = np.asarray(amount, dtype=np.float64)
        return np.where(amount >= self.threshold, self.p_above, self.p_below)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
