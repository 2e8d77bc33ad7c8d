from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from fraud_platform.runs import new_run_id


def test_run_id_is_the_utc_start_and_a_unique_suffix() -> None:
    started = datetime(2026, 3, 2, 11, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    first, second = new_run_id(started), new_run_id(started)
    assert re.fullmatch(r"20260302T100405-[0-9a-f]{8}", first)
    assert first != second
    assert new_run_id() > new_run_id(datetime(2020, 1, 1, tzinfo=UTC))
