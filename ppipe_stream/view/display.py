"""What ``ppipe run`` shows: a progress bar while the run goes, a table at the end.

Owns terminal output of a run. In a terminal, a rich progress bar on standard
error (elapsed / planned, sent, answered, p99, accuracy); elsewhere (CI, a pipe)
one plain line every few seconds, and one at once for each new reason the run is INVALID
(the harness lost the schedule or was starved). The final summary table goes to standard
output; the run folder's path is printed last by the CLI, not here. Reads the
run's :class:`~ppipe_stream.run.orchestration.LiveView` and its
:class:`~ppipe_stream.results.model.Summary`; computes nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .live import Frame, Trends, render
from ..results.outcome import Outcome, outcome_of
from ..results.model import PipelineFigures, Summary, to_summary

__all__ = ["RunDisplay", "ranked", "summary_table"]

PLAIN_EVERY_S = 5.0


class RunDisplay:
    """Progress of a run; use as a context manager and pass :meth:`update` to the run.

    In a terminal: the live view (:mod:`ppipe_stream.view.live`), redrawn four times
    a second. Elsewhere: one plain line every few seconds."""

    def __init__(self, *, stream=None, force_plain: bool = False) -> None:
        self._stream = stream or sys.stderr
        self._console = Console(file=self._stream)
        self._is_live = self._console.is_terminal and not force_plain
        self._live: Live | None = None
        self._trends = Trends()
        self._last_plain = 0.0
        self._last_step = ""
        self._last_trend = 0.0
        self._told_reasons = 0  # a plain display prints a line at once for each new INVALID reason

    def __enter__(self) -> RunDisplay:
        if self._is_live:
            self._live = Live(Text("starting..."), console=self._console, refresh_per_second=4,
                              transient=False)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def update(self, frame: Frame) -> None:
        now = time.monotonic()
        if now - self._last_trend >= 1.0:
            self._last_trend = now
            self._trends.add(frame)
        if self._live is not None:
            self._live.update(render(frame, self._trends))
            return
        step = frame.state.split(" (")[0]  # a new step shows at once, then every few seconds
        new_reason = len(frame.invalid) > self._told_reasons  # and each new INVALID reason
        if now - self._last_plain >= PLAIN_EVERY_S or step != self._last_step or new_reason:
            self._last_plain, self._last_step = now, step
            self._told_reasons = max(self._told_reasons, len(frame.invalid))
            print(f"ppipe: {frame.state}: {_detail(frame)}", file=self._stream, flush=True)


def _detail(frame: Frame) -> str:
    parts = [f"{frame.elapsed_s:.0f}s", f"sent {frame.events_sent}"]
    if frame.dropped:
        parts[-1] += f", dropped {frame.dropped}"
    if frame.loop_lateness_p99_ms is not None:
        parts.append(f"loop lateness p99 {frame.loop_lateness_p99_ms:.1f} ms")
    for name, snap in frame.pipelines.items():
        piece = ("floor " if name == frame.floor else "") + f"{name}: answered {snap.get('answered', 0)}"
        p99 = snap.get("latency_p99_ms")
        if p99 is not None:
            piece += f", p99 {p99:.1f} ms"
        metric = next(((k, v) for k, v in (snap.get("metrics") or {}).items() if v is not None), None)
        if metric:
            piece += f", {metric[0]} {metric[1]:.3f}"
        parts.append(piece)
    if frame.invalid:
        parts.append("INVALID: " + "; ".join(frame.invalid))
    return " | ".join(parts)


def summary_table(summary: Summary | Mapping[str, Any]) -> Table:
    """One row per pipeline: events, statuses, latency, throughput, metrics, verdict; with a
    calibrated run, each one's latency over the floor, and the floor's row under them."""
    summary = to_summary(summary)
    dispatch = summary.dispatch
    title = (f"{summary.scenario}: {dispatch.events_sent} events at "
             f"{dispatch.achieved_rate:.1f}/s (target {dispatch.target_rate}), "
             f"dispatch lag p99 {_ms(dispatch.lag_ms.p99)}"
             + (f", {dispatch.dropped} dropped" if dispatch.dropped else ""))
    table = Table(title=title)
    floor = summary.floor
    columns = ["pipeline", "correct", "incorrect", "late", "missing", "bad", "p50", "p99", "max",
               *(["over floor p50/p99"] if floor is not None else []), "eps", "metrics"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("pipeline", "metrics") else "right")
    for name, figures in ranked(summary):
        status, latency = figures.status, figures.latency_ms
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in figures.metrics.items() if v is not None)
        over = figures.latency_over_floor_ms
        table.add_row(
            name, str(status.correct), str(status.incorrect), str(status.deadline_exceeded),
            str(status.missing), str(status.bad), _ms(latency.p50), _ms(latency.p99),
            _ms(latency.max),
            *([f"{_signed(over.p50 if over else None)} / {_signed(over.p99 if over else None)}"]
              if floor is not None else []),
            f"{figures.throughput_eps or 0:.1f}", metrics)
    if floor is not None:  # under the pipelines, never ranked: what every answer costs at least
        status, latency = floor.status, floor.latency_ms
        table.add_row(
            f"{floor.pipeline} (floor)", "-", "-", str(status.deadline_exceeded),
            str(status.missing), str(status.bad), _ms(latency.p50), _ms(latency.p99),
            _ms(latency.max), "-", "-", f"echo, {floor.count} answered", style="dim")
    validity = summary.validity
    if not validity.valid and validity.judged:
        table.caption = (table.caption + "\n" if table.caption else "") + escape(
            "INVALID run: " + "; ".join(validity.reasons) + ". Try: "
            + "; ".join(validity.recommendations))
    if summary.aborted:
        table.caption = (table.caption + "\n" if table.caption else "") + escape(
            f"ABORTED: {summary.aborted}")
    outcome = outcome_of(summary)
    if outcome is not Outcome.COMPLETE:
        why = f": {summary.error}" if outcome is Outcome.FAILED and summary.error else ""
        table.caption = (table.caption + "\n" if table.caption else "") + escape(
            f"{str(outcome).upper()}{why}: thresholds and validity not judged")
    for result in summary.thresholds:
        mark = ("not judged" if result.judged is False
                else "ok" if result.ok else "FAILED")
        who = f" [{result.pipeline}]" if result.pipeline else ""
        table.caption = (table.caption + "\n" if table.caption else "") + \
            escape(f"{mark}: {result.expr}{who} (value {result.value})")
    return table


LOWER_IS_BETTER = ("mae", "mse", "rmse", "mape", "smape", "logloss")


def ranked(summary: Summary | Mapping[str, Any]) -> list[tuple[str, PipelineFigures]]:
    """Pipelines best first: by the first metric (higher is better, except error
    metrics such as MAE), then by fewer missing, then by lower p99 latency."""
    pipelines = list(to_summary(summary).pipelines.items())

    def key(item: tuple[str, PipelineFigures]) -> tuple[float, int, float]:
        figures = item[1]
        name, value = next(iter(figures.metrics.items()), ("", None))
        lower_better = name.lower() in LOWER_IS_BETTER
        score = -1e300 if value is None else (-value if lower_better else value)
        p99 = figures.latency_ms.p99
        return (-score, figures.status.missing, p99 if p99 is not None else 1e300)

    return sorted(pipelines, key=key)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f} ms"
