"""JSON logs, one object a line, with the request or run id on every line.

structlog renders the standard library's records (ours, uvicorn's access log, libraries'),
so nothing in the code changes how it logs: ``logging.getLogger(__name__)`` as before.
The ids live in context variables (``structlog.contextvars``), bound per request by the
API's middleware and per run by the command-line entry points; every line logged while
one is bound carries it. Configured once, at an entry point, never at import.
"""

from __future__ import annotations

import atexit
import copy
import logging
import logging.config
import logging.handlers
import queue
import sys
import uuid
from collections.abc import Iterable
from typing import Any

import structlog

JSON_FORMATTER: dict[str, Any] = {
    "()": "fraud_platform.logs.json_formatter",
}
"""A ``logging.config`` formatter entry (uvicorn's ``log_config`` uses it too)."""


def json_formatter() -> logging.Formatter:
    """A formatter that renders any standard-library record as one JSON object, with the
    bound context variables, an ISO UTC timestamp, the level and the logger's name."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ExtraAdder(),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str),
        ],
    )


class BackgroundHandler(logging.handlers.QueueHandler):
    """Hands each record to a thread that renders it as JSON and writes it to stderr.

    For a server whose requests each log a line: rendering and writing one (some 0.1 ms)
    then happen off the event loop, while it waits for the network. The standard
    library's ``QueueHandler`` renders the message in the caller's thread but not the
    context variables (they are per thread), so ``prepare`` copies them onto the record,
    where the JSON renderer reads them as extra fields. The thread drains the queue at
    exit.
    """

    def __init__(self) -> None:
        super().__init__(queue.SimpleQueue())
        writer = logging.StreamHandler(sys.stderr)
        writer.setFormatter(json_formatter())
        self.listener = logging.handlers.QueueListener(self.queue, writer)
        self.listener.start()
        atexit.register(self.listener.stop)

    def stop(self) -> None:
        """Write what is queued and end the thread (done at exit otherwise)."""
        atexit.unregister(self.listener.stop)
        self.listener.stop()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        record.__dict__.update(structlog.contextvars.get_contextvars())
        return record


def logging_config(level: str = "INFO", background: bool = False) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of the project: JSON on stderr for every logger,
    uvicorn's included (its access log at INFO); written from a thread (``background``,
    see ``BackgroundHandler``) for servers."""
    stderr: dict[str, Any] = (
        {"()": BackgroundHandler}
        if background
        else {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": JSON_FORMATTER},
        "handlers": {"stderr": stderr},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure_logging(level: str = "INFO", quiet: Iterable[str] = ()) -> None:
    """Send every log record to stderr as JSON (call once, at an entry point); the
    ``quiet`` loggers (chatty libraries) from WARNING up only."""
    config = logging_config(level)
    config["loggers"].update({name: {"level": "WARNING"} for name in quiet})
    logging.config.dictConfig(config)


def bind_run_id(run_id: str | None = None, **fields: Any) -> str:
    """Bind a run id (a new one if not given) and other fields to every following line."""
    run_id = run_id or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(run_id=run_id, **fields)
    return run_id


def start_command(
    command: str, verbose: bool = False, quiet: Iterable[str] = (), **fields: Any
) -> str:
    """A command-line run's logging: JSON on stderr (DEBUG with ``verbose``), and a new
    run id, the command and ``fields`` on every line; returns the run id."""
    configure_logging("DEBUG" if verbose else "INFO", quiet)
    return bind_run_id(command=command, **fields)
