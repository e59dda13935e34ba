"""The exception tree of ppipe_stream.

Every error the tool raises on purpose derives from :class:`PpipeError`; only
``cli.py`` catches the root, prints one line and picks the exit code. Bad data
coming *from a pipeline* is never raised: the scorer counts it.

::

    PpipeError
     ├── UsageError          bad command-line arguments                (exit 2)
     ├── ScenarioError       a scenario file is wrong                  (exit 2)
     ├── DatasetError        a dataset cannot be read / a bad row      (exit 2)
     ├── BrokerError         a broker cannot be started or reached     (exit 1)
     ├── PipelineError       a pipeline could not be started / died    (exit 1)
     └── RunError            the run itself failed                     (exit 1)

It also owns :func:`first_leaf`, how any part of the package reads the one
error inside the exception groups anyio's task groups raise.

This module must not import anything from the rest of the package.
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "DatasetError",
    "PipelineError",
    "PpipeError",
    "RunError",
    "ScenarioError",
    "UsageError",
    "first_leaf",
    "shown",
]


def shown(value: object) -> str:
    """``value`` as text for a one-line message: as it is when printable, else escaped
    (a path with a newline in it must not break the line)."""
    text = str(value)
    return text if text.isprintable() else repr(text)[1:-1]


def first_leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (possibly nested) exception groups: the
    error as it was raised, for a caller that expects one error, not a group.
    An exception that is not a group (or an empty group) is returned as is."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class PpipeError(Exception):
    """Root of every error ppipe_stream raises on purpose.

    ``exit_code`` is what ``ppipe`` exits with when this error ends a command.
    """

    exit_code: int = 1


class UsageError(PpipeError):
    """Raised when the command line names something that does not exist or
    combines options that cannot go together."""

    exit_code = 2


class ScenarioError(PpipeError):
    """Raised when a scenario file cannot be read, parsed or validated.

    Carries the file, the key path (``$.load.rate``), the line when it could be
    found, and a hint (for example the closest known key for a typo).
    """

    exit_code = 2

    def __init__(
        self,
        file: str,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.message = message
        self.path = path
        self.line = line
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.message}"
        if self.path:
            text += f" (at {self.path})"
        if self.hint:
            text += f"; {self.hint}"
        return text


class DatasetError(PpipeError):
    """Raised when a dataset cannot be opened, or a row cannot be used and the
    scenario does not say to skip bad rows. Names the source and, for files,
    the line (1-based, counting the header)."""

    exit_code = 2

    def __init__(self, source: str, message: str, *, line: int | None = None) -> None:
        self.source = source
        self.message = message
        self.line = line
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {message}")


class BrokerError(PpipeError):
    """Raised when a broker cannot be installed, started, reached, or a topic
    cannot be created. ``log_tail`` holds the broker's last output lines."""

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        self.message = message
        self.log_tail = log_tail
        super().__init__(message)


class PipelineError(PpipeError):
    """Raised when a pipeline cannot be started at all (bad command, missing
    executable). A pipeline that dies mid-run is *reported*, not raised."""

    def __init__(
        self,
        pipeline: str,
        message: str,
        *,
        exit_code: int | None = None,
        last_lines: str = "",
    ) -> None:
        self.pipeline = pipeline
        self.message = message
        self.pipeline_exit_code = exit_code
        self.last_lines = last_lines
        super().__init__(f"pipeline {pipeline!r}: {message}")


class RunError(PpipeError):
    """Raised when the run cannot go on: the harness itself failed (topic
    creation, producer loss, an internal task crashed)."""
