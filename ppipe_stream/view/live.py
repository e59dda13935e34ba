"""The live view of a run: one screen, redrawn, shared by ``ppipe run`` and ``ppipe tail``.

Owns rendering a :class:`Frame` (state, elapsed and planned time, dispatch
figures, per-pipeline figures, resources) as a rich table: progress, sent rate,
lag, the harness's loop lateness and dropped events, INVALID and why as soon as
the harness lost the schedule or was starved, then the leaderboard, ranked, with p50/p99 and a small p99 trend,
the first metric, status counts, CPU and memory; under it the run's floor
(``[scoring] calibrate = true``: the echo pipeline's p50/p99, never ranked), then the latest incidents
(faults, outages, exits, restarts, hangs). Also the conversions that
build a frame from a live run, a ``summary.json`` or a scores-topic snapshot.
Computes no figure.
"""

from __future__ import annotations

import collections
from typing import Any

import msgspec
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..watch.incidents import describe

__all__ = ["Frame", "Trends", "frame_from_summary", "render"]

_SPARK = "▁▂▃▄▅▆▇█"


class Frame(msgspec.Struct, kw_only=True):
    """Everything one screen shows."""

    run_id: str = ""
    state: str = ""
    elapsed_s: float = 0.0
    planned_s: float | None = None
    events_sent: int = 0
    target_rate: float | None = None
    achieved_rate: float | None = None
    lag_p99_ms: float | None = None
    pipelines: dict[str, dict[str, Any]] = {}
    resources: dict[str, dict[str, float] | None] = {}
    incidents: list[str] = []  # the latest few, one line each
    dropped: int = 0  # events not sent within max_lag of their time
    loop_lateness_p99_ms: float | None = None  # the harness's own event loop
    invalid: list[str] = []  # why the run is already invalid (empty: nothing known yet)
    floor: str | None = None  # which of ``pipelines`` is the run's floor (calibrate = true)


class Trends:
    """The last few p99 values per pipeline, for the sparkline."""

    def __init__(self, keep: int = 24) -> None:
        self._values: dict[str, collections.deque[float]] = collections.defaultdict(
            lambda: collections.deque(maxlen=keep))

    def add(self, frame: Frame) -> None:
        for name, snap in frame.pipelines.items():
            p99 = snap.get("latency_p99_ms")
            if p99 is not None:
                self._values[name].append(float(p99))

    def spark(self, name: str) -> str:
        values = list(self._values.get(name, ()))
        if len(values) < 2:
            return ""
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        return "".join(_SPARK[min(int((v - low) / span * (len(_SPARK) - 1)), len(_SPARK) - 1)] for v in values)


def _rank_key(item: tuple[str, dict[str, Any]]) -> tuple:
    snap = item[1]
    metrics = snap.get("metrics") or {}
    name, value = next(iter(metrics.items()), ("", None))
    lower_better = name.lower() in ("mae", "mse", "rmse", "mape", "smape")
    score = -1e300 if value is None else (-value if lower_better else value)
    p99 = snap.get("latency_p99_ms")
    return (-score, (snap.get("status") or {}).get("missing", 0), p99 if p99 is not None else 1e300)


