"""The served model's predictor: Treelite's only where it equals XGBoost's bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from inference_pipeline.model import Forest, ServedModel, exact_forest
from inference_pipeline.schemas import ModelRef


def trained(objective: str, rounds: int = 60, base_score: float | None = 0.5) -> xgb.Booster:
    """A real booster on data with missing values, so default directions matter.

    Training weighs the classes equally, so its intercept is 0.5; ``base_score=None``
    lets XGBoost estimate another one, which Treelite adds at another step of the sum.
    """
    params = {"objective": objective, "max_depth": 6, "nthread": 1, "seed": 0}
    if base_score is not None:
        params["base_score"] = base_score
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2000, 6)).astype(np.float32) * [1, 10, 100, 1e3, 1e4, 0.01]
    y = ((x[:, 0] > 0.5) ^ (x[:, 3] < -200)).astype(np.float32)
    x[rng.random(x.shape) < 0.25] = np.nan
    return xgb.train(
        params,
        xgb.DMatrix(x, label=y, missing=np.nan),
        num_boost_round=rounds,
    )


@pytest.mark.parametrize(
    ("objective", "base_score", "fast"),
    [
        ("binary:logistic", 0.5, True),
        # Treelite adds a nonzero base margin at another step of the sum, which differs
        # in the last bit: the guard keeps XGBoost.
        ("binary:logistic", None, False),
        ("reg:squarederror", 0.5, False),
    ],
)
def test_the_served_scores_are_the_boosters_exactly(
    objective: str, base_score: float | None, fast: bool
) -> None:
    booster = trained(objective, base_score=base_score)
    forest = exact_forest(booster, 6)
    assert (forest is not None) == fast
    model = ServedModel(
        ref=ModelRef(name="m", version="1", alias="champion"),
        booster=booster,
        features=tuple(f"v__f{i}" for i in range(6)),
        review=0.3,
        decline=0.8,
        plan=None,  # type: ignore[arg-type]  # prediction does not read the plan
        forest=forest,
    )
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(3000, 6)).astype(np.float32) * 50
    rows[rng.random(rows.shape) < 0.4] = np.nan
    expected = booster.inplace_predict(rows).reshape(-1).astype(np.float64)
    assert np.array_equal(model.predict(rows), expected)
    assert all(model.predict(rows[i : i + 1])[0] == expected[i] for i in range(50))


def test_a_forest_that_differs_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard itself: a predictor one ulp off on one row keeps XGBoost."""
    real = Forest.predict

    def one_ulp_off(forest: Forest, rows: np.ndarray) -> np.ndarray:
        scores = real(forest, rows)
        scores.flat[7] = np.nextafter(scores.flat[7], np.float32(2))
        return scores

    monkeypatch.setattr(Forest, "predict", one_ulp_off)
    assert exact_forest(trained("binary:logistic", rounds=5), 6) is None


def test_small_batches_go_to_treelite_and_large_ones_to_xgboost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GTIL's cost grows with rows x trees, XGBoost's mostly does not: the split is at
    GTIL_MAX_ROW_TREES, and both sides give the same bits."""
    from inference_pipeline.model import GTIL_MAX_ROW_TREES

    booster = trained("binary:logistic", rounds=60)
    forest = exact_forest(booster, 6)
    assert forest is not None and forest.trees == 60
    model = ServedModel(
        ref=ModelRef(name="m", version="1", alias="champion"),
        booster=booster,
        features=tuple(f"v__f{i}" for i in range(6)),
        review=0.3,
        decline=0.8,
        plan=None,  # type: ignore[arg-type]  # prediction does not read the plan
        forest=forest,
    )
    sizes: list[int] = []
    real = forest.predict
    monkeypatch.setattr(forest, "predict", lambda rows: sizes.append(len(rows)) or real(rows))
    largest = GTIL_MAX_ROW_TREES // 60
    rows = np.random.default_rng(3).normal(size=(largest + 1, 6)).astype(np.float32)
    expected = booster.inplace_predict(rows).reshape(-1).astype(np.float64)
    assert np.array_equal(model.predict(rows[:largest]), expected[:largest])
    assert np.array_equal(model.predict(rows), expected)
    assert sizes == [largest]
