"""Run a gate on a Spark DataFrame with Great Expectations and keep the results beside the data.

Each call builds a throwaway (ephemeral) GX context: the suite is derived from the gate's
spec on every run, so there is no GX project folder to keep in sync with the code. The
gate runs as a GX checkpoint whose ``UpdateDataDocsAction`` builds the data docs into the
context's one site, a local temporary folder (GX 1.x has only filesystem site stores);
after the run the site is uploaded to ``validation/<gate>/<run_id>/data_docs/`` next to
the result JSON at ``validation/<gate>/<run_id>/result.json``, so that a failed run's
evidence outlives the machine it ran on.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import tempfile
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feature_pipeline.validation.expectations import expectations_for
from feature_pipeline.validation.gates import GateThresholds, get_gate
from feature_pipeline.validation.report import ValidationReport, describe_failure
from fraud_platform import layout
from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.expectations import Expectation
    from pyspark.sql import DataFrame

    from feature_pipeline.validation.gates import Gate

log = logging.getLogger(__name__)

DOCS_SITE = "local_site"
RESULT_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": 5}
"""Counts and percentages plus a few offending values: enough to name a failure, while
``SUMMARY`` and ``COMPLETE`` would add more Spark jobs per expectation."""


def result_key(s3: S3Settings, gate_name: str, run_id: str) -> str:
    """Key of a run's validation result JSON."""
    return s3.key(layout.VALIDATION, gate_name, run_id, "result.json")


def docs_key(s3: S3Settings, gate_name: str, run_id: str) -> str:
    """Key prefix of a run's data docs (their ``index.html`` is directly below)."""
    return s3.key(layout.VALIDATION, gate_name, run_id, "data_docs")


def _context(docs_dir: Path) -> EphemeralDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
        analytics_enabled=False,
        # Pipelines log; a progress bar per validation is noise in their output.
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _run_suite(
    context: EphemeralDataContext,
    gate: Gate,
    frame: DataFrame,
    expectations: list[Expectation],
    run_id: str,
) -> ExpectationSuiteValidationResult:
    """Validate through a checkpoint whose action builds the data docs."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    # persist=False: GX would cache the frame and never release it; validate() caches it
    # itself, for the duration of the run only.
    source = context.data_sources.add_spark(name="spark", persist=False)
    asset = source.add_dataframe_asset(name=gate.name)
    batch = asset.add_batch_definition_whole_dataframe("whole_dataframe")
    suite = context.suites.add(gx.ExpectationSuite(name=gate.name, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=gate.name, data=batch, suite=suite)
    )
    checkpoint = gx.Checkpoint(
        name=gate.name,
        validation_definitions=[definition],
        actions=[_docs_action()],
        result_format=RESULT_FORMAT,
    )
    context.checkpoints.add(checkpoint)
    result = checkpoint.run(
        batch_parameters={"dataframe": frame},
        run_id=RunIdentifier(run_name=run_id, run_time=datetime.now(UTC)),
    )
    return next(iter(result.run_results.values()))


@cache
def _docs_action_class() -> type:
    """GX's data docs action, made unable to fail the gate: the verdict must not depend on
    whether HTML could be rendered. Made once (GX registers each action type by name)."""
    from typing import Literal

    from great_expectations.checkpoint import UpdateDataDocsAction

    class SafeUpdateDataDocsAction(UpdateDataDocsAction):
        # GX tells action types apart by this Literal: a subclass must narrow it.
        type: Literal["fraud_safe_update_data_docs"] = "fraud_safe_update_data_docs"  # type: ignore[assignment]

        def run(self, checkpoint_result: Any, action_context: Any = None) -> dict:
            try:
                return super().run(checkpoint_result, action_context)
            except Exception:  # noqa: BLE001 (any renderer error only costs the docs)
                log.warning("data docs could not be built", exc_info=True)
                return {}

    # This module's annotations are strings; GX's (pydantic v1) models resolve them here.
    SafeUpdateDataDocsAction.update_forward_refs(Literal=Literal, Any=Any)
    return SafeUpdateDataDocsAction


def _docs_action() -> Any:
    return _docs_action_class()(name="update_data_docs", site_names=[DOCS_SITE])


def _upload_docs(client: Any, s3: S3Settings, docs_dir: Path, prefix: str) -> int:
    files = sorted(p for p in docs_dir.rglob("*") if p.is_file())
    for path in files:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        client.upload_file(
            str(path),
            s3.bucket,
            f"{prefix}/{path.relative_to(docs_dir).as_posix()}",
            ExtraArgs={"ContentType": content_type},
        )
    return len(files)


def _row_count(results: list[dict[str, Any]]) -> int | None:
    for result in results:
        config = result.get("expectation_config") or {}
        outcome = result.get("result") or {}
        if config.get("type", "").startswith("expect_table_row_count"):
            observed = outcome.get("observed_value")
            if isinstance(observed, int):
                return observed
    for result in results:
        count = (result.get("result") or {}).get("element_count")
        if isinstance(count, int):
            return count
    return None


def validate(
    frame: DataFrame,
    gate_name: str,
    *,
    expected_rows: int | None,
    window_end: datetime | None,
    s3: S3Settings,
    run_id: str,
    thresholds: GateThresholds | None = None,
    not_provided: frozenset[str] = frozenset(),
) -> ValidationReport:
    """Run the gate ``gate_name`` on ``frame`` and store its result and data docs on S3.

    Args:
        frame: The table as the run is about to publish it.
        gate_name: A key of ``GATES`` (``bronze_transactions``, ``card_transaction_features``).
        expected_rows: The row count the run's own bookkeeping predicts (bronze: read minus
            quarantined minus duplicates; features: distinct entity instants of the window);
            None skips the volume check.
        window_end: End of the run's window (naive means UTC); None skips freshness.
        s3: Where the ``validation/`` zone lives.
        run_id: The run's id; names the results' folder.
        thresholds: Tolerances; from ``FRAUD_GX_*`` variables when omitted.
        not_provided: Optional columns the source lacks entirely (no completeness check).

    Returns:
        The report. It does not raise on failure: pass it to ``enforce`` to stop the run.
    """
    started = time.perf_counter()
    gate = get_gate(gate_name)
    thresholds = thresholds or GateThresholds()
    expectations = expectations_for(
        gate,
        thresholds,
        schema=frame.schema,
        expected_rows=expected_rows,
        window_end=window_end,
        not_provided=not_provided,
    )
    log.info("gate %s: %d expectations on run %s", gate.name, len(expectations), run_id)
    with tempfile.TemporaryDirectory(prefix=f"gx-{gate.name}-") as tmp:
        docs_dir = Path(tmp) / "data_docs"
        meta = {
            "gate": gate.name,
            "thresholds": thresholds.model_dump(),
            "expected_rows": expected_rows,
            "window_end": window_end.isoformat() if window_end else None,
        }
        payload = _run_cached(_context(docs_dir), gate, frame, expectations, run_id, meta)
        result_uri, docs_uri = _store(s3, gate.name, run_id, payload, docs_dir)
    report = _report(payload, gate.name, run_id, result_uri, docs_uri)
    report.duration_s = time.perf_counter() - started
    log.log(logging.INFO if report.success else logging.ERROR, "%s", report.summary())
    return report


def _run_cached(
    context: EphemeralDataContext,
    gate: Gate,
    frame: DataFrame,
    expectations: list[Expectation],
    run_id: str,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Run the suite on ``frame`` (cached for the run: every expectation is at least one
    Spark job over it) and return the result as JSON, ``meta`` added to its own."""
    cached_here = not frame.is_cached
    if cached_here:
        frame.persist()
    try:
        validation = _run_suite(context, gate, frame, expectations, run_id)
    finally:
        if cached_here:
            frame.unpersist()
    # GX types ``meta`` as a closed TypedDict; it is a free-form dict at run time.
    result_meta: dict[str, Any] = validation.meta  # type: ignore[assignment]
    result_meta.update(meta)
    return validation.to_json_dict()


