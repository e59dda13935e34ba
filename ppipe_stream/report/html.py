"""``report.html``: one self-contained page per run (or per pair of runs).

Owns the page: first the headline (how the run ended, thresholds, validity
with its reasons, the leaderboard, and with ``[scoring] calibrate = true`` the Floor
table: the echo floor's latency beside every pipeline's), then the charts, then the details (figures,
command results, incidents, the scenario as run). The charts are PNG files
under ``charts/``, embedded in the page as data URIs so the file stands alone.
Every value is HTML-escaped, with no Python reprs. Drawing is ``charts.py``'s; figures come from the run
folder's :class:`~ppipe_stream.results.model.Summary`.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

import msgspec

from ..view.display import ranked
from ..results.outcome import Outcome, outcome_of
from ..results.model import ContainerFigures, LatencySplit, Summary, ThresholdResult
from .charts import RunData, draw_charts, load_run

__all__ = ["write_report"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right} th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.ok{color:#176b1e;font-weight:600} .bad{color:#a40000;font-weight:600}
img{max-width:100%;display:block;margin:.6em 0;border:1px solid #eee}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.85em}
"""


def _e(value: Any) -> str:
    """Escaped text for a cell: no Python reprs (None is "-", booleans are yes/no)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.escape("-" if value is None else str(value))


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.3g}"
    return _e(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _outcome_cell(outcome: Outcome, error: str | None) -> str:
    if outcome is Outcome.COMPLETE:
        return '<span class="ok">complete</span>'
    why = f": {_e(error)}" if outcome is Outcome.FAILED and error else ""
    return f'<span class="bad">{_e(str(outcome))}</span>{why}'


def _threshold_cell(result: ThresholdResult) -> str:
    if result.judged is False:
        return '<span class="bad">not judged</span>'
    return '<span class="ok">ok</span>' if result.ok else '<span class="bad">failed</span>'


def _process_cell(container: ContainerFigures | None) -> str:
    """How the pipeline's processes fared, in words."""
    if container is None:
        return "-"
    code = container.exit_code
    words = ["running to the end" if code is None else f"exited with code {code}"]
    if container.oom_killed:
        words.append("killed for memory (OOM)")
    if container.restarts:
        words.append(f"{container.restarts} restart(s)")
    if container.hangs:
        words.append(f"{container.hangs} hang(s)")
    return _e(", ".join(words))


def _verdicts(s: Summary) -> tuple[str, str]:
    """The thresholds' and the validity's verdicts, as HTML."""
    validity = s.validity
    if outcome_of(s) is not Outcome.COMPLETE:
        reasons = _e("; ".join(validity.reasons))
        return '<span class="bad">not judged</span>', f'<span class="bad">not judged</span>: {reasons}'
    passed = '<span class="ok">passed</span>' if s.passed else '<span class="bad">failed</span>'
    if validity.valid:
        return passed, '<span class="ok">valid</span>'
    return passed, ('<span class="bad">INVALID</span>: ' + _e("; ".join(validity.reasons))
                    + "<br>Try: " + _e("; ".join(validity.recommendations)))


def _headline(run: RunData) -> str:
    """What a reader needs first: how the run ended, its verdicts, the leaderboard
    and every threshold."""
    s = run.summary
    passed, verdict = _verdicts(s)
    parts = [f"<h2>Run {_e(run.label)}</h2>", _table(["verdict", ""], [
        ["outcome", _outcome_cell(outcome_of(s), s.error or None)],
        ["thresholds", passed], ["validity", verdict],
    ] + ([["aborted", _e(s.aborted)]] if s.aborted else []))]
    rows = []
    for rank, (name, p) in enumerate(ranked(s), start=1):
        st, lat = p.status, p.latency_ms
        metrics = ", ".join(f"{k} {_num(v)}" for k, v in p.metrics.items())
        container = p.container if isinstance(p.container, ContainerFigures) else None
        rows.append([str(rank), _e(name), _e(st.correct), _e(st.incorrect),
                     _e(st.deadline_exceeded), _e(st.missing), _e(st.bad),
                     _num(lat.p50), _num(lat.p99), _num(lat.max),
                     _num(p.throughput_eps, 1), _e(metrics), _process_cell(container)])
    parts += ["<h3>Leaderboard</h3>", _table(
        ["#", "pipeline", "correct", "incorrect", "late", "missing", "bad", "p50 ms", "p99 ms",
         "max ms", "events/s", "metrics", "process"], rows)]
    parts += _floor(s)
    if s.thresholds:
        parts += ["<h3>Thresholds</h3>", _table(["rule", "pipeline", "value", "verdict"], [
            [_e(t.expr), _e(t.pipeline), _num(t.value), _threshold_cell(t)]
            for t in s.thresholds])]
    return "\n".join(parts)


