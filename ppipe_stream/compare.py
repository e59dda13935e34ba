"""``ppipe compare RUN_A RUN_B``: two runs' figures side by side, with differences.

Owns reading two run folders' ``summary.json`` and laying out the headline
figures (dispatch, and per pipeline: statuses, latency, throughput, metrics,
validity) with B - A and the relative change. Reads files; computes nothing new.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from .errors import UsageError

__all__ = ["compare_rows", "compare_table", "load_summary"]


def load_summary(folder: Path) -> dict[str, Any]:
    """The summary of a run folder (or of a summary.json path); UsageError if unreadable."""
    path = folder / "summary.json" if folder.is_dir() else folder
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{folder}: no summary.json (is it a run folder?)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it: {exc}") from None


def _flatten(summary: dict[str, Any]) -> dict[str, float | None]:
    figures: dict[str, float | None] = {}
    dispatch = summary.get("dispatch") or {}
    figures["dispatch.events_sent"] = dispatch.get("events_sent")
    figures["dispatch.achieved_rate"] = dispatch.get("achieved_rate")
    figures["dispatch.lag_ms.p99"] = (dispatch.get("lag_ms") or {}).get("p99")
    for name, p in (summary.get("pipelines") or {}).items():
        for status, count in (p.get("status") or {}).items():
            figures[f"{name}.status.{status}"] = count
        for key, value in (p.get("latency_ms") or {}).items():
            figures[f"{name}.latency_ms.{key}"] = value
        figures[f"{name}.throughput_eps"] = p.get("throughput_eps")
        for key, value in (p.get("metrics") or {}).items():
            figures[f"{name}.metrics.{key}"] = value
    return figures


def compare_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, float | None, float | None]]:
    """(figure, A, B, B - A, relative change) for every figure either run has."""
    fa, fb = _flatten(a), _flatten(b)
    rows = []
    for key in list(dict.fromkeys([*fa, *fb])):
        va, vb = fa.get(key), fb.get(key)
        diff = rel = None
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            diff = vb - va
            rel = diff / abs(va) if va else None
        rows.append((key, va, vb, diff, rel))
    return rows


def compare_table(a: dict[str, Any], b: dict[str, Any]) -> Table:
    table = Table(title=f"A = {a.get('run_id')}   B = {b.get('run_id')}")
    for column in ("figure", "A", "B", "B - A", "change"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for key, va, vb, diff, rel in compare_rows(a, b):
        table.add_row(key, _fmt(va), _fmt(vb), "" if diff is None else _fmt(diff, signed=True),
                      "" if rel is None else f"{rel:+.1%}")
    verdicts = []
    for s in (a, b):
        validity = s.get("validity") or {}
        verdicts.append("valid" if validity.get("valid", True)
                        else "INVALID: " + "; ".join(validity.get("reasons", [])))
    table.add_row("validity", verdicts[0], verdicts[1], "", "")
    return table


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.4g}" if signed else f"{value:.4g}"
    return f"{value:+d}" if signed and isinstance(value, int) else str(value)
