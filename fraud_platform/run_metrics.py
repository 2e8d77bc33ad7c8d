"""Pipeline run metrics pushed to a Prometheus Pushgateway: durations, row counts,
quarantined rows, the online store's load time per feature view, success and failure times.

Batch jobs end before Prometheus could scrape them, so they push (the Pushgateway's one
use case). Pushing is off unless ``PROMETHEUS_PUSHGATEWAY_URL`` is set, and a push that
fails is logged, never fatal: monitoring must not fail the pipeline it watches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import AnyHttpUrl
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)
R = TypeVar("R")
Count = tuple[str, str, float]
"""(table, kind, value): kind is read, written, quarantined, duplicates, keys_written..."""


class PushgatewaySettings(BaseSettings):
    """Where to push run metrics (unset: nowhere)."""

    model_config = SettingsConfigDict(env_prefix="PROMETHEUS_", extra="ignore")

    pushgateway_url: AnyHttpUrl | None = None
    push_timeout_seconds: float = 5.0


def _push(job: str, step: str, fill: Callable[[Any], None]) -> None:
    """Build a registry of this step's gauges with ``fill`` and push it, grouped by step
    (a step's push replaces only its own previous values)."""
    settings = PushgatewaySettings()
    if settings.pushgateway_url is None:
        return
    from prometheus_client import CollectorRegistry, pushadd_to_gateway

    registry = CollectorRegistry()
    fill(registry)
    try:
        pushadd_to_gateway(
            str(settings.pushgateway_url).rstrip("/"),
            job=job,
            grouping_key={"step": step},
            registry=registry,
            timeout=settings.push_timeout_seconds,
        )
    except OSError as error:
        log.warning(
            "metrics of %s/%s not pushed to %s: %s", job, step, settings.pushgateway_url, error
        )


def push_success(
    job: str,
    step: str,
    duration_s: float,
    counts: Iterable[Count] = (),
    loaded_until: dict[str, float] | None = None,
) -> None:
    """Push a finished run: its duration, row counts and (materialization) the event time
    each feature view is loaded up to, as Unix seconds."""
    from prometheus_client import Gauge

    def fill(registry: Any) -> None:
        Gauge(
            "fraud_pipeline_duration_seconds",
            "Duration of the step's last successful run.",
            registry=registry,
        ).set(duration_s)
        Gauge(
            "fraud_pipeline_last_success_timestamp_seconds",
            "When the step last succeeded.",
            registry=registry,
        ).set(time.time())
        rows = Gauge(
            "fraud_pipeline_rows",
            "Rows of the step's last run, by table and kind.",
            ["table", "kind"],
            registry=registry,
        )
        for table, kind, value in counts:
            rows.labels(table, kind).set(value)
        if loaded_until:
            until = Gauge(
                "fraud_online_store_loaded_until_timestamp_seconds",
                "Event time up to which each feature view is loaded into the online store.",
                ["feature_view"],
                registry=registry,
            )
            for view, seconds in loaded_until.items():
                until.labels(view).set(seconds)

    _push(job, step, fill)


def push_failure(job: str, step: str) -> None:
    """Push the time the step failed (the "pipeline failed" alert compares it with the
    last success)."""
    from prometheus_client import Gauge

    def fill(registry: Any) -> None:
        Gauge(
            "fraud_pipeline_last_failure_timestamp_seconds",
            "When the step last failed.",
            registry=registry,
        ).set(time.time())

    _push(job, step, fill)


def reported(
    job: str,
    step: str,
    call: Callable[[], R],
    counts: Callable[[R], Iterable[Count]] = lambda _: (),
    loaded_until: Callable[[R], dict[str, float]] = lambda _: {},
) -> R:
    """Run ``call`` and push its duration and counts (failures are pushed by the DAGs'
    failure callback, which also covers timeouts and kills)."""
    started = time.perf_counter()
    result = call()
    push_success(job, step, time.perf_counter() - started, counts(result), loaded_until(result))
    return result


def materialized_counts(result: dict[str, Any]) -> list[Count]:
    """Rows read and keys written per feature view, from a materialization's metadata."""
    return [
        (view, kind, value[kind])
        for view, value in result.get("views", {}).items()
        for kind in ("rows", "keys_written")
    ]


def loaded_until(result: dict[str, Any]) -> dict[str, float]:
    """The event time each feature view is now loaded up to, as Unix seconds."""
    from datetime import datetime

    return {
        view: datetime.fromisoformat(value["end"]).timestamp()
        for view, value in result.get("views", {}).items()
    }


def push_gauges(job: str, step: str, labels: dict[str, str], values: dict[str, float]) -> None:
    """Push a few named gauges with the same labels (the drift report's figures)."""
    from prometheus_client import Gauge

    def fill(registry: Any) -> None:
        for name, value in values.items():
            Gauge(name, name.replace("_", " "), list(labels), registry=registry).labels(
                **labels
            ).set(value)

    _push(job, step, fill)
