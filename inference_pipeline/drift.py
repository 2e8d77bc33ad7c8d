"""Drift and quality of served data: a scored day against the champion's training set.

Per feature, Evidently's drift test (population stability index by default) between the
training set's vectors and the day's; the same test on the score distribution; the share
of missing values per feature; and, once the day's labels have arrived, average precision
and recall at the review threshold. The HTML report and a one-row metrics table go to
``monitoring/drift/event_date=<day>/`` on S3 and to an MLflow run tagged with the model
version; past a threshold of :class:`DriftSettings` the day is flagged (the CLI exits 1,
the DAG's task fails and its callback alerts).

The day's frame is any frame with the model's feature columns and a score column: batch
scoring's ``predictions/`` (which carries the scored vectors), or a served-vector log.
Reading, writing and logging are in :mod:`inference_pipeline.drift_job`; this module is
the comparison alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from pydantic_settings import BaseSettings, SettingsConfigDict

SCORE = "fraud_probability"


class DriftSettings(BaseSettings):
    """The thresholds of the drift report, in one place (``FRAUD_DRIFT_*``)."""

    model_config = SettingsConfigDict(env_prefix="FRAUD_DRIFT_", extra="ignore")

    method: str = "psi"
    """Evidently's per-column drift test; PSI is the credit-risk industry's habit."""
    feature_threshold: float = 0.2
    """A feature (or the score) drifted when its test statistic exceeds this (PSI > 0.2:
    a significant shift, by the usual rule of thumb)."""
    max_drifted_share: float = 0.25
    """Flag the day when more than this share of the features drifted."""
    max_missing_share: float = 0.05
    """Flag the day when a feature is missing this much more often than in training."""
    flag_score_drift: bool = True
    min_recall: float = 0.5
    """Flag a labelled day whose recall at the review threshold falls below this."""
    min_labelled_frauds: int = 20
    """Fewer frauds than this in a day's labels: AP and recall are logged, not judged."""
    reference_rows: int = 20_000
    """Rows sampled from the champion's training window as the reference."""
    experiment: str = "fraud-monitoring"


@dataclass
class DriftResult:
    """What one day's comparison found; ``alerts`` is empty for an ordinary day."""

    rows: int
    reference_rows: int
    drifted_features: list[str]
    drifted_share: float
    feature_drift: dict[str, float]
    missing_share: dict[str, float]
    score_drift: float | None
    score_mean: float
    average_precision: float | None = None
    recall_at_review: float | None = None
    labelled_frauds: int = 0
    alerts: list[str] = field(default_factory=list)

    def metrics_row(self) -> dict[str, Any]:
        """The flat row of the metrics table."""
        flat = {k: v for k, v in asdict(self).items() if not isinstance(v, dict | list)}
        flat["drifted_features"] = ",".join(self.drifted_features)
        flat["alerts"] = " | ".join(self.alerts)
        flat.update({f"drift__{k}": v for k, v in self.feature_drift.items()})
        flat.update({f"missing__{k}": v for k, v in self.missing_share.items()})
        return flat


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    settings: DriftSettings | None = None,
) -> tuple[DriftResult, Any]:
    """Compare the day's vectors and scores (``current``) with the reference.

    Returns:
        The result and Evidently's snapshot (for the HTML report).
    """
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    settings = settings or DriftSettings()
    missing = {f: float(current[f].isna().mean()) for f in features}
    baseline_missing = {f: float(reference[f].isna().mean()) for f in features}
    # Evidently cannot test a column with no value at all: such a feature is reported as
    # missing (below), not as drifted.
    testable = [f for f in features if missing[f] < 1.0 and baseline_missing[f] < 1.0]
    columns = [*testable, SCORE] if SCORE in current and SCORE in reference else testable
    preset = DataDriftPreset(
        columns=columns, method=settings.method, threshold=settings.feature_threshold
    )
    snapshot = Report([preset]).run(
        Dataset.from_pandas(current[columns]), Dataset.from_pandas(reference[columns])
    )
    stats = _value_drift(snapshot.dict())
    feature_drift = {f: stats[f] for f in testable if f in stats}
    drifted = sorted(f for f, value in feature_drift.items() if value > settings.feature_threshold)
    result = DriftResult(
        rows=len(current),
        reference_rows=len(reference),
        drifted_features=drifted,
        drifted_share=len(drifted) / len(features) if features else 0.0,
        feature_drift=feature_drift,
        missing_share=missing,
        score_drift=stats.get(SCORE),
        score_mean=float(current[SCORE].mean()) if SCORE in current else float("nan"),
    )
    result.alerts = _alerts(result, baseline_missing, settings)
    return result, snapshot


def _value_drift(snapshot: dict[str, Any]) -> dict[str, float]:
    """Column -> drift statistic, from the ValueDrift metrics of an Evidently snapshot."""
    return {
        m["config"]["column"]: float(m["value"])
        for m in snapshot["metrics"]
        if m["config"].get("type", "").endswith("ValueDrift")
    }


def _alerts(
    result: DriftResult, baseline_missing: dict[str, float], settings: DriftSettings
) -> list[str]:
    alerts = []
    if result.drifted_share > settings.max_drifted_share:
        alerts.append(
            f"{result.drifted_share:.0%} of features drifted ({', '.join(result.drifted_features)})"
        )
    for feature, share in result.missing_share.items():
        if share - baseline_missing[feature] > settings.max_missing_share:
            alerts.append(
                f"{feature} missing in {share:.0%} of rows "
                f"(training: {baseline_missing[feature]:.0%})"
            )
    if (
        settings.flag_score_drift
        and result.score_drift is not None
        and result.score_drift > settings.feature_threshold
    ):
        alerts.append(f"score distribution drifted ({settings.method} {result.score_drift:.3f})")
    return alerts


def add_label_metrics(
    result: DriftResult,
    current: pd.DataFrame,
    labels: pd.DataFrame,
    review_threshold: float,
    settings: DriftSettings,
) -> None:
    """AP and recall at the review threshold over the day's labelled transactions."""
    from sklearn.metrics import average_precision_score

    known = current.merge(labels[["transaction_id", "is_fraud"]], on="transaction_id")
    frauds = int(known["is_fraud"].sum()) if len(known) else 0
    result.labelled_frauds = frauds
    if frauds == 0 or frauds == len(known):
        return
    truth = known["is_fraud"].astype(bool).to_numpy()
    scores = known[SCORE].to_numpy()
    result.average_precision = float(average_precision_score(truth, scores))
    result.recall_at_review = float((scores[truth] >= review_threshold).mean())
    if frauds >= settings.min_labelled_frauds and result.recall_at_review < settings.min_recall:
        result.alerts.append(
            f"recall at the review threshold {result.recall_at_review:.0%} "
            f"< {settings.min_recall:.0%} ({frauds} labelled frauds)"
        )
