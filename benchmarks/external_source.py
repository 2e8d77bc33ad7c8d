"""External-shaped transaction sources: what a team brings, written the ways they write it.

``simulate`` makes transactions in the shape of the public simulated card-fraud datasets
(integer customer and terminal ids, a fraud flag, no location): frauds from three
scenarios (large amounts, compromised terminals for 28 days, compromised cards whose
amounts jump for 14 days), so a model has something to find. ``write`` saves them in one
of ``SHAPES`` (pandas, Polars, DuckDB or Spark Parquet in several timestamp units with or
without zone, CSV with common timestamp forms, a folder of many files) with the column
mapping that reads them back (``feature_pipeline.sources``). The conformance suite, the
scale benchmark and ``make byod-example`` use them.

    python -m benchmarks.external_source --out .local/byod --rows 200000 --days 60
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

COLUMNS = {
    "transaction_id": "TRANSACTION_ID",
    "card_id": "CUSTOMER_ID",
    "merchant_id": "TERMINAL_ID",
    "amount": "TX_AMOUNT",
    "event_timestamp": "TX_DATETIME",
}
FLAG = "TX_FRAUD"
OPTIONAL = {"currency": "CUR", "channel": "CHANNEL", "latitude": "LAT", "longitude": "LON"}


def _compromise(
    frame: pd.DataFrame, key: str, days: int, per_day: int, lasting: int, rng: np.random.Generator
) -> np.ndarray:
    """Rows whose ``key`` was compromised (``per_day`` a day) within ``lasting`` days."""
    keys = frame[key].to_numpy()
    day = frame["_day"].to_numpy()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    hit = np.zeros(len(frame), dtype=bool)
    population = int(keys.max()) + 1
    for start in range(days):
        for victim in rng.choice(population, size=per_day, replace=False):
            lo, hi = np.searchsorted(sorted_keys, [victim, victim + 1])
            rows = order[lo:hi]
            hit[rows[(day[rows] >= start) & (day[rows] < start + lasting)]] = True
    return hit


def simulate(
    rows: int, days: int, start: date, seed: int = 7, cards: int | None = None
) -> pd.DataFrame:
    """``rows`` transactions over ``days`` from ``start`` (pandas, nanosecond timestamps),
    sorted by time, with ``TX_FRAUD`` and ``TX_FRAUD_SCENARIO``."""
    rng = np.random.default_rng(seed)
    cards = cards or max(50, rows // (2 * days))
    terminals = 2 * cards
    card = rng.integers(0, cards, rows)
    mean = rng.uniform(5, 100, cards)[card]
    seconds = np.sort(rng.uniform(0, days * 86_400, rows))
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(rows),
            "TX_DATETIME": pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s"),
            "CUSTOMER_ID": card,
            # Each card shops at some thirty terminals near its own number.
            "TERMINAL_ID": (card * 2 + rng.integers(0, 30, rows)) % terminals,
            "TX_AMOUNT": np.round(np.abs(rng.normal(mean, mean / 2)), 2),
            "_day": (seconds // 86_400).astype(int),
        }
    )
    scenario = np.where(frame["TX_AMOUNT"] > 220, 1, 0)
    scenario[(scenario == 0) & _compromise(frame, "TERMINAL_ID", days, 2, 28, rng)] = 2
    stolen = _compromise(frame, "CUSTOMER_ID", days, 3, 14, rng) & (rng.random(rows) < 1 / 3)
    frame.loc[stolen & (scenario == 0), "TX_AMOUNT"] *= 5
    scenario[stolen & (scenario == 0)] = 3
    frame["TX_FRAUD"] = (scenario > 0).astype(int)
    frame["TX_FRAUD_SCENARIO"] = scenario
    return frame.drop(columns="_day")


def with_ids(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Identifiers as integers (``int``), numbers as text (``text``: "1", "10", "2"),
    UUIDs (``uuid``) or non-ASCII text of mixed lengths (``unicode``)."""
    formats: dict[str, Callable[[int], str]] = {
        "text": str,
        "uuid": lambda n: f"{n:08x}-0000-4000-8000-{n * 7919:012x}",
        "unicode": lambda n: f"carte-é-{n}" if n % 2 else f"日本{n}",
    }
    if kind == "int":
        return frame
    out = frame.copy()
    for column in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"):
        out[column] = [formats[kind](int(n)) for n in out[column]]
    return out


