"""The Great Expectations gates on real Spark frames, with results stored on the real S3 server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from feature_pipeline.validation import (
    GateThresholds,
    ValidationGateError,
    ValidationReport,
    docs_key,
    enforce,
    result_key,
    validate,
)
from feature_pipeline.validation.expectations import expectations_for
from feature_pipeline.validation.gates import BRONZE_TRANSACTIONS
from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings

pytestmark = pytest.mark.integration

WINDOW_START = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW_END = datetime(2026, 3, 2, tzinfo=UTC)
TRANSACTION_SCHEMA = (
    "transaction_id string, card_id string, merchant_id string, amount double, "
    "currency string, merchant_category string, channel string, latitude double, "
    "longitude double, event_timestamp timestamp"
)
ROWS = 20


def _transactions(n: int = ROWS) -> list[dict]:
    return [
        {
            "transaction_id": f"tx20260301{i:08d}",
            "card_id": f"card-{i % 7}",
            "merchant_id": f"m-{i % 5}",
            "amount": 10.0 + i,
            "currency": "EUR",
            "merchant_category": "grocery",
            "channel": "online" if i % 3 else "card_present",
            "latitude": 48.0 + i / 100,
            "longitude": 2.0 + i / 100,
            "event_timestamp": WINDOW_START + timedelta(hours=i),
        }
        for i in range(n)
    ]


def _frame(spark, rows: list[dict]):
    columns = [field.split()[0] for field in TRANSACTION_SCHEMA.split(", ")]
    return spark.createDataFrame([tuple(r[c] for c in columns) for r in rows], TRANSACTION_SCHEMA)


def _keys(s3: S3Settings, prefix: str) -> list[str]:
    listed = s3_client(s3).list_objects_v2(Bucket=s3.bucket, Prefix=prefix)
    return [obj["Key"] for obj in listed.get("Contents", [])]


@pytest.fixture(scope="module")
def s3(stack_env: dict[str, str]) -> S3Settings:
    return S3Settings()


@pytest.fixture(scope="module")
def good_report(spark, s3: S3Settings) -> ValidationReport:
    return validate(
        _frame(spark, _transactions()),
        "bronze_transactions",
        expected_rows=ROWS,
        window_end=WINDOW_END,
        s3=s3,
        run_id="good",
    )


@pytest.fixture(scope="module")
def bad_report(spark, s3: S3Settings) -> ValidationReport:
    rows = _transactions()
    rows[3]["transaction_id"] = rows[2]["transaction_id"]
    rows[5]["card_id"] = None
    rows[8]["amount"] = -4.5
    return validate(
        _frame(spark, rows),
        "bronze_transactions",
        expected_rows=ROWS,
        window_end=WINDOW_END,
        s3=s3,
        run_id="bad",
    )


def test_good_bronze_frame_passes(spark, good_report: ValidationReport) -> None:
    expected = len(
        expectations_for(
            BRONZE_TRANSACTIONS,
            GateThresholds(),
            schema=_frame(spark, _transactions(1)).schema,
            expected_rows=ROWS,
            window_end=WINDOW_END,
        )
    )
    assert good_report.success, good_report.summary()
    assert good_report.statistics["evaluated"] == expected >= 15
    assert good_report.statistics["successful"] == expected
    assert good_report.statistics["unsuccessful"] == 0
    assert good_report.failures == []
    assert good_report.row_count == ROWS
    assert json.loads(json.dumps(good_report.as_dict()))["gate"] == "bronze_transactions"


def test_results_and_data_docs_are_stored_on_s3(
    good_report: ValidationReport, s3: S3Settings
) -> None:
    key = result_key(s3, "bronze_transactions", "good")
    assert good_report.result_uri == f"s3://{s3.bucket}/{key}"
    body = s3_client(s3).get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    stored = json.loads(body)
    assert stored["success"] is True
    assert stored["meta"]["gate"] == "bronze_transactions"

    docs = _keys(s3, docs_key(s3, "bronze_transactions", "good") + "/")
    index = docs_key(s3, "bronze_transactions", "good") + "/index.html"
    assert index in docs
    assert good_report.docs_uri == f"s3://{s3.bucket}/{index}"
    assert any(k.endswith(".html") and k != index for k in docs), "no validation page"


def test_broken_rows_fail_with_named_failures(bad_report: ValidationReport) -> None:
    assert not bad_report.success
    assert bad_report.statistics["unsuccessful"] == 3
    failures = "\n".join(bad_report.failures)
    assert "expect_column_values_to_be_unique(transaction_id)" in failures
    assert "expect_column_values_to_not_be_null(card_id)" in failures
    assert "expect_column_values_to_be_between(amount)" in failures
    assert "-4.5" in failures
    # The failed run's evidence is kept too.
    assert bad_report.result_uri and bad_report.docs_uri


def test_row_count_and_freshness_outside_tolerance_fail(spark, s3: S3Settings) -> None:
    report = validate(
        _frame(spark, _transactions()),
        "bronze_transactions",
        expected_rows=ROWS + 5,  # 20 rows against [23.75, 26.25]
        window_end=WINDOW_END + timedelta(days=3),  # newest event 3 days before the end
        s3=s3,
        run_id="volume",
    )
    assert not report.success
    assert report.statistics["unsuccessful"] == 2
    assert any(
        f.startswith("[volume] expect_table_row_count_to_be_between") and "observed 20" in f
        for f in report.failures
    ), report.failures
    assert any(
        f.startswith("[freshness] expect_column_max_to_be_between(event_timestamp)")
        for f in report.failures
    ), report.failures


def test_enforce_raises_with_the_summary(
    good_report: ValidationReport, bad_report: ValidationReport
) -> None:
    assert enforce(good_report) is good_report
    with pytest.raises(ValidationGateError) as raised:
        enforce(bad_report)
    assert raised.value.report is bad_report
    assert str(raised.value) == bad_report.summary()
    assert "FAILED" in str(raised.value)
    assert "expect_column_values_to_be_unique(transaction_id)" in str(raised.value)


def test_feature_gate_checks_compound_key_and_exact_count(spark, s3: S3Settings) -> None:
    created = WINDOW_END
    rows = []
    for i in range(6):
        counts = [i + 1, i + 2, i + 3]
        frauds = [0, 1, 1]
        rows.append(
            (
                f"m-{i % 2}",
                WINDOW_START + timedelta(hours=i // 2 * 2),
                created,
                *counts,
                *frauds,
                *(f / c for f, c in zip(frauds, counts, strict=True)),
            )
        )
    schema = (
        "merchant_id string, event_timestamp timestamp, created timestamp, "
        "txn_count_1d long, txn_count_7d long, txn_count_30d long, "
        "fraud_count_1d long, fraud_count_7d long, fraud_count_30d long, "
        "fraud_rate_1d double, fraud_rate_7d double, fraud_rate_30d double"
    )
    rows[5] = (rows[4][0], rows[4][1], *rows[5][2:])  # a second row for one merchant instant
    report = validate(
        spark.createDataFrame(rows, schema),
        "merchant_risk_features",
        expected_rows=5,
        window_end=WINDOW_END,
        s3=s3,
        run_id="features",
    )
    assert not report.success
    assert {f.split("(")[0].split(":")[0] for f in report.failures} == {
        "[uniqueness] expect_compound_columns_to_be_unique",
        "[volume] expect_table_row_count_to_equal",
    }, report.failures


def test_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_GX_VALIDITY", "0.95")
    monkeypatch.setenv("FRAUD_GX_ROW_COUNT_TOLERANCE", "0.1")
    thresholds = GateThresholds()
    assert thresholds.validity == 0.95
    assert thresholds.row_count_tolerance == 0.1
    assert thresholds.uniqueness == 1.0
