"""Served feature vectors, logged to S3 as Parquet: what the consistency job compares.

Every scored transaction's features (every feature of the model's feature service, the
model's inputs among them), its instant, ids, the model version and the probability are
buffered in memory by :meth:`FeatureLog.record` (column appends, no I/O on the hot path)
and written as one Parquet object per flush under ``logs/served_features/date=<day>/``:
every ``flush_rows`` rows or ``flush_seconds``, and at shutdown. A single PUT is atomic, so a
reader never sees half a file. The schema is Feast's feature-logging idea (one row per
served request, one column per feature) written by the API itself, because the scoring
path does not go through Feast's server.

Off by default (``FRAUD_FEATURE_LOG=true`` turns it on): a process without S3 credentials
still serves.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from inference_pipeline.model import ServedModel
    from inference_pipeline.online_features import OnlineFeatures
    from inference_pipeline.schemas import Transaction

log = logging.getLogger(__name__)

CONVERT_ROWS = 250
"""Rows converted to Arrow at a time when a flush builds its table (see :func:`to_table`)."""

LOG_ZONE = "logs"
SERVED_FEATURES = "served_features"


class FeatureLogSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    enabled: bool = Field(default=False, validation_alias="FRAUD_FEATURE_LOG")
    flush_rows: int = Field(default=50_000, ge=1, validation_alias="FRAUD_FEATURE_LOG_ROWS")
    flush_seconds: float = Field(default=60.0, gt=0, validation_alias="FRAUD_FEATURE_LOG_SECONDS")
    run: str = Field(
        default="",
        validation_alias="FRAUD_FEATURE_LOG_RUN",
        description="Optional sub-folder (a replay's run id).",
    )


def log_prefix(s3: S3Settings, day: str | None, run: str = "") -> str:
    """The key prefix of a day's logged vectors (of one run, if named; every day of it
    without a day)."""
    return s3.key(
        LOG_ZONE,
        SERVED_FEATURES,
        *([f"run={run}"] if run else []),
        *([f"date={day}"] if day else []),
    )


class FeatureLog:
    """An in-memory buffer of served vectors, flushed to S3 in the background."""

    def __init__(self, settings: FeatureLogSettings, s3: S3Settings | None = None) -> None:
        self.settings = settings
        self.s3 = s3 or S3Settings()
        self._columns: dict[str, list[Any]] = {}
        self._rows = 0
        self._since = time.monotonic()
        self._writes: set[asyncio.Task] = set()

    def record(
        self,
        model: ServedModel,
        transactions: Sequence[Transaction],
        features: OnlineFeatures,
        probabilities: np.ndarray,
    ) -> None:
        """Buffer one scored batch; start a flush when the buffer is due."""
        columns = self._columns
        if not columns:
            columns.update(
                {
                    name: []
                    for name in (
                        "transaction_id",
                        "card_id",
                        "merchant_id",
                        "transaction_timestamp",
                        "model_version",
                        "fraud_probability",
                    )
                }
            )
        names = [t.transaction_id for t in transactions]
        columns["transaction_id"] += names
        columns["card_id"] += [t.card_id for t in transactions]
        columns["merchant_id"] += [t.merchant_id for t in transactions]
        columns["transaction_timestamp"] += [t.timestamp for t in transactions]
        columns["model_version"] += [model.ref.version] * len(names)
        columns["fraud_probability"] += probabilities.tolist()
        for name in model.plan.feature_names:
            column = columns.get(name)
            if column is None:  # a feature the model gained since the last flush: nulls
                # before (not setdefault: it would build the list of nulls on every call).
                column = columns[name] = [None] * self._rows
            column.extend(features.values[name])
        self._rows += len(names)
        for column in columns.values():
            if len(column) < self._rows:
                column.extend([None] * (self._rows - len(column)))
        if (
            self._rows >= self.settings.flush_rows
            or time.monotonic() - self._since >= self.settings.flush_seconds
        ):
            task = asyncio.get_running_loop().create_task(self.flush())
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def flush(self) -> None:
        """Write what is buffered (off the event loop); a failed write is logged and the
        rows are dropped rather than grown without bound."""
        columns, rows = self._columns, self._rows
        self._columns, self._rows, self._since = {}, 0, time.monotonic()
        if rows:
            try:
                await asyncio.to_thread(self._write, columns)
            except Exception:  # logging must never fail scoring
                log.exception("served features: %d rows not logged", rows)

    async def close(self) -> None:
        await self.flush()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def _write(self, columns: dict[str, list[Any]]) -> None:
        import pyarrow.parquet as pq

        from fraud_platform.s3 import arrow_filesystem

        table = to_table(columns)
        day = datetime.now(UTC).date().isoformat()
        key = (
            f"{log_prefix(self.s3, day, self.settings.run)}/"
            f"part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.parquet"
        )
        pq.write_table(table, f"{self.s3.bucket}/{key}", filesystem=arrow_filesystem(self.s3))
        log.info("served features: %d rows -> s3://%s/%s", table.num_rows, self.s3.bucket, key)


def to_table(columns: dict[str, list[Any]]) -> pa.Table:
    """The buffered columns as one Arrow table, converted :data:`CONVERT_ROWS` rows at a
    time with the GIL handed back between slices.

    Arrow converts each Python list holding the GIL, and the event loop waits for it
    meanwhile: a minute of scores at 1,000 a second converted column by column stalled the
    loop up to 14 to 32 ms at a time (``python -m benchmarks.feature_log_flush``; in
    slices, at most 2.3 ms). A slice holds
    it for about 1 ms, and ``time.sleep(0)`` lets the loop take it at once instead of
    after the interpreter's 5 ms switch interval. Slices whose values are all null infer
    Arrow's null type: the concatenation promotes them; slices whose types cannot be
    unified (which the scoring path does not produce) are converted whole instead.
    """
    import pyarrow as pa

    rows = len(next(iter(columns.values()), []))
    slices = []
    for first in range(0, rows, CONVERT_ROWS):
        last = first + CONVERT_ROWS
        slices.append(pa.table({name: values[first:last] for name, values in columns.items()}))
        time.sleep(0)
    if not slices:
        return pa.table(columns)
    try:
        return pa.concat_tables(slices, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.table(columns)
