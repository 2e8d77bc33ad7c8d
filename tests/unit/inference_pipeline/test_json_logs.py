"""JSON log lines carry the request id, which the response echoes."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from fraud_platform.logs import bind_run_id, configure_logging
from inference_pipeline.api.metrics import ApiMetrics
from inference_pipeline.api.request_id import RequestIdMiddleware


@pytest.fixture(autouse=True)
def _restore_logging():
    """configure_logging is for entry points: undo it, and the bound ids, after a test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_every_line_of_a_request_carries_its_id(capsys) -> None:
    configure_logging()
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)

    @app.get("/ping")
    def ping() -> dict:
        logging.getLogger("fraud.test").info("scored %d", 1)
        return {"ok": True}

    with TestClient(app) as client:
        given = client.get("/ping", headers={"X-Request-ID": "abc-123"})
        made = client.get("/ping")
        bad = client.get("/ping", headers={"X-Request-ID": "no spaces allowed"})
    lines = [line for line in _lines(capsys.readouterr().err) if line["logger"] == "fraud.test"]
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    assert bad.headers["x-request-id"] != "no spaces allowed"
    assert [line["request_id"] for line in lines] == [
        "abc-123",
        made.headers["x-request-id"],
        bad.headers["x-request-id"],
    ]
    assert lines[0]["event"] == "scored 1" and lines[0]["level"] == "info"
    assert lines[0]["timestamp"].endswith("Z")


def test_the_access_line_follows_the_response_with_its_id_status_and_duration(capsys) -> None:
    configure_logging()
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware, access_log=True)

    @app.get("/missing")
    def missing() -> None:
        raise HTTPException(404, "no such thing")

    with TestClient(app) as client:
        response = client.get("/missing", headers={"X-Request-ID": "req-7"})
    [line] = [
        line
        for line in _lines(capsys.readouterr().err)
        if line["logger"] == "inference_pipeline.access"
    ]
    assert response.status_code == 404
    assert line["event"] == "GET /missing 404" and line["status"] == 404
    assert line["request_id"] == "req-7" and line["duration_ms"] > 0


def test_a_run_id_is_on_every_line_after_it_is_bound(capsys) -> None:
    configure_logging()
    run_id = bind_run_id(command="test")
    logging.getLogger("fraud.pipeline").warning("late rows: %s", 3)
    [line] = [
        line for line in _lines(capsys.readouterr().err) if line["logger"] == "fraud.pipeline"
    ]
    assert line["run_id"] == run_id and line["command"] == "test"
    assert line["event"] == "late rows: 3"


def test_metrics_are_exposed_from_the_apps_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Feast sets this variable for the whole process when a store opens (another test's).
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = ApiMetrics()
    metrics.set_model(("fraud-detector", "3", "champion"))
    metrics.set_model(("fraud-detector", "4", "champion"))
    text = metrics.exposition().decode()
    assert 'fraud_api_model_info{alias="champion",name="fraud-detector",version="4"} 1.0' in text
    assert 'version="3"' not in text
