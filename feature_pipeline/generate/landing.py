"""Write generated feeds to the S3 landing zone as gzip JSON Lines, one object per partition.

JSON is built column-wise by Arrow kernels (no per-row Python), compressed at a low gzip
level, and partitions are serialised and uploaded concurrently: the kernels and zlib
release the GIL, the uploads wait on the network.

Keys are a function of the partition (and, for labels, of the generated window), so a
rerun of the same window overwrites its objects; objects of an earlier run of the same
window that the rerun no longer produces are deleted, so nothing is left duplicated.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from feature_pipeline.generate.config import GeneratorConfig
from feature_pipeline.generate.generator import GeneratedData, generate
from fraud_platform.layout import LANDING
from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from rich.progress import Progress

log = logging.getLogger(__name__)

PART = "part-00000.jsonl.gz"
GZIP_LEVEL = 1
BLOCK_ROWS = 250_000
"""Rows serialised at a time: bounds memory and keeps Arrow's 2 GiB string limit far off."""
MAX_WORKERS = 4
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


# --- JSON Lines ---------------------------------------------------------------------------


def _needs_escape(strings: pa.Array) -> bool:
    return bool(pc.any(pc.match_substring_regex(strings, _NEEDS_ESCAPE)).as_py())


def _escaped(strings: pa.Array) -> pa.Array:
    """JSON string tokens through the json module: the slow path, for values that need it."""
    return pa.array(
        [None if v is None else json.dumps(v) for v in strings.to_pylist()], type=pa.string()
    )


def json_tokens(column: pa.Array) -> tuple[pa.Array, bool]:
    """One JSON value per row, as text, and whether the caller must add the quotes.

    Plain strings without nulls are returned bare, so the quotes go into the separators
    of the row template instead of costing a pass over every value. Nulls and non-finite
    floats become ``null``.
    """
    kind = column.type
    if pa.types.is_dictionary(kind):
        # Encode the few distinct values once, then gather them per row.
        values, bare = json_tokens(column.dictionary)
        if bare and column.null_count:
            values, bare = pc.binary_join_element_wise('"', values, '"', ""), False
        tokens = values.take(column.indices)
        return (tokens, True) if bare else (pc.fill_null(tokens, "null"), False)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_date(kind):
        strings = column.cast(pa.string())
        if _needs_escape(strings):
            return pc.fill_null(_escaped(strings), "null"), False
        if strings.null_count == 0:
            return strings, True
        return pc.fill_null(pc.binary_join_element_wise('"', strings, '"', ""), "null"), False
    if pa.types.is_timestamp(kind):
        # ISO-8601 in UTC with a Z; the stored instant is UTC whatever the zone label.
        naive = column.cast(pa.timestamp(kind.unit)).cast(pa.timestamp("s"), safe=False)
        text = pc.utf8_replace_slice(naive.cast(pa.string()), start=10, stop=11, replacement="T")
        if column.null_count == 0:
            return pc.binary_join_element_wise(text, "Z", ""), True
        return pc.fill_null(pc.binary_join_element_wise('"', text, 'Z"', ""), "null"), False
    if pa.types.is_boolean(kind):
        tokens = pc.if_else(column, "true", "false")
    elif pa.types.is_floating(kind):
        tokens = pc.if_else(
            pc.is_finite(column), column.cast(pa.string()), pa.scalar(None, pa.string())
        )
    elif pa.types.is_integer(kind):
        tokens = column.cast(pa.string())
    else:
        raise TypeError(f"no JSON encoding for Arrow type {kind}")
    return pc.fill_null(tokens, "null"), False


def _member_tokens(column: pa.Array, prefix: str, suffix: str) -> pa.Array:
    """``prefix + value + suffix`` per row; for dictionaries, on the few distinct values."""
    if pa.types.is_dictionary(column.type):
        values, bare = json_tokens(column.dictionary)
        if column.null_count:
            nulls = pa.array([None], type=pa.string())
            if bare:
                values = pc.binary_join_element_wise('"', values, '"', "")
            values = pa.concat_arrays([values, nulls])
            index = pc.fill_null(column.indices.cast(pa.int64()), len(values) - 1)
            members = pc.binary_join_element_wise(prefix, pc.fill_null(values, "null"), suffix, "")
            return members.take(index)
        quote = '"' if bare else ""
        members = pc.binary_join_element_wise(prefix + quote, values, quote + suffix, "")
        return members.take(column.indices)
    tokens, bare = json_tokens(column)
    quote = '"' if bare else ""
    return pc.binary_join_element_wise(prefix + quote, tokens, quote + suffix, "")


