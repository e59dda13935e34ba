"""``ppipe compare RUN_A RUN_B``: two runs' figures side by side, with differences.

Owns laying out two run folders' headline
figures (dispatch, and per pipeline: statuses, latency, throughput, metrics,
validity) with B - A and the relative change. Reads
:class:`~ppipe_stream.results.model.Summary` (:func:`load_summary` is the results
model's); computes nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from rich.table import Table

from ..results.model import Summary, load_summary, to_summary

__all__ = ["compare_rows", "compare_table", "load_summary"]


def _flatten(summary: Summary) -> dict[str, float | None]:
    figures: dict[str, float | None] = {}
    dispatch = summary.dispatch
    figures["dispatch.events_sent"] = dispatch.events_sent
    figures["dispatch.achieved_rate"] = dispatch.achieved_rate
    figures["dispatch.lag_ms.p99"] = dispatch.lag_ms.p99
    for name, p in summary.pipelines.items():
        for status, count in msgspec.structs.asdict(p.status).items():
            figures[f"{name}.status.{status}"] = count
        for key, value in msgspec.structs.asdict(p.latency_ms).items():
            figures[f"{name}.latency_ms.{key}"] = value
        figures[f"{name}.throughput_eps"] = p.throughput_eps
        for key, value in p.metrics.items():
            figures[f"{name}.metrics.{key}"] = value
    return figures


def compare_rows(a: Summary | Mapping[str, Any],
                 b: Summary | Mapping[str, Any]) -> list[tuple[str, Any, Any, float | None, float | None]]:
    """(figure, A, B, B - A, relative change) for every figure either run has."""
    fa, fb = _flatten(to_summary(a)), _flatten(to_summary(b))
    rows = []
    for key in list(dict.fromkeys([*fa, *fb])):
        va, vb = fa.get(key), fb.get(key)
        diff = rel = None
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            diff = vb - va
            rel = diff / abs(va) if va else None
        rows.append((key, va, vb, diff, rel))
    return rows


def compare_table(a: Summary | Mapping[str, Any], b: Summary | Mapping[str, Any]) -> Table:
    a, b = to_summary(a), to_summary(b)
    table = Table(title=f"A = {a.run_id}   B = {b.run_id}")
    for column in ("figure", "A", "B", "B - A", "change"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for key, va, vb, diff, rel in compare_rows(a, b):
        table.add_row(key, _fmt(va), _fmt(vb), "" if diff is None else _fmt(diff, signed=True),
                      "" if rel is None else f"{rel:+.1%}")
    verdicts = []
    for s in (a, b):
        verdicts.append("valid" if s.validity.valid
                        else "INVALID: " + "; ".join(s.validity.reasons))
    table.add_row("validity", verdicts[0], verdicts[1], "", "")
    return table


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.4g}" if signed else f"{value:.4g}"
    return f"{value:+d}" if signed and isinstance(value, int) else str(value)