def _store(
    s3: S3Settings, gate: str, run_id: str, payload: dict[str, Any], docs_dir: Path
) -> tuple[str, str | None]:
    """Upload the result JSON and, when GX built them, the data docs; their URIs."""
    client = s3_client(s3)
    key = result_key(s3, gate, run_id)
    client.put_object(
        Bucket=s3.bucket,
        Key=key,
        ContentType="application/json",
        Body=json.dumps(payload, indent=2, default=str).encode(),
    )
    docs_uri = None
    if (docs_dir / "index.html").is_file():
        prefix = docs_key(s3, gate, run_id)
        uploaded = _upload_docs(client, s3, docs_dir, prefix)
        docs_uri = f"s3://{s3.bucket}/{prefix}/index.html"
        log.info("gate %s: %d data docs files at %s", gate, uploaded, docs_uri)
    return f"s3://{s3.bucket}/{key}", docs_uri


def _report(
    payload: dict[str, Any], gate: str, run_id: str, result_uri: str, docs_uri: str | None
) -> ValidationReport:
    """The report of a GX result: its statistics and a line per failed expectation."""
    results: list[dict[str, Any]] = payload.get("results", [])
    stats = payload.get("statistics", {})
    return ValidationReport(
        success=bool(payload.get("success")),
        gate=gate,
        run_id=run_id,
        statistics={
            "evaluated": int(stats.get("evaluated_expectations", 0)),
            "successful": int(stats.get("successful_expectations", 0)),
            "unsuccessful": int(stats.get("unsuccessful_expectations", 0)),
            "success_percent": round(float(stats.get("success_percent") or 0.0), 2),
        },
        failures=[describe_failure(r) for r in results if not r.get("success")],
        result_uri=result_uri,
        docs_uri=docs_uri,
        row_count=_row_count(results),
    )