def render(frame: Frame, trends: Trends | None = None) -> Group:
    """The screen for ``frame``."""
    head = Text()
    head.append(f"{frame.run_id}  ", style="bold")
    head.append(f"{frame.state}  ", style="cyan")
    planned = f" / {frame.planned_s:.0f}s" if frame.planned_s else ""
    head.append(f"{frame.elapsed_s:5.1f}s{planned}   sent {frame.events_sent}")
    if frame.achieved_rate is not None:
        target = f" (target {frame.target_rate:g})" if frame.target_rate else ""
        head.append(f" at {frame.achieved_rate:.1f}/s{target}")
    if frame.lag_p99_ms is not None:
        head.append(f"   dispatch lag p99 {frame.lag_p99_ms:.1f} ms")
    if frame.loop_lateness_p99_ms is not None:
        head.append(f"   loop lateness p99 {frame.loop_lateness_p99_ms:.1f} ms")
    if frame.dropped:
        head.append(f"   dropped {frame.dropped}", style="bold red")
    parts: list[Any] = [head]
    if frame.invalid:
        parts.append(Text("INVALID: " + "; ".join(frame.invalid), style="bold red"))
    if frame.planned_s:
        done = min(frame.elapsed_s / frame.planned_s, 1.0)
        bar = Text("━" * int(done * 60), style="green")
        bar.append("━" * (60 - int(done * 60)), style="grey23")
        bar.append(f" {done:4.0%}")
        parts.append(bar)
    table = Table(expand=False)
    for column in ("#", "pipeline", "answered", "p50 ms", "p99 ms", "p99 trend", "metric",
                   "correct", "incorrect", "late", "missing", "bad", "cpu %", "mem MiB"):
        table.add_column(column, justify="left" if column in ("pipeline", "p99 trend", "metric") else "right")
    competitors = {k: v for k, v in frame.pipelines.items() if k != frame.floor}
    for rank, (name, snap) in enumerate(sorted(competitors.items(), key=_rank_key), start=1):
        status = snap.get("status") or {}
        metrics = snap.get("metrics") or {}
        metric = next(((k, v) for k, v in metrics.items() if v is not None), None)
        bad = sum(int(snap.get(k) or status.get(k) or 0) for k in ("syntax_error", "duplicate", "unknown"))
        res = frame.resources.get(name) or {}
        table.add_row(
            str(rank), name, str(snap.get("answered", 0)), _ms(snap.get("latency_p50_ms")),
            _ms(snap.get("latency_p99_ms")), trends.spark(name) if trends else "",
            f"{metric[0]} {metric[1]:.3f}" if metric else "-",
            str(status.get("correct", 0)), str(status.get("incorrect", 0)),
            str(status.get("deadline_exceeded", 0)), str(status.get("missing", 0)), str(bad),
            _num(res.get("cpu_percent")), _num(res.get("memory_mib")))
    floor = [_floor_line(frame.floor, frame.pipelines[frame.floor])] \
        if frame.floor is not None and frame.floor in frame.pipelines else []
    lines = [Text(line, style="yellow") for line in frame.incidents]
    return Group(*parts, table, *floor, *lines)


def _floor_line(name: str, snap: dict[str, Any]) -> Text:
    """The run's floor under the leaderboard: what the broker, clients and harness cost."""
    status = snap.get("status") or {}
    line = Text("floor ", style="bold")
    line.append(f"({name}, echo)  p50 {_ms(snap.get('latency_p50_ms'))} ms  "
                f"p99 {_ms(snap.get('latency_p99_ms'))} ms  answered {snap.get('answered', 0)}")
    if status.get("missing"):
        line.append(f"  missing {status['missing']}", style="bold red")
    return line


def frame_from_summary(summary: dict[str, Any]) -> Frame:
    """A frame from a run folder's ``summary.json`` (partial or final)."""
    dispatch = summary.get("dispatch") or {}
    validity = summary.get("validity") or {}
    pipelines = {}
    for name, p in (summary.get("pipelines") or {}).items():
        latency = p.get("latency_ms") or {}
        status = dict(p.get("status") or {})
        pipelines[name] = {"answered": p.get("predictions", 0), "status": status,
                           "latency_p50_ms": latency.get("p50"), "latency_p99_ms": latency.get("p99"),
                           "metrics": p.get("metrics") or {}}
    floor = summary.get("floor")
    if floor:
        latency = floor.get("latency_ms") or {}
        pipelines[floor["pipeline"]] = {
            "answered": floor.get("count", 0), "status": dict(floor.get("status") or {}),
            "latency_p50_ms": latency.get("p50"), "latency_p99_ms": latency.get("p99"), "metrics": {}}
    state = "done" if summary.get("complete") else ("interrupted" if summary.get("interrupted") else "running")
    return Frame(run_id=summary.get("run_id", ""), state=state,
                 elapsed_s=float(summary.get("duration_s") or 0.0),
                 events_sent=int(dispatch.get("events_sent") or 0),
                 target_rate=dispatch.get("target_rate"), achieved_rate=dispatch.get("achieved_rate"),
                 lag_p99_ms=(dispatch.get("lag_ms") or {}).get("p99"), pipelines=pipelines,
                 incidents=[describe(i) for i in (summary.get("incidents") or [])[-4:]],
                 dropped=int(dispatch.get("dropped") or 0),
                 loop_lateness_p99_ms=(((summary.get("harness") or {}).get("loop_lateness_ms")
                                        or {}).get("p99")),
                 invalid=[] if validity.get("valid", True) else list(validity.get("reasons") or []),
                 floor=floor["pipeline"] if floor else None)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}"
