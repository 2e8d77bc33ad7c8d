"""The fault suite's plumbing: it runs only when asked for (``-m faults``, as ``make
faults`` does), so ``make test`` does not run it a second time; each test records its
fault's outcome through the ``fault`` fixture, the outcome's ``survived`` is the test's
verdict, and the session leaves all outcomes for ``tests.faults.report``.

The served world (features in Redis, a champion in MLflow, the API as a process) is the
scoring suite's, shared here rather than built a second way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.faults.outcomes import RESULTS_FILE, FaultOutcome, save
from tests.inference.conftest import serving_world, world  # noqa: F401 (fixtures)

OUTCOME = pytest.StashKey[FaultOutcome]()
_outcomes: list[FaultOutcome] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "faults" in (config.option.markexpr or ""):
        return
    skipped = [item for item in items if item.get_closest_marker("faults")]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if not item.get_closest_marker("faults")]


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> Callable[..., FaultOutcome]:
    """``fault(name, action, expected)``: the outcome this test fills in."""

    def record(name: str, action: str, expected: str) -> FaultOutcome:
        outcome = FaultOutcome(name, action, expected, test=request.node.nodeid)
        request.node.stash[OUTCOME] = outcome
        return outcome

    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if not item.get_closest_marker("faults"):
        return report
    outcome = item.stash.get(OUTCOME, None)
    if report.when == "setup" and report.failed and outcome is None:
        outcome = FaultOutcome(item.name, "(setup failed)", "", test=item.nodeid)
        item.stash[OUTCOME] = outcome
    if outcome is None or report.when == "teardown" and report.passed:
        return report
    if report.failed:
        outcome.survived = False
        reason = str(call.excinfo.value).strip().splitlines() if call.excinfo else []
        outcome.observed += f" | FAILED ({report.when}): {reason[0][:300] if reason else '?'}"
    elif report.when == "call":
        outcome.survived = True
    if (report.when == "call" or report.failed) and outcome not in _outcomes:
        _outcomes.append(outcome)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _outcomes:
        save(_outcomes, session.config.rootpath / os.environ.get("FAULTS_RESULTS", RESULTS_FILE))
