"""The daily consistency report on the real S3 server and offline store: logged vectors
equal to the point-in-time ones pass, a day with one changed value fails naming the
feature after every day's result is written, and a day with nothing logged is reported
as such."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings
from tests.integration.training_fixtures import (
    TEST_START,
    TrainingEnv,
    training_environment,
    use_training_prefix,
)

pytestmark = pytest.mark.integration
SERVICE = "fraud_detection_v1"
EQUAL, CHANGED, SILENT = date(2031, 1, 1), date(2031, 1, 2), date(2031, 1, 3)


@pytest.fixture(scope="module")
def training_env(stack_env, spark, tmp_path_factory) -> Iterator[TrainingEnv]:
    yield from training_environment(stack_env, spark, tmp_path_factory)


@pytest.fixture(autouse=True)
def _training_prefix(training_env: TrainingEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    use_training_prefix(training_env, monkeypatch)


def _log(day: date, frame: pd.DataFrame) -> None:
    """Write ``frame`` where the API logs the vectors it served on ``day``."""
    from fraud_platform.s3 import arrow_filesystem
    from inference_pipeline.feature_log import log_prefix

    s3 = S3Settings()
    frame.to_parquet(
        f"{s3.bucket}/{log_prefix(s3, day.isoformat())}/part-0.parquet",
        filesystem=arrow_filesystem(s3),
        index=False,
    )


def _served(feature: str) -> pd.DataFrame:
    """A day of transactions with their offline vectors, as the API would have logged them."""
    from fraud_platform.point_in_time import read_transactions
    from inference_pipeline.consistency import offline_vectors

    start = datetime(TEST_START.year, TEST_START.month, TEST_START.day, tzinfo=UTC)
    day = read_transactions(start, start + timedelta(days=1)).head(200)
    served = day.rename(columns={"event_timestamp": "transaction_timestamp"})[
        ["transaction_id", "card_id", "merchant_id", "transaction_timestamp"]
    ]
    vectors = offline_vectors(served, SERVICE)
    assert feature in vectors.columns and len(vectors) == 200
    return vectors


def test_a_changed_value_fails_its_day_after_every_result_is_written() -> None:
    from inference_pipeline.consistency import ConsistencyAlert, report_days

    feature = "card_transaction_features__txn_count_24h"
    served = _served(feature)
    _log(EQUAL, served)
    changed = served.copy()
    changed.loc[7, feature] = changed.loc[7, feature] + 1
    _log(CHANGED, changed)

    with pytest.raises(ConsistencyAlert, match=f"{CHANGED}: 0.995000 of 200 .*txn_count_24h"):
        report_days([EQUAL, CHANGED, SILENT], service=SERVICE)

    s3 = S3Settings()
    results = {
        day: json.loads(
            s3_client(s3)
            .get_object(
                Bucket=s3.bucket,
                Key=s3.key("monitoring", "consistency", f"date={day}", "result.json"),
            )["Body"]
            .read()
        )
        for day in (EQUAL, CHANGED, SILENT)
    }
    assert results[EQUAL]["served"] == results[EQUAL]["found_offline"] == 200
    assert results[EQUAL]["equal_share"] == 1.0
    assert results[CHANGED]["equal_share"] == 0.995
    assert results[CHANGED]["differing_per_feature"]["txn_count_24h"] == 0.005
    assert [d["transaction_id"] for d in results[CHANGED]["first_differences"]] == [
        served.loc[7, "transaction_id"]
    ]
    assert results[CHANGED]["to_repair"] == {
        "card_id": [str(served.loc[7, "card_id"])],
        "merchant_id": [],
    }
    assert results[EQUAL]["to_repair"] == {"card_id": [], "merchant_id": []}
    assert results[SILENT] == {"day": SILENT.isoformat(), "served": 0, "equal_share": None}


@pytest.fixture
def scratch_redis(monkeypatch: pytest.MonkeyPatch):
    """The stack's Redis, database 9, empty before and after."""
    import os

    from fraud_platform.redis_client import redis_client

    monkeypatch.setenv("REDIS_CONNECTION_STRING", f"{os.environ['REDIS_CONNECTION_STRING']},db=9")
    with redis_client() as client:
        client.flushdb()
        yield client
        client.flushdb()


def test_repair_restores_a_card_to_the_state_a_backfill_builds(scratch_redis) -> None:
    from feature_pipeline.event_backfill import apply, backfill, repair
    from fraud_platform.event_state import (
        TransactionEvent,
        card_command,
        card_keys,
        micros,
        state_digest,
    )

    until = datetime(TEST_START.year, TEST_START.month, TEST_START.day, tzinfo=UTC)
    assert backfill(until)["transactions"] > 1000
    rebuilt = state_digest(scratch_redis)
    before, after = card_keys("*")[1].split("*")
    card = sorted(scratch_redis.scan_iter(f"{before}*{after}", count=1000))[0].decode()
    card = card.removeprefix(before).removesuffix(after)

    # Missed events: the card's keys lost, then repaired by applying its events again.
    scratch_redis.unlink(*card_keys(card))
    assert state_digest(scratch_redis) != rebuilt
    repaired = repair(until, [card], [])
    assert repaired["inserted"] == repaired["transactions"] > 0
    assert state_digest(scratch_redis) == rebuilt

    # An event bronze does not have: applying again keeps it, a reset removes it.
    phantom = TransactionEvent(
        "phantom-1", card, "m-x", micros(until) - 60_000_000, 10.0, None, None
    )
    assert apply([card_command("a", phantom)]) == 1
    repair(until, [card], [])
    assert state_digest(scratch_redis) != rebuilt
    reset = repair(until, [card], [], reset=True)
    assert reset["keys_deleted"] == 2
    assert state_digest(scratch_redis) == rebuilt
