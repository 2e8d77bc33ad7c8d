"""The Feast repo against real feature tables on S3: `feast apply` (from Python and from the
CLI, without warnings), the feature service's feature list, bad definitions that fail
naming what is wrong, and the request-time function on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feature_pipeline.feature_store import (
    FeatureDefinitionError,
    apply_definitions,
    load_definitions,
    open_store,
)
from tests.feature_repo.conftest import CARD_WINDOWS, FEATURE_REPO, MERCHANT_WINDOWS

pytestmark = pytest.mark.integration

CARD_TRANSACTION_FEATURES = [
    *[
        f"{stat}_{w}"
        for w in CARD_WINDOWS
        for stat in ("txn_count", "amount_sum", "amount_mean", "amount_max")
    ],
    "distinct_merchants_24h",
    "seconds_since_prev_txn",
    "distance_from_prev_km",
    "speed_from_prev_kmh",
    "last_latitude",
    "last_longitude",
    "last_amount",
    "last_txn_timestamp",
]
CARD_PROFILE_FEATURES = ["issue_timestamp", "credit_limit", "home_latitude", "home_longitude"]
MERCHANT_RISK_FEATURES = [
    f"merchant_{stat}_{w}"
    for w in MERCHANT_WINDOWS
    for stat in ("txn_count", "fraud_count", "fraud_rate")
]
REQUEST_FEATURES = [
    "amount_to_mean_30d_ratio",
    "amount_z_like_30d",
    "seconds_since_last_txn",
    "distance_from_home_km",
    "distance_from_last_txn_km",
    "implied_speed_kmh",
    "card_age_days",
]


def copy_repo(tmp_path: Path) -> Path:
    target = tmp_path / "feature_repo"
    shutil.copytree(FEATURE_REPO, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_apply_registers_every_definition(applied) -> None:
    assert applied["feature_views"] == [
        "card_profile_features",
        "card_transaction_features",
        "merchant_risk_features",
    ]
    assert applied["on_demand_feature_views"] == ["transaction_request_features"]
    assert set(applied["sources"]) == set(applied["feature_views"])
    store = open_store()
    ttls = {view.name: view.ttl for view in store.list_feature_views()}
    assert ttls == {
        "card_transaction_features": timedelta(days=30),
        "card_profile_features": timedelta(days=3650),
        "merchant_risk_features": timedelta(days=30),
    }
    assert {e.name: e.join_key for e in store.list_entities()} == {
        "card": "card_id",
        "merchant": "merchant_id",
    }


def test_feature_service_lists_expected_features(applied) -> None:
    service = open_store().get_feature_service("fraud_detection_v1")
    listed = {p.name: [f.name for f in p.features] for p in service.feature_view_projections}
    assert listed == {
        "card_transaction_features": CARD_TRANSACTION_FEATURES,
        "card_profile_features": CARD_PROFILE_FEATURES,
        "merchant_risk_features": MERCHANT_RISK_FEATURES,
        "transaction_request_features": REQUEST_FEATURES,
    }
    names = [name for features in listed.values() for name in features]
    assert len(names) == len(set(names)) == applied["feature_services"]["fraud_detection_v1"]


def test_view_over_a_missing_column_fails_naming_view_and_column(applied, tmp_path) -> None:
    repo = copy_repo(tmp_path)
    module = repo / "card_features.py"
    text = module.read_text()
    anchor = 'Field(name="last_amount", dtype=Float64),'
    assert anchor in text
    module.write_text(
        text.replace(anchor, anchor + '\n        Field(name="chargebacks_90d", dtype=Int64),')
    )
    with pytest.raises(FeatureDefinitionError) as failure:
        apply_definitions(repo)
    assert failure.value.problems == [
        "card_transaction_features: column 'chargebacks_90d' (feature chargebacks_90d) is not "
        "in the Parquet schema of "
        f"{applied['sources']['card_transaction_features']['path']}"
    ]
    view = open_store().get_feature_view("card_transaction_features")
    assert "chargebacks_90d" not in {f.name for f in view.features}, "nothing was applied"


def test_source_path_that_does_not_exist_fails_naming_it(applied, monkeypatch) -> None:
    monkeypatch.setenv("FRAUD_S3_PREFIX", os.environ["FRAUD_S3_PREFIX"] + "-nowhere")
    with pytest.raises(FeatureDefinitionError) as failure:
        apply_definitions()
    path = applied["sources"]["card_profile_features"]["path"]
    missing = [p for p in failure.value.problems if "card_profile_features" in p]
    assert missing == [
        f"card_profile_features: source path {path.replace('/silver/', '-nowhere/silver/')}"
        " does not exist (no Parquet files there)"
    ]
    assert len(failure.value.problems) == 3


def test_feast_cli_apply_prints_no_warning(applied) -> None:
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("feast")), "apply"],
        cwd=FEATURE_REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "warn" not in output.lower(), output


def test_request_features_compute_nulls_instead_of_failing(feast_env) -> None:
    (odfv,) = load_definitions().on_demand_feature_views
    function = odfv.feature_transformation.udf
    at = datetime(2026, 10, 3, 12, 0, tzinfo=UTC)
    issued = int(datetime(2026, 9, 3, 12, 0, tzinfo=UTC).timestamp())
    last = int(at.timestamp()) - 1800
    out = function(
        {
            "amount": [150.0, 40.0, 40.0, None],
            "latitude": [48.8566, None, 48.8566, 48.8566],
            "longitude": [2.3522, None, 2.3522, 2.3522],
            "transaction_timestamp": [at, at, at.replace(tzinfo=None), at],
            "amount_mean_30d": [50.0, 50.0, 40.0, None],
            "amount_max_30d": [100.0, 100.0, 40.0, None],
            "last_latitude": [51.5074, 51.5074, 48.8566, None],
            "last_longitude": [-0.1278, -0.1278, 2.3522, None],
            "last_txn_timestamp": [last, last, int(at.timestamp()), None],
            "issue_timestamp": [issued, issued, issued, None],
            "home_latitude": [48.8566, 48.8566, None, None],
            "home_longitude": [2.3522, 2.3522, None, None],
        }
    )
    assert out["amount_to_mean_30d_ratio"] == [3.0, 0.8, 1.0, None]
    assert out["amount_z_like_30d"] == [2.0, -0.2, 0.0, None]
    assert out["seconds_since_last_txn"] == [1800.0, 1800.0, 0.0, None]
    assert out["distance_from_home_km"][0] == 0.0
    assert out["distance_from_home_km"][1:] == [None, None, None]
    assert out["distance_from_last_txn_km"][0] == pytest.approx(343.9, abs=0.5)
    assert out["distance_from_last_txn_km"][1:] == [None, 0.0, None]
    assert out["implied_speed_kmh"][0] == pytest.approx(343.9 * 2, abs=1)
    assert out["implied_speed_kmh"][1:] == [None, None, None], "no location, no time elapsed"
    assert out["card_age_days"] == [30.0, 30.0, 30.0, None]


def test_on_demand_view_transforms_slice_by_slice_as_whole(feast_env, monkeypatch) -> None:
    import pyarrow as pa

    from fraud_platform import offline_store

    (odfv,) = load_definitions().on_demand_feature_views
    at = datetime(2026, 10, 3, 12, 0, tzinfo=UTC)
    rows = 7
    # Rows 0-2 have a card state, rows 3-6 none: with slices of 3, the second and third
    # slices' outputs are all null (Arrow's null type) and must take the first's type.
    known = [True] * 3 + [False] * 4
    table = pa.table(
        {
            "amount": [10.0 * (i + 1) for i in range(rows)],
            "latitude": [48.85] * rows,
            "longitude": [2.35] * rows,
            "transaction_timestamp": pa.array([at] * rows, pa.timestamp("us", "UTC")),
            **{
                f"card_transaction_features__{name}": [value if k else None for k in known]
                for name, value in {
                    "amount_mean_30d": 20.0,
                    "amount_max_30d": 60.0,
                    "last_latitude": 51.5,
                    "last_longitude": -0.13,
                    "last_txn_timestamp": at.timestamp() - 600,
                }.items()
            },
            **{
                f"card_profile_features__{name}": [value if k else None for k in known]
                for name, value in {
                    "issue_timestamp": at.timestamp() - 86_400,
                    "home_latitude": 48.85,
                    "home_longitude": 2.35,
                }.items()
            },
            "not_an_input": ["x"] * rows,
        }
    )
    whole = odfv.transform_arrow(table, full_feature_names=True)
    monkeypatch.setattr(offline_store, "TRANSFORM_ROWS", 3)
    sliced = offline_store.OwnInputsOnly(odfv).transform_arrow(table, full_feature_names=True)
    assert sliced.to_pydict() == whole.to_pydict()
    assert sliced.column("transaction_request_features__amount_to_mean_30d_ratio").to_pylist()[
        :4
    ] == [0.5, 1.0, 1.5, None]
    assert sliced.schema.field("transaction_request_features__card_age_days").type == pa.float64()
