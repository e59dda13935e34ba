"""The report's charts, as PNG files (matplotlib, no display needed).

Owns drawing, from a run folder's ``timeline.csv``, ``summary.json`` (read as a
:class:`~ppipe_stream.results.model.Summary`) and
``latency-*.hlog``: latency percentiles over time, throughput sent vs answered,
the first metric over time (windows with too few answers left out), the
latency split (broker-in / compute / broker-out), the deadline, latency
thresholds and the run's floor (``calibrate = true``) as lines, the latency distribution (percentile spectrum), the
status breakdown, and resource use when the timeline has it (each pipeline's,
the harness's and the run's own broker's). With a second
run, each chart overlays both. Reads files, writes PNGs; computes no figure.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from hdrh.log import HistogramLogReader

from ..scoring.hist import new_histogram
from ..results.model import LatencySplit, Summary, load_summary

__all__ = ["RunData", "draw_charts", "load_run"]

STATUSES = ("correct", "incorrect", "deadline_exceeded", "missing", "syntax_error", "duplicate", "unknown")


class RunData:
    """What a chart needs of one run folder."""

    def __init__(self, folder: Path, summary: Summary, rows: list[dict[str, str]]) -> None:
        self.folder = folder
        self.summary = summary
        self.rows = rows
        self.label = summary.run_id or folder.name

    @property
    def pipelines(self) -> list[str]:
        return list(self.summary.pipelines)

    def series(self, pipeline: str, column: str) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for row in self.rows:
            if row.get("pipeline") != pipeline:
                continue
            value = row.get(column)
            if value not in (None, ""):
                xs.append(float(row["time_s"]))
                ys.append(float(value))
        return xs, ys

    def spectrum(self, pipeline: str) -> tuple[list[float], list[float]] | None:
        """(percentile, latency ms) from the pipeline's interval log, all intervals added."""
        path = self.folder / f"latency-{pipeline}.hlog"
        if not path.exists():
            return None
        total = new_histogram()
        reader = HistogramLogReader(str(path), new_histogram())
        while (interval := reader.get_next_interval_histogram()) is not None:
            total.add(interval)
        reader.close()
        if total.get_total_count() == 0:
            return None
        quantiles = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100]
        values = total.get_percentile_to_value_dict(quantiles)
        return quantiles, [values[q] / 1000 for q in quantiles]


    def sent_series(self, pipeline: str) -> tuple[list[float], list[float]]:
        """Events sent per window, the warm-up's included (older folders: scored only)."""
        xs, ys = [], []
        for row in self.rows:
            if row.get("pipeline") == pipeline and row.get("sent") not in (None, ""):
                xs.append(float(row["time_s"]))
                ys.append(float(row["sent"]) + float(row.get("sent_warmup") or 0))
        return xs, ys

    def metric_series(self, pipeline: str, metric: str) -> tuple[list[float], list[float], int]:
        """The metric per window, leaving out windows with too few answers to mean
        anything (2 answers right is no "accuracy 1.0"); returns the bound used."""
        answered = [float(r["answered"]) for r in self.rows
                    if r.get("pipeline") == pipeline and r.get("answered") not in (None, "")]
        typical = sorted(answered)[len(answered) // 2] if answered else 0.0
        floor = max(MIN_WINDOW_ANSWERS, int(0.1 * typical))
        xs, ys = [], []
        for row in self.rows:
            if row.get("pipeline") != pipeline or row.get(metric) in (None, ""):
                continue
            if float(row.get("answered") or 0) >= floor:
                xs.append(float(row["time_s"]))
                ys.append(float(row[metric]))
        return xs, ys, floor

    def scenario(self) -> dict[str, Any]:
        """The run folder's scenario.toml (empty when missing or unreadable)."""
        import tomllib

        try:
            return tomllib.loads((self.folder / "scenario.toml").read_text())
        except (OSError, tomllib.TOMLDecodeError):
            return {}

    def latency_lines(self) -> list[tuple[str, float]]:
        """(label, ms) of the deadline, every latency threshold and the run's floor (its
        p50 and p99, ``[scoring] calibrate = true``), for the charts."""
        from ..scoring.thresholds import parse_threshold
        from ..units import parse_duration

        scenario = self.scenario()
        lines = []
        deadline = (scenario.get("scoring") or {}).get("deadline")
        try:
            seconds = parse_duration(str(deadline)) if deadline is not None else math.inf
        except ValueError:
            seconds = math.inf
        if math.isfinite(seconds):
            lines.append(("deadline", seconds * 1000))
        for key, expr in (scenario.get("thresholds") or {}).items():
            try:
                rule = parse_threshold(key, expr)
            except ValueError:
                continue
            if rule.figure.startswith("latency."):
                lines.append((rule.text, rule.value))
        floor = self.summary.floor
        if floor is not None:
            lines += [(f"floor {q}", ms) for q in ("p50", "p99")
                      if (ms := getattr(floor.latency_ms, q)) is not None]
        return lines


MIN_WINDOW_ANSWERS = 5


def load_run(folder: Path) -> RunData:
    summary = load_summary(folder / "summary.json")
    rows: list[dict[str, str]] = []
    timeline = folder / "timeline.csv"
    if timeline.exists():
        with open(timeline, newline="") as fh:
            rows = list(csv.DictReader(fh))
    return RunData(folder, summary, rows)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _legend(ax, **kwargs) -> None:
    """A legend when something on ``ax`` has a label (an empty chart gets none, not a warning)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


_MARKS = {"fault": ("tab:red", "--"), "pipeline_exit": ("black", ":"),
          "pipeline_restart": ("tab:green", ":"), "pipeline_hang": ("tab:orange", "-.")}


def _mark_incidents(ax, run: RunData) -> None:
    """Broker outages shaded, faults, exits, restarts and hangs as vertical lines."""
    for outage in run.summary.broker.outages:
        ax.axvspan(outage.start_s, outage.end_s, color="grey", alpha=0.25, linewidth=0)
    seen = set()
    for incident in run.summary.incidents:
        mark = _MARKS.get(incident.kind)
        if mark:
            label = str(incident.kind) if incident.kind not in seen else None
            seen.add(incident.kind)
            ax.axvline(incident.t_s, color=mark[0], linestyle=mark[1], linewidth=1, label=label)


def _mark_bounds(ax, run: RunData) -> None:
    """The deadline, the latency thresholds and the floor as horizontal lines."""
    for k, (label, ms) in enumerate(run.latency_lines()):
        floor = label.startswith("floor ")
        ax.axhline(ms, color="tab:red" if label == "deadline" else "tab:gray" if floor else "tab:purple",
                   linestyle="--" if label == "deadline" else "-." if floor else ":", linewidth=1,
                   label=label if k < 6 or floor else None)


SPLIT_PARTS = ("broker_in", "compute", "broker_out")


def _draw_split(series: list[tuple[RunData, str, str, str]]):
    """Where each pipeline's latency goes: broker-in, compute, broker-out, p50 and p99
    of each part (percentiles of parts do not add up to the whole's)."""
    import numpy as np

    rows = [(name, split) for run, p, name, _ in series
            if isinstance(split := run.summary.pipelines[p].latency_split_ms, LatencySplit)]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.6 * len(rows) * 2))
    y = np.arange(len(rows))
    for q, (quantile, height, alpha) in enumerate((("p50", 0.38, 1.0), ("p99", 0.38, 0.45))):
        left = np.zeros(len(rows))
        for part, color in zip(SPLIT_PARTS, ("tab:blue", "tab:orange", "tab:green"), strict=True):
            values = np.array([float(getattr(getattr(split, part), quantile) or 0.0) for _, split in rows])
            ax.barh(y + q * height, values, height=height, left=left, color=color, alpha=alpha,
                    label=f"{part} {quantile}")
            left += values
    ax.set_yticks(y + 0.19, [name for name, _ in rows])
    ax.set(title="Latency split: broker-in, compute, broker-out (p50 solid, p99 light)", xlabel="ms")
    _legend(ax, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def draw_charts(runs: list[RunData], out: Path) -> dict[str, Path]:
    """Draw every chart into ``out``; returns {chart name: png path}."""
    out.mkdir(parents=True, exist_ok=True)
    charts: dict[str, Path] = {}
    styles = ["-", "--"]

    def each():
        for r, run in enumerate(runs):
            for pipeline in run.pipelines:
                name = pipeline if len(runs) == 1 else f"{pipeline} ({'AB'[r]})"
                yield run, pipeline, name, styles[r % 2]

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for run, pipeline, name, style in each():
        for column, width in (("latency_p50_ms", 1.0), ("latency_p99_ms", 2.0)):
            xs, ys = run.series(pipeline, column)
            ax.plot(xs, ys, style, linewidth=width, label=f"{name} {column.split('_')[1]}")
    _mark_incidents(ax, runs[0])
    _mark_bounds(ax, runs[0])
    ax.set(title="Latency over time (from intended send time)", xlabel="time (s)", ylabel="ms")
    _legend(ax, fontsize=7, ncol=2)
    charts["latency_over_time"] = _save(fig, out / "latency_over_time.png")

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for r, run in enumerate(runs):
        first = run.pipelines[0] if run.pipelines else None
        if first:
            xs, ys = run.sent_series(first)
            ax.plot(xs, ys, styles[r % 2], color="black", label="sent (warm-up included)"
                    + ("" if len(runs) == 1 else f" ({'AB'[r]})"))
    for run, pipeline, name, style in each():
        xs, ys = run.series(pipeline, "throughput_eps")
        ax.plot(xs, ys, style, label=f"{name} answered")
    _mark_incidents(ax, runs[0])
    ax.set(title="Throughput: events sent vs answered per second", xlabel="time (s)", ylabel="events/s")
    _legend(ax, fontsize=7, ncol=2)
    charts["throughput"] = _save(fig, out / "throughput.png")

    fig, ax = plt.subplots(figsize=(9, 3.6))
    metric, floors = None, set()
    for run, pipeline, name, style in each():
        metrics = run.summary.pipelines[pipeline].metrics
        metric = metric or next(iter(metrics), None)
        if metric:
            xs, ys, floor = run.metric_series(pipeline, metric)
            floors.add(floor)
            ax.plot(xs, ys, style, marker=".", label=name)
    note = f" (windows with under {max(floors)} answers left out)" if floors else ""
    ax.set(title=f"{metric or 'metric'} per window (prequential){note}", xlabel="time (s)",
           ylabel=metric or "")
    _legend(ax, fontsize=7, ncol=2)
    charts["metric_over_time"] = _save(fig, out / "metric_over_time.png")

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for run, pipeline, name, style in each():
        spectrum = run.spectrum(pipeline)
        if spectrum:
            qs, ms = spectrum
            ax.plot([1 / (1 - q / 100) if q < 100 else 1e5 for q in qs], ms, style, marker=".", label=name)
    ax.set_xscale("log")
    ax.set_xticks([1, 2, 10, 100, 1000, 10000, 100000])
    ax.set_xticklabels(["0%", "50%", "90%", "99%", "99.9%", "99.99%", "max"])
    ax.set(title="Latency distribution (percentile spectrum, warm-up excluded)", ylabel="ms")
    _legend(ax, fontsize=7)
    charts["latency_distribution"] = _save(fig, out / "latency_distribution.png")

    split = _draw_split(list(each()))
    if split is not None:
        charts["latency_split"] = _save(split, out / "latency_split.png")

    fig, ax = plt.subplots(figsize=(9, 3.6))
    names, bottoms = [], None
    labels = [name for _, _, name, _ in each()]
    import numpy as np

    bottoms = np.zeros(len(labels))
    for status in STATUSES:
        values = np.array([getattr(run.summary.pipelines[p].status, status) for run, p, _, _ in each()])
        if values.any():
            ax.barh(labels, values, left=bottoms, label=status)
            bottoms += values
            names.append(status)
    ax.set(title="Status of every event (and bad answers)", xlabel="count")
    _legend(ax, fontsize=7, ncol=4)
    charts["statuses"] = _save(fig, out / "statuses.png")

    if any(row.get("memory_mib") for run in runs for row in run.rows):
        fig, (cpu_ax, mem_ax) = plt.subplots(1, 2, figsize=(9, 3.2))
        for run, pipeline, name, style in each():
            cpu_ax.plot(*run.series(pipeline, "cpu_percent"), style, label=name)
            mem_ax.plot(*run.series(pipeline, "memory_mib"), style, label=name)
        for r, run in enumerate(runs):  # the harness's and the broker's own use, once per run
            if not run.pipelines:
                continue
            first = run.pipelines[0]
            for who, color in (("harness", "black"), ("broker", "grey")):
                tag = who if len(runs) == 1 else f"{who} ({'AB'[r]})"
                cpu_ax.plot(*run.series(first, f"{who}_cpu_percent"), styles[r % 2], color=color, label=tag)
                mem_ax.plot(*run.series(first, f"{who}_memory_mib"), styles[r % 2], color=color, label=tag)
        cpu_ax.set(title="CPU (% of one core)", xlabel="time (s)")
        mem_ax.set(title="Memory (MiB)", xlabel="time (s)")
        _legend(cpu_ax, fontsize=7)
        charts["resources"] = _save(fig, out / "resources.png")
    return charts
