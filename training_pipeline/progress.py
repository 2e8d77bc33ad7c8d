"""Progress of the training run's long steps, for a person watching the command line.

At the scale of the 10M-transaction month a run takes minutes: the point-in-time join,
hundreds of boosting rounds, the refit, the evaluation and the registry. The pipeline
announces each step (:func:`step`) and advances it; nothing is shown unless a display is
installed (:func:`shown`, which the CLI uses; the DAG and the notebook do not), so the
pipeline's code is the same with or without one.

The display is rich's progress bars. Log lines keep flowing above them: while the bars
are live, the JSON log handlers write through rich's stderr proxy instead of the stream
they were given, so a log line never tears a bar.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

if TYPE_CHECKING:
    from rich.console import Console

_display: ContextVar[Progress | None] = ContextVar("training_progress", default=None)


def _nothing(n: int = 1) -> None:
    """What advancing a step does when no display is shown."""


@contextmanager
def step(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """One long step: yields ``advance(n)``; with ``total`` None the bar only pulses. The
    step shows as complete when it ends, also when it ended before ``total`` (early
    stopping)."""
    display = _display.get()
    if display is None:
        yield _nothing
        return
    task = display.add_task(description, total=total)

    def advance(n: int = 1) -> None:
        display.advance(task, n)

    try:
        yield advance
    finally:
        done = display.tasks[task].completed if total is not None else 1
        display.update(task, total=max(done, 1), completed=max(done, 1))


@contextmanager
def shown(console: Console) -> Iterator[Progress]:
    """Show the steps started inside this block as progress bars on ``console``."""
    progress = Progress(
        SpinnerColumn(finished_text="[green]done[/]"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        redirect_stderr=True,
    )
    token = _display.set(progress)
    with progress:
        streams = _log_through(sys.stderr)
        try:
            yield progress
        finally:
            for handler, stream in streams:
                handler.setStream(stream)
            _display.reset(token)


def _log_through(stream: Any) -> list[tuple[logging.StreamHandler, Any]]:
    """Point the root logger's handlers that write to the stream rich proxies (stderr, in
    a terminal) at its proxy ``stream``; returns each handler with the stream to restore.
    Nothing is proxied when stderr is not a terminal: the bars then print once, at the
    end, and the log lines need no detour."""
    proxied = getattr(stream, "rich_proxied_file", None)
    if proxied is None:
        return []
    return [
        (handler, handler.setStream(stream))
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is proxied
    ]