def jsonl_bytes(table: pa.Table) -> bytes:
    """The rows of ``table`` as JSON Lines.

    Each column becomes ``"name":value`` tokens (the braces folded into the first and last),
    then one join with a separator builds the lines: Arrow joins arrays with a separator
    about twice as fast as it interleaves arrays with literals.
    """
    if table.num_rows == 0:
        return b""
    names = table.column_names
    members = [
        _member_tokens(
            table.column(name).combine_chunks(),
            ("{" if i == 0 else "") + json.dumps(name) + ":",
            "}\n" if i == len(names) - 1 else "",
        )
        for i, name in enumerate(names)
    ]
    lines = pc.binary_join_element_wise(*members, ",")
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4
    )
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]].tobytes()


def jsonl_gz(table: pa.Table, level: int = GZIP_LEVEL) -> bytes:
    """Gzip-compressed JSON Lines, serialised block by block into one gzip stream."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    chunks = [
        compressor.compress(jsonl_bytes(table.slice(start, BLOCK_ROWS)))
        for start in range(0, table.num_rows, BLOCK_ROWS)
    ]
    chunks.append(compressor.flush())
    return b"".join(chunks)


# --- Partitions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One object to write: its feed, its key and the rows that go into it."""

    feed: str
    key: str
    table: pa.Table


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _by_date(table: pa.Table, timestamps: pd.Series) -> Iterator[tuple[date, pa.Table]]:
    """Split rows by the UTC date of ``timestamps`` (rows are reordered by date if needed)."""
    days = timestamps.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    if days.size and np.any(days[1:] < days[:-1]):
        order = np.argsort(days, kind="stable")
        table, days = table.take(pa.array(order)), days[order]
    bounds = np.flatnonzero(np.diff(days)) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, days.size], strict=True):
        if stop > start:
            day = date(1970, 1, 1) + timedelta(days=int(days[start]))
            yield day, table.slice(int(start), int(stop - start))


def window_tag(config: GeneratorConfig) -> str:
    """Names a generated window; label objects carry it (see :func:`landing_parts`)."""
    return f"{config.start_date:%Y%m%d}-{config.last_date:%Y%m%d}"


def landing_parts(data: GeneratedData, s3: S3Settings) -> list[Part]:
    """Every object of a generated data set, keyed by partition.

    Transactions: one object per event date. Labels: one object per label date *and*
    generated window, because the labels of successive windows fall on the same dates
    (chargebacks arrive weeks later) and a shared key would make each window's run erase
    the previous window's labels.
    """
    parts = [
        Part("cards", s3.key(LANDING, "reference", "cards", PART), _to_arrow(data.cards)),
        Part(
            "merchants", s3.key(LANDING, "reference", "merchants", PART), _to_arrow(data.merchants)
        ),
    ]
    tx = data.transactions
    for day, rows in _by_date(_to_arrow(tx), tx["event_timestamp"]):
        key = s3.key(LANDING, "transactions", f"event_date={day}", PART)
        parts.append(Part("transactions", key, rows))
    labels = data.labels
    label_part = f"part-{window_tag(data.config)}.jsonl.gz"
    for day, rows in _by_date(_to_arrow(labels), labels["label_timestamp"]):
        key = s3.key(LANDING, "labels", f"label_date={day}", label_part)
        parts.append(Part("labels", key, rows))
    return parts


def _stale_keys(
    client: S3Client, s3: S3Settings, config: GeneratorConfig, written: set[str]
) -> list[str]:
    """Objects an earlier run of the same window wrote that this run did not rewrite."""
    stale: list[str] = []
    for d in range(config.days):  # a day without transactions this time (tiny windows)
        key = s3.key(
            LANDING, "transactions", f"event_date={config.start_date + timedelta(d)}", PART
        )
        if key not in written and client.list_objects_v2(
            Bucket=s3.bucket, Prefix=key, MaxKeys=1
        ).get("KeyCount"):
            stale.append(key)
    suffix = f"/part-{window_tag(config)}.jsonl.gz"
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=s3.bucket, Prefix=s3.key(LANDING, "labels") + "/"):
        stale.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(suffix))
    return sorted(set(stale) - written)


def _upload(client: S3Client, bucket: str, part: Part) -> tuple[Part, int]:
    body = jsonl_gz(part.table)
    client.put_object(Bucket=bucket, Key=part.key, Body=body, ContentType="application/gzip")
    return part, len(body)


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    # On stderr, with the logs: stdout carries the run's metadata as JSON.
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:
        yield bar


