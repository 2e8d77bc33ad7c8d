"""The days an asset-triggered or manual run covers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

from fraud_platform.dag_defaults import days_extra, days_of_run, days_to_process


def test_folded_events_cover_the_union_of_their_days() -> None:
    extras = [
        days_extra(date(2026, 6, 3), date(2026, 6, 3)),
        days_extra(date(2026, 6, 1), date(2026, 6, 2)),
        {"end": "ignored"},
    ]
    assert days_to_process(extras, {}, None) == [
        date(2026, 6, 1),
        date(2026, 6, 2),
        date(2026, 6, 3),
    ]


def test_params_name_a_manual_range_and_the_fallback_is_last() -> None:
    params = {"first_day": "2026-06-05", "last_day": "2026-06-06"}
    assert days_to_process([], params, date(2026, 1, 1)) == [date(2026, 6, 5), date(2026, 6, 6)]
    assert days_to_process([], {"first_day": None}, date(2026, 1, 1)) == [date(2026, 1, 1)]


def test_a_manual_run_covers_the_day_before_its_logical_date() -> None:
    context = {
        "triggering_asset_events": {},
        "params": {},
        "data_interval_end": None,
        "logical_date": datetime(2026, 6, 3, tzinfo=UTC),
    }
    assert days_of_run(context) == [date(2026, 6, 2)]
    event = SimpleNamespace(extra=days_extra(date(2026, 6, 9), date(2026, 6, 9)))
    context["triggering_asset_events"] = {"silver": [event]}
    assert days_of_run(context) == [date(2026, 6, 9)]
