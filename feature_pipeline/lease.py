"""Publish leases: one run at a time publishes a given partition of a given table.

Two runs of the same date (a retried task beside a manual backfill, the DAG's run beside
the CLI) would otherwise publish at once, one table of one and the next of the other, and
the counts of a date would stop reconciling. A lease is an S3 object per (table,
partition) created with a conditional write (``If-None-Match: *``: exactly one creator
wins, on AWS S3 and MinIO alike), renewed by its holder with ``If-Match`` on its own ETag,
and deleted when the run is done. A second run waits for it (up to ``wait_seconds``) and
then fails naming the holder; a lease whose holder died (kill -9, a lost container) is
taken over once it has not been renewed for ``ttl_seconds``, and the run that takes it
over learns the dead run's id (``dead_runs``), so that it can remove what that run staged.

Hand-written: no maintained Python library offers a lease on plain S3 conditional writes,
and the alternative (a SQL lock in the registry database) would tie the pipeline's
publishing to a database it does not otherwise need.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from botocore.exceptions import ClientError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraud_platform.s3 import list_keys, s3_client
from fraud_platform.settings import S3Settings

log = logging.getLogger(__name__)

LEASES = "_leases"
"""Folder of the lease objects, beside the zones (hidden from readers by its underscore)."""


class LeaseSettings(BaseSettings):
    """How long a lease lives without renewal, and how long a second run waits for one."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    ttl_seconds: float = Field(default=120.0, gt=0, validation_alias="FRAUD_LEASE_TTL_SECONDS")
    wait_seconds: float = Field(default=600.0, ge=0, validation_alias="FRAUD_LEASE_WAIT_SECONDS")


class LeaseHeldError(RuntimeError):
    """Another run holds the lease of a partition this run would publish."""


class Lease:
    """Leases on several names, taken in sorted order (two runs never deadlock), renewed
    in a background thread until released."""

    def __init__(
        self, names: list[str], run_id: str, s3: S3Settings, settings: LeaseSettings | None = None
    ) -> None:
        self.names = sorted(set(names))
        self.run_id = run_id
        self.s3 = s3
        self.settings = settings or LeaseSettings()
        self._client = s3_client(s3)
        self._etags: dict[str, str] = {}
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost: str | None = None
        """The name whose lease was lost (not renewed in time and taken over), if any."""
        self.taken_over: dict[str, str] = {}
        """Each name taken over from a dead holder, with that holder's run id."""

    def _key(self, name: str) -> str:
        return self.s3.key(LEASES, name + ".json")

    def _body(self) -> bytes:
        return json.dumps(
            {
                "run_id": self.run_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "renewed_at": datetime.now(UTC).isoformat(),
            }
        ).encode()

    def _put(self, name: str, **condition: str) -> bool:
        """A conditional write of our record; False when the condition does not hold."""
        try:
            answer = self._client.put_object(
                Bucket=self.s3.bucket, Key=self._key(name), Body=self._body(), **condition
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",
            ):
                return False
            raise
        self._etags[name] = answer["ETag"]
        return True

    def _holder(self, name: str) -> tuple[dict, str, float] | None:
        """The current record, its ETag and its age in seconds, or None if there is none."""
        try:
            answer = self._client.get_object(Bucket=self.s3.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        age = (datetime.now(UTC) - answer["LastModified"]).total_seconds()
        return json.loads(answer["Body"].read()), answer["ETag"], age

    def _take(self, name: str) -> None:
        deadline = time.monotonic() + self.settings.wait_seconds
        while True:
            if self._put(name, IfNoneMatch="*"):
                return
            holder = self._holder(name)
            if holder is None:
                continue  # released meanwhile: try again at once
            record, etag, age = holder
            if age > self.settings.ttl_seconds and self._put(name, IfMatch=etag):
                self.taken_over[name] = str(record.get("run_id"))
                log.warning(
                    "took over %s from run %s (not renewed for %.0f s)",
                    name,
                    record.get("run_id"),
                    age,
                )
                return
            if time.monotonic() >= deadline:
                raise LeaseHeldError(
                    f"{name} is being published by run {record.get('run_id')} (host "
                    f"{record.get('host')}, renewed {age:.0f} s ago); waited "
                    f"{self.settings.wait_seconds:.0f} s. Rerun when it has finished."
                )
            time.sleep(min(1.0, self.settings.ttl_seconds / 10))

    def _renew(self) -> None:
        while not self._stop.wait(self.settings.ttl_seconds / 3):
            for name in self.names:
                if not self._put(name, IfMatch=self._etags[name]):
                    self.lost = name
                    log.error("lost the lease of %s", name)

    def acquire(self) -> None:
        for name in self.names:
            self._take(name)
        self._renewer = threading.Thread(target=self._renew, name="lease-renewer", daemon=True)
        self._renewer.start()

    def check(self) -> None:
        """Raise if a lease was lost: publishing on would race its new holder."""
        if self.lost is not None:
            raise LeaseHeldError(
                f"the lease of {self.lost} was lost; nothing more is published by this run"
            )

    def dead_runs(self) -> set[str]:
        """The runs this lease was taken over from that hold no live lease anywhere.

        A run that died (kill -9) may have held other names, renewed in the same loop, so
        their records are as old as the one taken over; a run that is only slow but still
        renews some lease is alive, and what it staged is still its own.
        """
        if not self.taken_over:
            return set()
        folder = self.s3.key(LEASES) + "/"
        live: set[str] = set()
        for key in list_keys(folder, self.s3):
            if not key.endswith(".json"):
                continue
            holder = self._holder(key[len(folder) : -len(".json")])
            if holder is not None and holder[2] <= self.settings.ttl_seconds:
                live.add(str(holder[0].get("run_id")))
        # A run id names a staging folder: one that is empty or holds a "/" (a record
        # written by hand) would name a parent of other runs' folders.
        named = {run for run in self.taken_over.values() if run and "/" not in run}
        return named - live - {self.run_id}

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        for name, etag in self._etags.items():
            holder = self._holder(name)
            if holder is not None and holder[1] == etag:
                self._client.delete_object(Bucket=self.s3.bucket, Key=self._key(name))


@contextmanager
def leased(names: list[str], run_id: str, s3: S3Settings) -> Iterator[Lease]:
    """Hold the leases of ``names`` for the block (waiting for another run's first)."""
    lease = Lease(names, run_id, s3)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()
