"""``ppipe runs``: past runs, newest first, with their headline figures.

Owns finding run folders (any folder under the runs directory with a
``summary.json``) and turning each summary into one row. Unreadable folders
are listed as such, never raised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from ..display import ranked
from ..outcome import Outcome, outcome_of

__all__ = ["list_runs", "runs_table"]


def list_runs(root: Path) -> list[tuple[Path, dict[str, Any] | None]]:
    """(folder, summary or None when unreadable), newest first."""
    if not root.is_dir():
        return []
    found = []
    for summary in root.glob("*/summary.json"):
        try:
            found.append((summary.parent, json.loads(summary.read_text())))
        except (OSError, json.JSONDecodeError):
            found.append((summary.parent, None))
    return sorted(found, key=lambda item: (item[1] or {}).get("started_at", ""), reverse=True)


def runs_table(root: Path) -> Table:
    table = Table(title=f"runs in {root}")
    for column in ("run", "started", "events", "rate", "best pipeline", "p99 ms", "metric", "missing",
                   "passed", "valid"):
        table.add_column(column, justify="left" if column in ("run", "started", "best pipeline") else "right")
    for folder, summary in list_runs(root):
        if summary is None:
            table.add_row(folder.name, "unreadable summary.json", *[""] * 8)
            continue
        dispatch = summary.get("dispatch") or {}
        best = ranked(summary)[0] if summary.get("pipelines") else ("-", {})
        name, figures = best
        metrics = figures.get("metrics") or {}
        metric = next(iter(metrics.items()), None)
        table.add_row(
            folder.name, str(summary.get("started_at", "")), str(dispatch.get("events_sent", "")),
            f"{dispatch.get('achieved_rate') or 0:.1f}", name,
            str((figures.get("latency_ms") or {}).get("p99", "-")),
            f"{metric[0]} {metric[1]:.3f}" if metric and metric[1] is not None else "-",
            str((figures.get("status") or {}).get("missing", "-")),
            *_verdicts(summary))
    return table


def _verdicts(summary: dict[str, Any]) -> tuple[str, str]:
    """The passed and valid columns: "yes"/"no" for a complete run; for any other
    its outcome (interrupted, failed, running), never a verdict it was not given."""
    outcome = outcome_of(summary)
    if outcome is not Outcome.COMPLETE:
        return str(outcome), "not judged"
    validity = summary.get("validity") or {}
    return ("yes" if summary.get("passed") else "no",
            "yes" if validity.get("valid", True) else "no")
