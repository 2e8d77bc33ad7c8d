"""The long steps' progress: counted per boosting round when a display is shown, and a
no-op otherwise."""

from __future__ import annotations

import io

import numpy as np
import xgboost as xgb
from rich.console import Console

from training_pipeline import progress
from training_pipeline.train import rounds_counted


def boost(rounds: int, on) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    matrix = xgb.DMatrix(x, label=(x[:, 0] > 0).astype(np.float32))
    xgb.train({"nthread": 1}, matrix, num_boost_round=rounds, callbacks=[rounds_counted(on)])


def test_each_boosting_round_advances_its_step_and_an_early_end_completes_it() -> None:
    out = io.StringIO()
    with progress.shown(Console(file=out, width=120)) as shown:
        with progress.step("boosting", 20) as on:
            boost(7, on)  # as if early stopping ended it at 7 of 20
        with progress.step("join"):  # no total: pulses, then shows done
            pass
    boosting, join = shown.tasks
    assert (boosting.completed, boosting.total, boosting.finished) == (7, 7, True)
    assert join.finished
    assert "boosting" in out.getvalue() and "7/7" in out.getvalue()


def test_without_a_display_the_steps_show_nothing() -> None:
    with progress.step("boosting", 20) as on:
        boost(3, on)