def write_landing(
    data: GeneratedData,
    s3: S3Settings | None = None,
    progress: Progress | None = None,
    max_workers: int = MAX_WORKERS,
) -> dict[str, Any]:
    """Upload every partition of ``data`` and delete what a previous run left behind.

    Returns:
        Keys written, rows per table as written, compressed bytes and seconds.
    """
    started = time.perf_counter()
    s3 = s3 or S3Settings()
    client = s3_client(s3)
    parts = landing_parts(data, s3)
    task = progress.add_task("upload partitions", total=len(parts)) if progress else None
    written: list[str] = []
    rows_by_feed: dict[str, int] = {}
    n_bytes = 0
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = [pool.submit(_upload, client, s3.bucket, p) for p in parts]
        for future in as_completed(futures):
            part, size = future.result()
            written.append(part.key)
            rows_by_feed[part.feed] = rows_by_feed.get(part.feed, 0) + part.table.num_rows
            n_bytes += size
            if progress is not None and task is not None:
                progress.advance(task)
    stale = _stale_keys(client, s3, data.config, set(written))
    for start in range(0, len(stale), 1_000):
        batch = [{"Key": k} for k in stale[start : start + 1_000]]
        client.delete_objects(Bucket=s3.bucket, Delete={"Objects": batch, "Quiet": True})
    duration = time.perf_counter() - started
    log.info(
        "wrote %d objects (%.1f MB) to s3://%s in %.1fs, removed %d stale",
        len(written),
        n_bytes / 1e6,
        s3.bucket,
        duration,
        len(stale),
    )
    return {
        "bucket": s3.bucket,
        "keys_written": sorted(written),
        "keys_deleted": stale,
        "rows_written": rows_by_feed,
        "bytes_written": n_bytes,
        "write_s": round(duration, 3),
    }


def generate_to_landing(
    config: GeneratorConfig, s3: S3Settings | None = None, progress: bool = False
) -> dict[str, Any]:
    """Generate a window of data and land it on S3.

    Args:
        config: what to generate.
        s3: where to write; the environment's settings by default.
        progress: show rich progress bars (for the CLI).

    Returns:
        JSON-safe metadata: rows per table, fraud count, rate and per-scenario counts,
        date ranges, keys written, ``duration_s`` and ``rows_per_s``.
    """
    started = time.perf_counter()
    with _progress(progress) as bar:
        steps = ("reference", "genuine", "fraud", "frames")
        task = bar.add_task("generate", total=len(steps)) if bar else None

        def on_step(_: str) -> None:
            if bar is not None and task is not None:
                bar.advance(task)

        data = generate(config, on_step=on_step)
        written = write_landing(data, s3, progress=bar)
    duration = time.perf_counter() - started
    n_rows = len(data.transactions)
    return {
        **data.summary(),
        **written,
        "generate_s": round(data.duration_s, 3),
        "duration_s": round(duration, 3),
        "rows_per_s": round(n_rows / duration, 1) if duration > 0 else None,
    }


def held_back_day(today: date, config: GeneratorConfig | None = None) -> date:
    """The day a demo holds back from the feature pipeline: a settlement window and a day
    before ``today``, so that every label of the days before it has arrived by yesterday."""
    settlement = (config or GeneratorConfig()).settlement_window_days
    return today - timedelta(days=int(settlement) + 1)


def read_landing_day(day: date, s3: S3Settings | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A day's generated transactions and every label of them, read from ``landing/``
    (JSON Lines), whether or not the feature pipeline has taken them in yet."""
    import gzip
    import io

    from fraud_platform.s3 import list_keys

    s3 = s3 or S3Settings()
    client = s3_client(s3)

    def read(prefix: str) -> pd.DataFrame:
        frames = [
            pd.read_json(
                io.BytesIO(
                    gzip.decompress(client.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
                ),
                lines=True,
            )
            for key in list_keys(s3.key(prefix) + "/", s3)
            if key.endswith(".jsonl.gz")
        ]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    transactions = read(f"{LANDING}/transactions/event_date={day.isoformat()}")
    transactions["event_timestamp"] = pd.to_datetime(transactions["event_timestamp"], utc=True)
    labels = read(f"{LANDING}/labels")
    labels = labels[labels["transaction_id"].isin(transactions["transaction_id"])]
    return transactions, labels
