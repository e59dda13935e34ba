"""A run in Markdown, for a CI step summary: ``summary.md`` in the run folder, and
``ppipe run --summary-md FILE`` (appended to: ``$GITHUB_STEP_SUMMARY`` gathers a step's parts).

Owns the page: a headline (the verdict: passed, a threshold failed, invalid, or
how a run that did not complete ended), the dispatch line, one table row per
pipeline (best first, as the terminal's summary table; with ``[scoring] calibrate = true``
each one's p50/p99 over the floor, and the floor's row last, unranked), the thresholds with the
value each measured, and the validity with its reasons. Cells are escaped so a
``|`` in a name cannot break the table. Reads a
:class:`~ppipe_stream.results.model.Summary`; judges nothing.
"""

from __future__ import annotations

from pathlib import Path

from ..results.model import Summary
from ..results.outcome import Outcome, outcome_of
from ..view.display import ranked
from .junit import value_text

__all__ = ["SUMMARY_MD_NAME", "append_summary_md", "summary_markdown"]

SUMMARY_MD_NAME = "summary.md"


def _cell(value: object) -> str:
    text = "-" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]], numeric: range) -> list[str]:
    """A GitHub pipe table: the ``numeric`` columns right-aligned, the others left."""
    align = ["--:" if i in numeric else ":--" for i in range(len(header))]
    return ["| " + " | ".join(_cell(c) for c in header) + " |", "| " + " | ".join(align) + " |",
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def _verdict(summary: Summary, outcome: Outcome) -> str:
    if outcome is not Outcome.COMPLETE:
        return f"{outcome}, not judged"
    verdict = "passed" if summary.passed else "a threshold failed"
    return verdict if summary.validity.valid else f"{verdict}, INVALID"


def summary_markdown(summary: Summary) -> str:
    """The Markdown text of one run."""
    outcome = outcome_of(summary)
    dispatch = summary.dispatch
    target = f" (target {dispatch.target_rate:g}/s)" if dispatch.target_rate else ""
    lines = [f"### ppipe {summary.scenario}: {_verdict(summary, outcome)}", "",
             f"Run `{summary.run_id}`, {summary.duration_s:.1f} s: {dispatch.events_sent} events "
             f"at {dispatch.achieved_rate:.1f}/s{target}, dispatch lag p99 "
             + ("-" if dispatch.lag_ms.p99 is None else f"{dispatch.lag_ms.p99:.1f} ms")
             + (f", {dispatch.dropped} dropped" if dispatch.dropped else "") + ".", ""]
    if isinstance(summary.error, str):
        lines += [f"**Error**: {_cell(summary.error)}", ""]
    if isinstance(summary.aborted, str):
        lines += [f"**Aborted**: {_cell(summary.aborted)}", ""]
    rows = []
    floor = summary.floor
    for name, figures in ranked(summary):
        status, latency = figures.status, figures.latency_ms
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in figures.metrics.items() if v is not None)
        over = figures.latency_over_floor_ms
        rows.append([name, str(status.correct), str(status.incorrect), str(status.deadline_exceeded),
                     str(status.missing), str(status.bad), _ms(latency.p50), _ms(latency.p99),
                     _ms(latency.max),
                     *([f"{_signed(over.p50 if over else None)} / {_signed(over.p99 if over else None)}"]
                       if floor is not None else []),
                     f"{figures.throughput_eps:.1f}", metrics or "-"])
    if rows and floor is not None:  # the floor under the pipelines, unranked
        status, latency = floor.status, floor.latency_ms
        rows.append([f"{floor.pipeline} (floor)", "-", "-", str(status.deadline_exceeded),
                     str(status.missing), str(status.bad), _ms(latency.p50), _ms(latency.p99),
                     _ms(latency.max), "-", "-", f"echo, {floor.count} answered"])
    if rows:
        over_column = ["p50/p99 over floor ms"] if floor is not None else []
        lines += _table(["pipeline", "correct", "incorrect", "late", "missing", "bad", "p50 ms",
                         "p99 ms", "max ms", *over_column, "events/s", "metrics"], rows,
                        numeric=range(1, 10 + len(over_column)))
        lines.append("")
    if summary.thresholds:
        rows = []
        for result in summary.thresholds:
            mark = ("not judged" if result.judged is False or outcome is not Outcome.COMPLETE
                    else "ok" if result.ok else "**FAILED**")
            rows.append([mark, f"`{result.expr}`", result.pipeline or "(dispatch)",
                         value_text(result) or "not measured"])
        lines += ["**Thresholds**", ""]
        lines += _table(["result", "rule", "pipeline", "measured"], rows, numeric=range(3, 4))
        lines.append("")
    validity = summary.validity
    if not validity.judged:
        lines.append(f"**Validity**: {_cell('; '.join(validity.reasons) or 'not judged')}")
    elif validity.valid:
        lines.append("**Validity**: valid")
    else:
        lines.append("**Validity**: INVALID, the figures cannot be trusted:")
        lines.append("")
        advice = validity.recommendations
        lines += [f"- {_cell(reason)}" + (f" (try: {_cell(advice[i])})" if i < len(advice) else "")
                  for i, reason in enumerate(validity.reasons)]
    return "\n".join(lines) + "\n"


def append_summary_md(summary: Summary, path: Path) -> Path:
    """Append the run's Markdown to ``path`` (made, with its folder, if needed); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(summary_markdown(summary))
    return path