def _floor(s: Summary) -> list[str]:
    """The Floor table: the echo floor's latency (never ranked), then every pipeline's
    beside it with what it adds over the floor. Nothing when the run did not calibrate."""
    floor = s.floor
    if floor is None:
        return []
    lat = floor.latency_ms
    split = floor.latency_split_ms if isinstance(floor.latency_split_ms, LatencySplit) else None
    where = (" Where the floor's time goes (p50): broker in " + _num(split.broker_in.p50)
             + " ms, compute " + _num(split.compute.p50) + " ms, broker out "
             + _num(split.broker_out.p50) + " ms.") if split is not None else ""
    lost = f" It lost {floor.status.missing} answer(s)." if floor.status.missing else ""
    rows = [[f"{_e(floor.pipeline)} (floor)", _e(floor.count), _e(floor.status.missing),
             _num(lat.p50), _num(lat.p90), _num(lat.p99), _num(lat.max), "-", "-"]]
    for name, p in ranked(s):
        over = p.latency_over_floor_ms
        rows.append([_e(name), _e(p.predictions), _e(p.status.missing), _num(p.latency_ms.p50),
                     _num(p.latency_ms.p90), _num(p.latency_ms.p99), _num(p.latency_ms.max),
                     _num(over.p50 if over else None), _num(over.p99 if over else None)])
    return ["<h3>Floor</h3>", "<p>The echo pipeline on the same stream (calibrate = true): what "
            "the broker, the clients and the harness cost every answer here. It is not ranked "
            "and no threshold judges it." + _e(where) + _e(lost) + "</p>", _table(
                ["pipeline", "answered", "missing", "p50 ms", "p90 ms", "p99 ms", "max ms",
                 "p50 over floor ms", "p99 over floor ms"], rows)]


def _details(run: RunData) -> str:
    """The run's figures, commands, incidents, faults and scenario, after the charts."""
    s = run.summary
    dispatch = s.dispatch
    lag = dispatch.lag_ms
    parts = [f"<h2>Details of {_e(run.label)}</h2>", _table(["figure", "value"], [
        ["scenario", _e(s.scenario or None)], ["started", _e(s.started_at or None)],
        ["duration", f"{_num(s.duration_s, 1)} s"],
        ["broker", _e(s.broker.kind or None)],
        ["events sent", _e(dispatch.events_sent)],
        ["rate target / achieved", f"{_num(dispatch.target_rate)} / "
                                   f"{_num(dispatch.achieved_rate, 1)} events/s"],
        ["dispatch lag p50 / p99 / max",
         f"{_num(lag.p50)} / {_num(lag.p99)} / {_num(lag.max)} ms"],
    ])]
    command_rows = [[_e(p), _e(c)] + [_e(v) for v in msgspec.structs.astuple(counts)]
                    for p, fig in s.pipelines.items() if isinstance(fig.commands, dict)
                    for c, counts in fig.commands.items()]
    if command_rows:
        parts += ["<h3>Proctor commands</h3>", _table(
            ["pipeline", "command", "correct", "partial", "incorrect", "syntax error", "late"],
            command_rows)]
    faults = s.faults if isinstance(s.faults, list) else []
    if s.incidents:
        parts += ["<h3>Incidents</h3>", "<p>Injected faults, broker outages (shaded on the charts), "
                  "pipeline exits, restarts and hangs, in order.</p>", _table(
            ["t (s)", "what", "target", "detail", "detected after (s)", "lasted (s)"],
            [[_num(i.t_s), _e(str(i.kind)), _e(i.target), _e(i.detail or None),
              _num(i.detected_after_s), _num(i.duration_s)] for i in s.incidents])]
        corrupted = [f for f in faults if isinstance(f.rows_corrupted, int)]
        if corrupted:
            parts.append("<p>" + _e("; ".join(f"{f.what}: {f.rows_corrupted} rows corrupted"
                                             for f in corrupted)) + "</p>")
    if faults:
        parts += ["<h3>Faults planned</h3>", _table(
            ["at (s)", "action", "target", "what"],
            [[_num(f.at_s), _e(f.action), _e(f.target), _e(f.what)] for f in faults])]
    outages = s.broker.outages
    if outages:
        parts += ["<h3>Broker outages</h3>", _table(
            ["node", "from (s)", "to (s)", "lasted (s)"],
            [[_e(o.node), _num(o.start_s), _num(o.end_s), _num(o.duration_s)] for o in outages])]
    scenario = run.folder / "scenario.toml"
    if scenario.exists():
        parts += ["<h3>Scenario as run</h3>", f"<pre>{_e(scenario.read_text())}</pre>"]
    return "\n".join(parts)


def write_report(folders: list[Path], out: Path | None = None) -> Path:
    """Write ``report.html`` (and ``charts/*.png``) for one run, or overlaying two: then
    ``A/report-vs-<B>.html`` by default (A's own report stays), its charts beside it."""
    runs = [load_run(folder) for folder in folders]
    if len(folders) == 1:
        target = out or folders[0] / "report.html"
        chart_dir = target.parent / "charts"
    else:
        other = re.sub(r"[^A-Za-z0-9_.-]+", "_", folders[1].resolve().name) or "B"
        target = out or folders[0] / f"report-vs-{other}.html"
        chart_dir = target.parent / f"{target.stem}-charts"
    charts = draw_charts(runs, chart_dir)
    title = " vs ".join(run.label for run in runs)
    images = []
    for name, path in charts.items():
        data = base64.b64encode(path.read_bytes()).decode()
        images.append(f'<img alt="{_e(name)}" src="data:image/png;base64,{data}">')
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>ppipe report: {_e(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>ppipe report: {_e(title)}</h1>"
            + (f"<p>A = {_e(runs[0].label)} (solid), B = {_e(runs[1].label)} (dashed)</p>" if len(runs) > 1 else "")
            + "".join(_headline(run) for run in runs)
            + "<h2>Charts</h2>" + "\n".join(images)
            + "".join(_details(run) for run in runs) + "</body></html>")
    target.write_text(page, encoding="utf-8")
    return target
