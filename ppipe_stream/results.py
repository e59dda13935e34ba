"""The run folder (results.md): its name, and writing its files as the run goes.

Owns the folder's layout and safe writes: ``summary.json`` is replaced
atomically (write to a temporary file, then rename) so a crash or Ctrl+C always
leaves a readable file; ``timeline.csv`` is appended row by row and flushed.
It does not compute any figure.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from pathlib import Path
from typing import IO, Any

__all__ = ["RunFolder", "utc_stamp", "iso_utc"]


def utc_stamp(now: dt.datetime | None = None) -> str:
    """``yyyymmddThhmmss`` in UTC, the suffix of a run folder's name."""
    return (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%S")


def iso_utc(ns: int) -> str:
    """ISO-8601 UTC with a Z, second precision, for wall-clock ``ns``."""
    moment = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class RunFolder:
    """One run's folder: ``runs/<name>-<UTC yyyymmddThhmmss>/`` unless ``out`` is given."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._timeline: IO[str] | None = None
        self._timeline_writer: csv.DictWriter | None = None

    @classmethod
    def create(cls, scenario_name: str, *, out: Path | None = None,
               root: Path = Path("runs")) -> "RunFolder":
        stamp = utc_stamp()
        run_id = f"{scenario_name}-{stamp}"
        path = out if out is not None else root / run_id
        suffix = 1
        while out is None and path.exists():  # two runs within one second
            suffix += 1
            run_id = f"{scenario_name}-{stamp}-{suffix}"
            path = root / run_id
        path.mkdir(parents=True, exist_ok=True)
        return cls(path, run_id)

    def file(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> None:
        self._atomic(name, text)

    def write_summary(self, summary: dict[str, Any]) -> None:
        self._atomic("summary.json", json.dumps(summary, indent=2, default=_json_default) + "\n")

    def append_timeline(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._timeline_writer is None:
            self._timeline = open(self.file("timeline.csv"), "w", newline="", encoding="utf-8")  # noqa: SIM115
            fields = list(rows[0].keys())
            for row in rows[1:]:
                fields.extend(k for k in row if k not in fields)
            self._timeline_writer = csv.DictWriter(self._timeline, fieldnames=fields,
                                                   extrasaction="ignore")
            self._timeline_writer.writeheader()
        self._timeline_writer.writerows(rows)
        assert self._timeline is not None
        self._timeline.flush()

    def close(self) -> None:
        if self._timeline is not None:
            self._timeline.close()
            self._timeline = None

    def _atomic(self, name: str, text: str) -> None:
        target = self.file(name)
        tmp = target.with_name(f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
        os.replace(tmp, target)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
