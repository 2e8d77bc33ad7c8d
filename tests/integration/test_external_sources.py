"""External sources as people have them, through the real Spark and S3 server: Parquet
timestamps of any unit and zone (pandas writes nanoseconds), and one-line errors naming the
column and the fix for what still cannot be read."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_pipeline import pipeline
from feature_pipeline.sources import SourceError, SourceMapping, mapped_raw_records
from fraud_platform.settings import S3Settings

pytestmark = pytest.mark.integration

DAY = date(2026, 5, 1)
MAPPING = (
    "path: {path}\nformat: parquet\n"
    "columns:\n  transaction_id: id\n  card_id: card\n  merchant_id: shop\n"
    "  amount: amt\n  event_timestamp: ts\n"
    "label:\n  column: fraud\n  delay_days: 1\n"
)


def frame(ts: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["e1", "e2"],
            "card": [1, 10],
            "shop": [7, 7],
            "amt": [10.5, 99.99],
            "ts": ts,
            "fraud": [0, 1],
        }
    )


def mapping_for(tmp_path: Path, data: Path) -> Path:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING.format(path=data))
    return mapping


@pytest.mark.parametrize("zone", [None, "Europe/Paris"])
def test_pandas_nanosecond_parquet_is_read(spark, tmp_path: Path, zone) -> None:
    # pandas' to_parquet writes TIMESTAMP(NANOS): Spark alone refuses it (PARQUET_TYPE_ILLEGAL).
    ts = pd.Series(
        pd.to_datetime(["2026-05-01 10:00:00.123456789", "2026-05-01 11:00:00.000000000"])
    )
    if zone:
        ts = ts.dt.tz_localize(zone)
    data = tmp_path / "pandas.parquet"
    frame(ts).to_parquet(data)
    assert pq.read_schema(data).field("ts").type.unit == "ns"

    transactions, labels = mapped_raw_records(
        spark, SourceMapping.load(mapping_for(tmp_path, data))
    )
    hours = 8 if zone else 10  # 10:00 in Paris (summer time) is 08:00 UTC
    times = {r.transaction_id: r.event_timestamp for r in transactions.collect()}
    # Nanoseconds are truncated to the microsecond, never rounded through a double.
    assert times == {
        "e1": f"2026-05-01T{hours:02d}:00:00.123456Z",
        "e2": f"2026-05-01T{hours + 1:02d}:00:00.000000Z",
    }
    known = {r.transaction_id: r.label_timestamp for r in labels.collect()}
    assert known["e1"] == f"2026-05-02T{hours:02d}:00:00.123456Z"


def test_unreadable_column_is_one_line_naming_it_and_the_fix(
    stack_env, spark, tmp_path: Path
) -> None:
    table = pa.Table.from_pandas(frame(pd.Series(pd.to_datetime(["2026-05-01 10:00"] * 2))))
    table = table.set_column(
        table.schema.get_field_index("ts"), "ts", pa.array([1, 2], pa.time64("us"))
    )
    data = tmp_path / "times.parquet"
    pq.write_table(table, data)
    with pytest.raises(SourceError) as error:
        pipeline.ingest(DAY, DAY, source=mapping_for(tmp_path, data), spark=spark)
    message = str(error.value)
    assert "\n" not in message
    assert "'ts' (mapped to event_timestamp) is time64[us]" in message
    assert "rewrite it" in message


def test_missing_column_is_one_line_naming_it(stack_env, spark, tmp_path: Path) -> None:
    data = tmp_path / "renamed.parquet"
    frame(pd.Series(pd.to_datetime(["2026-05-01 10:00"] * 2))).rename(
        columns={"amt": "amount"}
    ).to_parquet(data)
    with pytest.raises(
        SourceError,
        match=r"column 'amt' \(mapped to amount\) is not in .*"
        r"fix 'columns.amount'",
    ):
        pipeline.ingest(DAY, DAY, source=mapping_for(tmp_path, data), spark=spark)


def test_reference_tables_when_the_source_has_them(stack_env, spark, tmp_path: Path) -> None:
    data = tmp_path / "transactions.parquet"
    frame(pd.Series(pd.to_datetime(["2026-05-01 10:00", "2026-05-01 11:00"]))).to_parquet(data)
    cards = tmp_path / "cards.parquet"
    pd.DataFrame(
        {
            "card": [1, 10],
            "issued": pd.to_datetime(["2024-02-03", "2025-06-07"]),
            "limit": [1000.0, 2500.0],
            "lat": [48.8, 45.7],
            "lon": [2.3, 4.8],
        }
    ).to_parquet(cards)  # issue dates in nanoseconds
    merchants = tmp_path / "merchants.csv"
    merchants.write_text("shop,mcc,online\n7,grocery,false\n")
    mapping = mapping_for(tmp_path, data)
    mapping.write_text(
        mapping.read_text() + f"cards:\n  path: {cards}\n  format: parquet\n"
        "  columns:\n    card_id: card\n    issue_date: issued\n    credit_limit: limit\n"
        "    home_latitude: lat\n    home_longitude: lon\n"
        + f"merchants:\n  path: {merchants}\n  format: csv\n"
        "  columns:\n    merchant_id: shop\n    merchant_category: mcc\n    is_online: online\n"
    )
    feeds = pipeline.ingest(DAY, DAY, source=mapping, spark=spark)["feeds"]
    assert (feeds["cards"]["bronze"], feeds["merchants"]["bronze"]) == (2, 1)
    s3 = S3Settings()
    issued = {
        r.card_id: (str(r.issue_date), r.credit_limit, r.home_latitude)
        for r in spark.read.parquet(s3.s3a_uri("bronze", "cards")).collect()
    }
    assert issued == {"1": ("2024-02-03", 1000.0, 48.8), "10": ("2025-06-07", 2500.0, 45.7)}
