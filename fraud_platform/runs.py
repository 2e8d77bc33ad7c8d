"""Run identifiers: one format for every pipeline run, so staging prefixes, validation
results and log lines of one run share a name that sorts by start time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def new_run_id(started: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSS-<8 hex>``: the start time (UTC) and a random suffix, unique even
    for runs started in the same second."""
    return f"{(started or datetime.now(UTC)).astimezone(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
