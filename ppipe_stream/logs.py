"""Structured logging for a run: JSON lines into ``log.jsonl`` in the run folder,
and warnings (pretty) on standard error.

Owns structlog's configuration and routing of the standard library's loggers
(aiokafka) into the same file. Nothing here decides *what* is logged.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import IO, Any

import structlog

__all__ = ["configure_logging", "close_logging"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_state: dict[str, Any] = {"file": None, "handler": None}


def _console_tee(min_level: int):
    renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    def tee(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        if _LEVELS.get(event_dict.get("level", "info"), 20) >= min_level:
            shown = {k: v for k, v in event_dict.items() if k not in ("exc_info", "exception")}
            print(renderer(logger, method, shown), file=sys.stderr)
        return event_dict

    return tee


def configure_logging(run_dir: Path | None, *, console_level: str = "warning") -> None:
    """Send structlog events to ``run_dir/log.jsonl`` (when given) and those at
    ``console_level`` or above to standard error."""
    close_logging()
    sink: IO[str]
    if run_dir is not None:
        sink = open(run_dir / "log.jsonl", "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        _state["file"] = sink
        handler = logging.StreamHandler(sink)
        handler.setFormatter(logging.Formatter(
            '{"timestamp": "%(asctime)s", "level": "%(levelname)s", "logger": "%(name)s", '
            '"event": %(message)r}'))
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
            _console_tee(_LEVELS[console_level]),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sink),
        cache_logger_on_first_use=False,
    )


def close_logging() -> None:
    handler = _state.get("handler")
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        _state["handler"] = None
    sink = _state.get("file")
    if sink is not None:
        structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
        sink.close()
        _state["file"] = None
