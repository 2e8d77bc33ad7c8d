"""The scoring app's guards, without a model registry: it starts while the registry hangs,
reports why it is not ready without naming hosts, keeps its last good model, refuses
oversized bodies before authentication, and answers out-of-range timestamps with 422.

Redis is a port nothing listens on (refused at once), so the scoring path's 503s are real.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from fraud_platform.devstack.services import free_port
from inference_pipeline.api.app import create_app
from inference_pipeline.model import ModelHolder
from inference_pipeline.online_features import EntityPlan, ServingPlan, ViewPlan
from inference_pipeline.settings import ApiSettings, ModelSettings
from tests.unit.inference_pipeline.test_scoring import FEATURES, booster, metadata

KEY = "unit-key"


@pytest.fixture(autouse=True)
def _no_redis(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("REDIS_CONNECTION_STRING", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("FEAST_REGISTRY_PATH", f"sqlite:///{tmp_path / 'registry.db'}")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def plan() -> ServingPlan:
    """The test model's plan, with entity keys Redis could be asked for."""
    entities = (
        EntityPlan(
            "card_id", (ViewPlan("card_view", ("amount_mean",)),), (b"f1",), key_of=str.encode
        ),
        EntityPlan(
            "merchant_id",
            (ViewPlan("merchant_view", ("fraud_rate",)),),
            (b"f2",),
            key_of=str.encode,
        ),
    )
    return ServingPlan("p", "svc", entities, (), FEATURES, ())


class Registry:
    """Answers of a model registry: hangs until released, then serves ``version``."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked = threading.Event()
        self.version: str | None = "1"
        self.unanswered = 0

    def find_version(self, name: str, alias: str) -> str | None:
        self.asked.set()
        self.unanswered += 1
        if not self.release.wait(20):
            raise ConnectionError("http://mlflow.internal:5000 did not answer")
        self.unanswered -= 1
        return self.version

    def load(self, name: str, version: str):
        if version == "broken":
            raise OSError("s3://artifacts.internal:9000 refused")
        return booster(), metadata()


def app_with(registry: Registry, **api):
    holder = ModelHolder(
        ModelSettings(refresh_seconds=0.05),
        lambda service: plan(),
        load=registry.load,
        find_version=registry.find_version,
    )
    return create_app(ApiSettings(api_key=KEY, **api), ModelSettings(refresh_seconds=0.05), holder)


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def body(**overrides) -> dict:
    return {
        "transaction_id": "t1",
        "card_id": "c1",
        "merchant_id": "m1",
        "amount": 10.0,
        "timestamp": "2026-03-02T12:00:00Z",
        **overrides,
    }


def test_starts_while_the_registry_hangs_then_serves_and_keeps_the_last_good_model() -> None:
    registry = Registry()
    with TestClient(app_with(registry)) as client:
        registry.asked.wait(10)
        # The registry has not answered yet, and the process is up and says why.
        assert registry.unanswered == 1
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["detail"].startswith("model:")
        scored = client.post("/v1/score", json=body(), headers={"X-API-Key": KEY})
        assert scored.status_code == 503 and scored.headers["Retry-After"] == "1"
        registry.release.set()
        wait_for(lambda: client.get("/readyz").status_code == 200)
        assert client.get("/readyz").json()["model"]["version"] == "1"
        registry.version = "broken"  # the alias moves to a version that fails
        time.sleep(0.3)
        ready = client.get("/readyz").json()
        assert ready["model"]["version"] == "1"  # the last good model keeps serving
        assert "internal" not in json.dumps(ready)


def test_readiness_reports_redis_without_failing_and_names_no_address() -> None:
    registry = Registry()
    registry.release.set()
    with TestClient(app_with(registry)) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200)
        ready = client.get("/readyz")
        assert ready.json()["redis"].startswith("Redis: ")
        scored = client.post("/v1/score", json=body(), headers={"X-API-Key": KEY})
        assert scored.status_code == 503 and scored.json()["detail"].startswith("Redis: ")
        for answer in (ready.text, scored.text):
            assert "127.0.0.1" not in answer and "localhost" not in answer


def test_oversized_bodies_get_413_before_authentication() -> None:
    registry = Registry()
    registry.release.set()
    settings = ApiSettings(api_key=KEY)
    with TestClient(app_with(registry)) as client:
        declared = client.post(
            "/v1/score/batch",
            content=b"x" * (settings.body_limit + 1),
            headers={"content-type": "application/json"},
        )
        assert declared.status_code == 413 and "larger than" in declared.json()["detail"]

        def chunks():
            for _ in range(settings.body_limit // 65536 + 2):
                yield b" " * 65536

        streamed = client.post(
            "/v1/score/batch", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        # The largest valid batch (every string at its maximum length) fits under the cap.
        longest = body(
            transaction_id="t" * 128,
            card_id="c" * 128,
            merchant_id="m" * 128,
            amount=123456789.123,
            latitude=-89.123456789,
            longitude=-179.123456789,
            channel="o" * 32,
        )
        batch = json.dumps({"transactions": [longest] * settings.batch_max_transactions})
        assert len(batch.encode()) <= settings.body_limit
        answer = client.post(
            "/v1/score/batch",
            content=batch,
            headers={"content-type": "application/json", "X-API-Key": KEY},
        )
        assert answer.status_code == 503  # read and scored; Redis is down here


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+01:00",
        "2100-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
    ],
)
def test_timestamps_outside_the_accepted_range_get_422_with_a_reason(timestamp: str) -> None:
    registry = Registry()
    registry.release.set()
    with TestClient(app_with(registry), raise_server_exceptions=False) as client:
        answer = client.post(
            "/v1/score", json=body(timestamp=timestamp), headers={"X-API-Key": KEY}
        )
        assert answer.status_code == 422, answer.text
        error = answer.json()["detail"][0]
        assert error["loc"][-1] == "timestamp" and "timestamp" in error["msg"]
        spec = client.get("/openapi.json").json()
        described = spec["components"]["schemas"]["Transaction"]["properties"]["timestamp"]
        assert "730 days ago" in described["description"]
