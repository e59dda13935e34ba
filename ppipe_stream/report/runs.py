"""``ppipe runs``: past runs, newest first, with their headline figures.

Owns finding run folders (any folder under the runs directory with a
``summary.json``, or one level deeper: ``ppipe bench``'s probes, and every run
in the runs index ``<runs dir>/index.jsonl``: runs written with ``--out``
elsewhere), filtering
them (name, tags, a limit), turning each summary into one row, and turning a
run's name as listed back into its folder (:func:`resolve_run`). Unreadable
folders are listed as such, never raised; index entries whose folder is gone
are left out. Summaries are read as :class:`~ppipe_stream.results.model.Summary`.
"""

from __future__ import annotations

import json
from pathlib import Path
import msgspec
from rich.table import Table

from ..view.display import ranked
from ..results.outcome import Outcome, outcome_of
from ..run.folder import INDEX_NAME
from ..results.model import MetaFigures, Summary, read_summary_bytes

__all__ = ["RunEntry", "list_runs", "runs_table", "resolve_run"]


class RunEntry(msgspec.Struct, kw_only=True):
    """One run found: its folder, its name, and its summary (None when unreadable)."""

    folder: Path
    summary: Summary | None

    @property
    def name(self) -> str:
        return (self.summary.run_id if self.summary is not None else "") or self.folder.name

    @property
    def tags(self) -> dict[str, str]:
        meta = self.summary.meta if self.summary is not None else None
        return dict(meta.tags) if isinstance(meta, MetaFigures) else {}


def _indexed(root: Path) -> list[Path]:
    index = root / INDEX_NAME
    try:
        lines = index.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    folders = []
    for line in lines:
        try:
            folders.append(Path(json.loads(line)["path"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash: the others still count
    return folders


def list_runs(root: Path, *, name: str | None = None, tags: dict[str, str] | None = None,
              limit: int | None = None) -> list[RunEntry]:
    """Runs under ``root`` and in its index, newest first; ``name`` (a part of the run's
    name), ``tags`` (each key=value must match) and ``limit`` narrow the list."""
    candidates = ([summary.parent for pattern in ("*/summary.json", "*/*/summary.json")  # bench probes
                   for summary in root.glob(pattern)] if root.is_dir() else [])
    candidates += [folder for folder in _indexed(root) if (folder / "summary.json").is_file()]
    seen: set[Path] = set()
    found: list[RunEntry] = []
    for folder in candidates:
        key = folder.resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            summary: Summary | None = read_summary_bytes((folder / "summary.json").read_bytes())
        except (OSError, msgspec.DecodeError):  # unreadable, or not a summary at all
            summary = None
        found.append(RunEntry(folder=folder, summary=summary))
    if name:
        found = [e for e in found if name in e.name]
    for tag, value in (tags or {}).items():
        found = [e for e in found if e.tags.get(tag) == value]
    found.sort(key=lambda e: e.summary.started_at if e.summary is not None else "", reverse=True)
    return found[:limit] if limit is not None else found


def resolve_run(given: Path, root: Path) -> Path | None:
    """The folder of a run given as a path, or as a name ``ppipe runs`` lists (None if none)."""
    if given.exists():
        return given
    if len(given.parts) == 1:
        if (root / given).is_dir():
            return root / given
        for entry in list_runs(root):
            if entry.name == str(given) or entry.folder.name == str(given):
                return entry.folder
    return None


def runs_table(root: Path, *, name: str | None = None, tags: dict[str, str] | None = None,
               limit: int | None = None) -> Table:
    table = Table(title=f"runs in {root}")
    for column in ("run", "started", "events", "rate", "best pipeline", "p99 ms", "metric", "missing",
                   "passed", "valid", "tags", "folder"):
        table.add_column(column, justify="left" if column in ("run", "started", "best pipeline", "tags",
                                                                "folder") else "right",
                         no_wrap=column == "run",  # the name, whole, to copy into tail / report
                         overflow="fold")  # a long folder path wraps, never cut short
    for entry in list_runs(root, name=name, tags=tags, limit=limit):
        folder, summary = entry.folder, entry.summary
        where = "" if folder.parent.resolve() == root.resolve() else str(folder)
        if summary is None:
            table.add_row(folder.name, "unreadable summary.json", *[""] * 9, where)
            continue
        dispatch = summary.dispatch
        best_name, figures = ranked(summary)[0] if summary.pipelines else ("-", None)
        metric = next(iter(figures.metrics.items()), None) if figures is not None else None
        table.add_row(
            entry.name, summary.started_at, str(dispatch.events_sent),
            f"{dispatch.achieved_rate or 0:.1f}", best_name,
            "-" if figures is None or figures.latency_ms.p99 is None else str(figures.latency_ms.p99),
            f"{metric[0]} {metric[1]:.3f}" if metric and metric[1] is not None else "-",
            str(figures.status.missing) if figures is not None else "-",
            *_verdicts(summary),
            " ".join(f"{k}={v}" for k, v in entry.tags.items()), where)
    return table


def _verdicts(summary: Summary) -> tuple[str, str]:
    """The passed and valid columns: "yes"/"no" for a complete run; for any other
    its outcome (interrupted, failed, running), never a verdict it was not given."""
    outcome = outcome_of(summary)
    if outcome is not Outcome.COMPLETE:
        return str(outcome), "not judged"
    return ("yes" if summary.passed else "no", "yes" if summary.validity.valid else "no")
