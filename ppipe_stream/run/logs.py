"""Structured logging for a run: JSON lines into ``log.jsonl`` in the run folder,
and warnings (pretty) on standard error.

Owns structlog's configuration and routing of the standard library's loggers
(aiokafka) into the same file, and the last guard on secrets: every value
given as ``secrets`` (the Kafka password) is replaced by ``***`` in whatever
is written, whoever logged it. Nothing here decides *what* is logged.

Library noise (aiokafka's ``NotLeaderForPartitionError ... retrying``) goes to
the log file, never to the console: the standard library's last-resort handler,
which prints a warning to standard error when no handler is set, never sees an
aiokafka record. A command made of several runs (``ppipe bench``) opens a
:func:`session_logging` folder: between and around its runs, events and library
records go to that folder's ``log.jsonl``, and each run's own log comes back to
it when the run ends.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import structlog

__all__ = ["configure_logging", "close_logging", "session_logging", "LIBRARY_LOGGERS"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_state: dict[str, Any] = {"file": None, "handler": None, "session": None}
LIBRARY_LOGGERS = ("aiokafka", "kafka")  # their records: the log file only, never the console
_quiet = logging.NullHandler()  # a handler of theirs, so logging's last resort never prints them
REDACTED = "***"


def _forms(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Each secret as written, and as it reads inside a repr, a JSON string, or both."""
    forms: set[str] = set()
    for secret in secrets:
        as_repr = repr(secret)[1:-1]
        forms.update((secret, as_repr, json.dumps(secret)[1:-1], json.dumps(as_repr)[1:-1]))
    return tuple(sorted(forms, key=len, reverse=True))


def _redact_text(text: str, forms: tuple[str, ...]) -> str:
    for form in forms:
        text = text.replace(form, REDACTED)
    return text


def _redact_value(value: Any, forms: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _redact_text(value, forms)
    if isinstance(value, dict):
        return {k: _redact_value(v, forms) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v, forms) for v in value)
    return value  # an exception is made text by dict_tracebacks, and redacted after it


def _redactor(secrets: tuple[str, ...]):
    """A structlog processor (last, on the rendered line) and a logging filter in one."""

    def processor(logger: Any, method: str, line: str) -> str:
        return _redact_text(line, secrets)

    return processor


class _RedactFilter(logging.Filter):
    """Formats a stdlib record (aiokafka's) once, with every secret replaced."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = _redact_text(message, self._secrets)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and any(s in logging.Formatter().formatException(record.exc_info)
                                   for s in self._secrets):
            record.exc_info, record.exc_text = None, None
        return True


def _console_tee(min_level: int):
    renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    def tee(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        if _LEVELS.get(event_dict.get("level", "info"), 20) >= min_level:
            shown = {k: v for k, v in event_dict.items() if k not in ("exc_info", "exception")}
            print(renderer(logger, method, shown), file=sys.stderr)
        return event_dict

    return tee


def configure_logging(run_dir: Path | None, *, console_level: str = "warning",
                      secrets: Iterable[str] = ()) -> None:
    """Send structlog events to ``run_dir/log.jsonl`` (when given) and those at
    ``console_level`` or above to standard error; ``secrets`` never reach either.
    The libraries' records (:data:`LIBRARY_LOGGERS`) go to the file alone."""
    _close()
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        if _quiet not in library.handlers:
            library.addHandler(_quiet)
    hidden = _forms(tuple(s for s in secrets if s))
    sink: IO[str]
    if run_dir is not None:
        sink = open(run_dir / "log.jsonl", "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        _state["file"] = sink
        handler = logging.StreamHandler(sink)
        handler.setFormatter(logging.Formatter(
            '{"timestamp": "%(asctime)s", "level": "%(levelname)s", "logger": "%(name)s", '
            '"event": %(message)r}'))
        if hidden:
            handler.addFilter(_RedactFilter(hidden))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
        _state["handler"] = handler
    else:
        sink = open("/dev/null", "w")  # noqa: SIM115
        _state["file"] = sink
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([_redact_events(hidden)] if hidden else []),
            _console_tee(_LEVELS[console_level]),
            structlog.processors.dict_tracebacks,
            *([_redact_events(hidden)] if hidden else []),
            structlog.processors.JSONRenderer(),
            *([_redactor(hidden)] if hidden else []),
        ],
        logger_factory=structlog.PrintLoggerFactory(sink),
        cache_logger_on_first_use=False,
    )


def _redact_events(forms: tuple[str, ...]):
    """Every string in an event (nested too) with every secret replaced."""

    def processor(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return {key: _redact_value(value, forms) for key, value in event_dict.items()}

    return processor


@contextmanager
def session_logging(folder: Path, *, console_level: str = "warning",
                    secrets: Iterable[str] = ()) -> Iterator[None]:
    """Log to ``folder/log.jsonl`` until the block ends, also between the runs inside
    it: a run's :func:`close_logging` hands the log back to this folder."""
    folder.mkdir(parents=True, exist_ok=True)
    outer = _state["session"]
    hidden = tuple(secrets)
    configure_logging(folder, console_level=console_level, secrets=hidden)
    _state["session"] = (folder, console_level, hidden)
    try:
        yield
    finally:
        _state["session"] = outer
        close_logging()


def close_logging() -> None:
    """End the run's log; inside a :func:`session_logging` block, log to its folder again."""
    _close()
    session = _state["session"]
    if session is not None:
        folder, console_level, secrets = session
        configure_logging(folder, console_level=console_level, secrets=secrets)


def _close() -> None:
    handler = _state.get("handler")
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        _state["handler"] = None
    sink = _state.get("file")
    if sink is not None:
        structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
        sink.close()
        _state["file"] = None
