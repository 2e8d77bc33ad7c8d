"""What a fault left on S3, counted from the stored objects themselves (not from a run's
own report): rows per table, keys seen twice, data files per partition, leftovers of a
run (staging output, leases), and digests of a table's content."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date

from feature_pipeline import bronze
from feature_pipeline.compute import FEATURE_TABLES
from feature_pipeline.lease import LEASES
from feature_pipeline.publish import TableRef
from fraud_platform import layout
from fraud_platform.s3 import list_keys, s3_client
from fraud_platform.settings import S3Settings

RUN_TIME_COLUMNS = ("ingested_at", "created")
"""Columns that hold the time of the run that wrote a row: left out of digests."""


def put_landing(day: date, name: str, body: bytes, s3: S3Settings | None = None) -> None:
    """One landing object of the transactions feed for ``day``, bytes as given."""
    s3 = s3 or S3Settings()
    key = s3.key(layout.LANDING, "transactions", f"event_date={day}", name)
    s3_client(s3).put_object(Bucket=s3.bucket, Key=key, Body=body)


def transactions(
    day: date, count: int, bad_share: float = 0.0, seed: int = 0
) -> tuple[list[str], int]:
    """``count`` JSON lines of the day's transactions, ``bad_share`` of them bad in one of
    the ways the quarantine names (a duplicate id among them); and how many are bad."""
    rng = random.Random(seed)
    bad_every = round(1 / bad_share) if bad_share else 0
    spoilers = [
        lambda r: {**r, "amount": -1.0},
        lambda r: {**r, "transaction_id": None},
        lambda r: {**r, "event_timestamp": "yesterday at noon"},
        lambda r: {**r, "amount": "abc"},
        lambda r: {**r, "transaction_id": "d-0"},  # a duplicate of the first good record
    ]
    lines = []
    for i in range(count):
        seconds = rng.randrange(86_400)
        record = {
            "transaction_id": f"d-{i}",
            "card_id": f"c{rng.randrange(50_000)}",
            "merchant_id": f"m{rng.randrange(2_000)}",
            "amount": round(rng.uniform(1, 500), 2),
            "currency": "EUR",
            "merchant_category": "grocery",
            "channel": "card_present",
            "latitude": 48.85,
            "longitude": 2.35,
            "event_timestamp": f"{day}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
            f"{seconds % 60:02d}Z",
        }
        if bad_every and i % bad_every == bad_every - 1:
            kind = (i // bad_every) % (len(spoilers) + 1)
            if kind == len(spoilers):
                lines.append(json.dumps(record)[:60])  # malformed JSON, cut mid-record
            else:
                lines.append(json.dumps(spoilers[kind](record)))
        else:
            lines.append(json.dumps(record))
    return lines, count // bad_every if bad_every else 0


def gzipped(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)


@dataclass
class Stored:
    """A feed's published state for a window, counted from S3."""

    bronze: int
    distinct_keys: int
    quarantined: int
    files_per_partition: dict[str, int]
    leftovers: list[str]
    """Staging objects and leases: hidden from readers, but a finished run leaves none."""

    def lost(self, landed: int) -> int:
        """Landed records that are neither in bronze nor in the quarantine."""
        return landed - self.bronze - self.quarantined

    @property
    def duplicated(self) -> int:
        return self.bronze - self.distinct_keys


def stored(spark, feed: bronze.Feed, day: date, s3: S3Settings | None = None) -> Stored:
    from pyspark.sql import functions as F

    s3 = s3 or S3Settings()

    def read(table: TableRef):
        if not [k for k in list_keys(table.key(s3) + "/", s3) if k.endswith(".parquet")]:
            return None
        frame = spark.read.parquet(table.uri(s3))
        column = feed.partition_column if table.zone == layout.BRONZE else "source_date"
        return frame.where(F.col(column).cast("string") == day.isoformat())

    good, bad = read(feed.bronze), read(feed.quarantine)
    files: dict[str, int] = {}
    for table in (feed.bronze, feed.quarantine):
        for key in list_keys(table.key(s3) + "/", s3):
            if key.endswith(".parquet") and "/_" not in key[len(table.key(s3)) :]:
                folder = key.rsplit("/", 1)[0].removeprefix(s3.key() + "/")
                files[folder] = files.get(folder, 0) + 1
    leftovers = [
        k
        for zone in (layout.BRONZE, layout.QUARANTINE)
        for k in list_keys(s3.key(zone, layout.STAGING) + "/", s3)
    ] + list_keys(s3.key(LEASES) + "/", s3)
    return Stored(
        bronze=good.count() if good is not None else 0,
        distinct_keys=good.select(feed.key).distinct().count() if good is not None else 0,
        quarantined=bad.count() if bad is not None else 0,
        files_per_partition=files,
        leftovers=leftovers,
    )


def digests(spark, day: date, s3: S3Settings | None = None) -> dict[str, str]:
    """sha256 of each published table's rows of ``day`` (sorted, run-time columns left
    out, source files named below the S3 prefix, so that copies of a day under two
    prefixes compare), for the transactions' bronze and quarantine and the feature tables."""
    from feature_pipeline.compute import read_bronze

    s3 = s3 or S3Settings()
    tables = [bronze.TRANSACTIONS.bronze, bronze.TRANSACTIONS.quarantine, *FEATURE_TABLES]
    out = {}
    for table in tables:
        if not [k for k in list_keys(table.key(s3) + "/", s3) if k.endswith(".parquet")]:
            out[f"{table.zone}/{table.name}"] = "no data file"
            continue
        frame = read_bronze(spark, table, s3, day, day)
        if table is bronze.TRANSACTIONS.quarantine:
            frame = frame.where(frame.source_date == day.isoformat())
        kept = [c for c in frame.columns if c not in RUN_TIME_COLUMNS]
        root = s3.s3a_uri() + "/"
        rows = sorted(
            json.dumps(_below(row.asDict(), root), default=str, sort_keys=True)
            for row in frame.select(*kept).collect()
        )
        out[f"{table.zone}/{table.name}"] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


def _below(row: dict[str, object], root: str) -> dict[str, object]:
    """``row`` with its ``source_file`` (if any) relative to ``root``."""
    source = row.get("source_file")
    if isinstance(source, str):
        return {**row, "source_file": source.removeprefix(root)}
    return row
