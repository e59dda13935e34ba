"""The run folder (results.md): its name, and writing its files as the run goes.

Owns the folder's layout and safe writes: ``summary.json`` is replaced
atomically (write to a temporary file, then rename) so a crash or Ctrl+C always
leaves a readable file; ``timeline.csv`` is appended row by row and flushed.
It does not compute any figure.

It also refuses to write into a folder that holds anything already (``--out``
of an earlier run, or of an unrelated folder) unless ``force`` is given, adds
the run's metadata (:mod:`ppipe_stream.run.metadata`) to every summary, and keeps
the index of runs (``<runs dir>/index.jsonl``: one line, with the absolute
path, per run the command line started outside the runs dir, ``--out``) so
``ppipe runs`` finds them; runs the API starts (tests) are not indexed.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import secrets
from pathlib import Path
from typing import IO, Any

import msgspec

from ..errors import UsageError
from .metadata import RunMeta, describe_run
from ..results.model import MetaFigures, Summary, to_builtins

__all__ = ["RunFolder", "utc_stamp", "iso_utc", "INDEX_NAME", "check_out", "new_run_id"]

INDEX_NAME = "index.jsonl"


def utc_stamp(now: dt.datetime | None = None) -> str:
    """``yyyymmddThhmmss`` in UTC, the suffix of a run folder's name."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S")


def iso_utc(ns: int) -> str:
    """ISO-8601 UTC with a Z, second precision, for wall-clock ``ns``."""
    moment = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(folder_name: str) -> str:
    """The run's id (its topics are ``ppipe.<run id>.*``): the folder's name and 4 random
    hex digits, so two runs started in the same second (with ``--out``, or from two runs
    dirs) never share topics on one broker."""
    return f"{folder_name}-{secrets.token_hex(2)}"


class RunFolder:
    """One run's folder: ``runs/<name>-<UTC yyyymmddThhmmss>/`` unless ``out`` is given;
    its run id is ``<name>-<UTC yyyymmddThhmmss>[-n]-<4 hex digits>`` either way."""

    def __init__(self, path: Path, run_id: str, *, meta: RunMeta | None = None,
                 embedded: str | None = None) -> None:
        self.path = path
        self.run_id = run_id
        self.meta = meta
        self._embedded = embedded  # the broker kind the run starts itself, if it does
        self._timeline: IO[str] | None = None
        self._timeline_writer: csv.DictWriter | None = None

    @classmethod
    def create(cls, scenario_name: str, *, out: Path | None = None,
               root: Path = Path("runs"), force: bool = False, meta: RunMeta | None = None,
               embedded: str | None = None) -> RunFolder:
        """A new folder; UsageError when ``out`` holds anything already and not ``force``."""
        stamp = utc_stamp()
        name = f"{scenario_name}-{stamp}"
        if out is not None:
            check_out(out, force=force)
        path = out if out is not None else root / name
        suffix = 1
        while out is None and path.exists():  # two runs within one second
            suffix += 1
            name = f"{scenario_name}-{stamp}-{suffix}"
            path = root / name
        path.mkdir(parents=True, exist_ok=True)
        run_id = new_run_id(name)
        folder = cls(path, run_id, meta=meta, embedded=embedded)
        if meta is not None and path.parent.resolve() != root.resolve():
            folder._add_to_index(root / INDEX_NAME, scenario_name)  # found by ppipe runs
        return folder

    def _add_to_index(self, index: Path, scenario_name: str) -> None:
        """One line in the runs index; a runs dir that cannot be written is no reason to fail."""
        entry = {"run_id": self.run_id, "path": str(self.path.resolve()), "scenario": scenario_name,
                 "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "tags": dict(self.meta.tags) if self.meta else {}}
        try:
            index.parent.mkdir(parents=True, exist_ok=True)
            with open(index, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
        except OSError:
            pass

    def file(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> None:
        self._atomic(name, text)

    def write_summary(self, summary: Summary | dict[str, Any]) -> Summary | dict[str, Any]:
        """Replace ``summary.json``; adds the ``meta`` block (versions, host, command line, tags)
        and returns the summary as written (a Summary, or the dict it was given, with ``meta``)."""
        if isinstance(summary, Summary):
            if summary.meta is msgspec.UNSET:
                meta = describe_run(self.meta, to_builtins(summary.broker), embedded=self._embedded)
                summary = msgspec.structs.replace(
                    summary, meta=msgspec.convert(meta, MetaFigures, strict=False))
            data: Any = to_builtins(summary)
        else:
            if "meta" not in summary:
                summary["meta"] = describe_run(self.meta, summary.get("broker") or {},
                                               embedded=self._embedded)
            data = summary
        # msgspec's C encoder: json.dumps with indent is the pure-Python one (1.4 ms a second)
        text = msgspec.json.format(msgspec.json.encode(data, enc_hook=_json_default), indent=2)
        self._atomic("summary.json", text.decode() + "\n")
        return summary

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


def check_out(out: Path, *, force: bool = False) -> None:
    """UsageError unless ``out`` is absent, an empty folder, or ``force`` is given."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: a file is there, not a folder")
    if force or not out.exists():
        return
    if (out / "summary.json").exists():
        raise UsageError(f"--out {out}: holds an earlier run's results; give another folder, "
                         "or --force to write over them")
    if any(out.iterdir()):
        raise UsageError(f"--out {out}: the folder exists and is not empty; give a new or empty "
                         "folder, or --force to write into it")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