def with_optional(frame: pd.DataFrame) -> pd.DataFrame:
    """The optional fields a richer export has: currency, channel and a location."""
    rng = np.random.default_rng(1)
    return frame.assign(
        CUR="eur",
        CHANNEL=np.where(rng.random(len(frame)) < 0.3, "online", "card_present"),
        LAT=np.round(rng.uniform(43, 51, len(frame)), 4),
        LON=np.round(rng.uniform(-1, 7, len(frame)), 4),
    )


@dataclass(frozen=True)
class Written:
    """A written source: its mapping file and the rows it holds."""

    mapping: Path
    rows: int


def _pandas(frame: pd.DataFrame, folder: Path, zone: str | None) -> tuple[Path, dict]:
    if zone:
        frame = frame.assign(
            TX_DATETIME=frame["TX_DATETIME"].dt.tz_localize("UTC").dt.tz_convert(zone)
        )
    frame.to_parquet(folder / "transactions.parquet")  # nanoseconds: pandas' default
    return folder / "transactions.parquet", {"format": "parquet"}


def _polars(frame: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    import polars as pl

    data = pl.from_pandas(frame).with_columns(
        pl.col("TX_DATETIME").dt.cast_time_unit("us").dt.replace_time_zone("UTC")
    )
    data.write_parquet(folder / "transactions.parquet")
    return folder / "transactions.parquet", {"format": "parquet"}


def _arrow_millis(frame: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    index = table.schema.get_field_index("TX_DATETIME")
    table = table.set_column(
        index, "TX_DATETIME", table["TX_DATETIME"].cast(pa.timestamp("ms"), safe=False)
    )
    pq.write_table(table, folder / "transactions.parquet")
    return folder / "transactions.parquet", {"format": "parquet"}


def _duckdb(frame: pd.DataFrame, folder: Path, kind: str) -> tuple[Path, dict]:
    """DuckDB's own writer: ``TIMESTAMP`` (micros, no zone), ``TIMESTAMPTZ`` or
    ``TIMESTAMP_NS``."""
    import duckdb

    path = folder / "transactions.parquet"
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("source", frame)
        connection.execute(
            f"COPY (SELECT * REPLACE (CAST(TX_DATETIME AS {kind}) AS TX_DATETIME) FROM source)"
            f" TO '{path}' (FORMAT parquet)"
        )
    return path, {"format": "parquet"}


def _folder(frame: pd.DataFrame, folder: Path, files: int) -> tuple[Path, dict]:
    target = folder / "transactions"
    target.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        frame.iloc[part].to_parquet(target / f"part-{i:05d}.parquet")
    return target, {"format": "parquet"}


def _csv(frame: pd.DataFrame, folder: Path, form: str) -> tuple[Path, dict]:
    ts = frame["TX_DATETIME"]
    text = {
        "iso": lambda: ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "offset": lambda: ts.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris").astype(str),
        "epoch_seconds": lambda: (ts.astype("int64") / 1e9).round(6).astype(str),
        "epoch_millis": lambda: (ts.astype("int64") // 1_000_000).astype(str),
        "pattern": lambda: ts.dt.strftime("%d/%m/%Y %H:%M:%S"),
    }[form]()
    path = folder / "transactions.csv"
    frame.assign(TX_DATETIME=text).to_csv(path, index=False)
    formats = {
        "epoch_seconds": "epoch_seconds",
        "epoch_millis": "epoch_millis",
        "pattern": "dd/MM/yyyy HH:mm:ss",
    }
    return path, {"format": "csv", "timestamp_format": formats.get(form)}


SHAPES: dict[str, Callable[[pd.DataFrame, Path], tuple[Path, dict]]] = {
    "pandas_ns": lambda f, d: _pandas(f, d, None),
    "pandas_ns_zone": lambda f, d: _pandas(f, d, "Europe/Paris"),
    "polars_us_utc": _polars,
    "arrow_ms": _arrow_millis,
    "duckdb_timestamp": lambda f, d: _duckdb(f, d, "TIMESTAMP"),
    "duckdb_timestamptz": lambda f, d: _duckdb(f, d, "TIMESTAMPTZ"),
    "duckdb_timestamp_ns": lambda f, d: _duckdb(f, d, "TIMESTAMP_NS"),
    "folder_of_files": lambda f, d: _folder(f, d, 12),
    "csv_iso": lambda f, d: _csv(f, d, "iso"),
    "csv_offset": lambda f, d: _csv(f, d, "offset"),
    "csv_epoch_seconds": lambda f, d: _csv(f, d, "epoch_seconds"),
    "csv_epoch_millis": lambda f, d: _csv(f, d, "epoch_millis"),
    "csv_pattern": lambda f, d: _csv(f, d, "pattern"),
}
"""Writers by name, each ``(frame, folder) -> (path, mapping keys)``. Spark-written
Parquet needs a session: see :func:`write_spark`."""


def mapping(
    path: Path | str, keys: dict[str, Any], optional: bool = False, delay_days: float = 3.0
) -> dict[str, Any]:
    """The column mapping of a written source (labels from the fraud flag)."""
    columns = {**COLUMNS, **(OPTIONAL if optional else {})}
    body = {
        "path": str(path),
        **{k: v for k, v in keys.items() if v is not None},
        "columns": columns,
        "label": {"column": FLAG, "delay_days": delay_days},
    }
    return body


def write(frame: pd.DataFrame, shape: str, folder: Path, delay_days: float = 3.0) -> Written:
    """Write ``frame`` as ``shape`` under ``folder``, with ``mapping.json`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    path, keys = SHAPES[shape](frame, folder)
    return _save(folder, mapping(path, keys, "LAT" in frame, delay_days), len(frame))


def write_spark(spark: Any, frame: pd.DataFrame, folder: Path, delay_days: float = 3.0) -> Written:
    """Spark's own writer: a folder of part files with ``_SUCCESS``, micros with zone."""
    target = folder / "spark_transactions"
    micros = frame.assign(TX_DATETIME=frame["TX_DATETIME"].astype("datetime64[us]"))
    spark.createDataFrame(micros).write.mode("overwrite").parquet(str(target))
    return _save(
        folder, mapping(target, {"format": "parquet"}, "LAT" in frame, delay_days), len(frame)
    )


def _save(folder: Path, body: dict[str, Any], rows: int) -> Written:
    path = folder / "mapping.json"
    path.write_text(json.dumps(body, indent=2))
    return Written(path, rows)


app = typer.Typer(add_completion=False)


@app.command()
def main(
    out: Annotated[Path, typer.Option(help="Folder to write the source and its mapping to.")],
    rows: Annotated[int, typer.Option(min=100)] = 200_000,
    days: Annotated[int, typer.Option(min=14)] = 60,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"])] = datetime(2026, 1, 1),
    shape: Annotated[str, typer.Option(help=f"One of {sorted(SHAPES)}.")] = "pandas_ns",
    ids: Annotated[str, typer.Option(help="int, text, uuid or unicode.")] = "int",
    seed: int = 7,
) -> None:
    """Write a simulated external source and print its mapping's path and windows."""
    frame = with_ids(simulate(rows, days, start.date(), seed), ids)
    written = write(frame, shape, out)
    first = start.date()
    print(
        json.dumps(
            {
                "mapping": str(written.mapping),
                "rows": written.rows,
                "frauds": int(frame[FLAG].sum()),
                "first_day": first.isoformat(),
                "last_day": (first + timedelta(days=days - 1)).isoformat(),
            }
        )
    )


if __name__ == "__main__":
    app()
