"""The report's charts, as PNG files (matplotlib, no display needed).

Owns drawing, from a run folder's ``timeline.csv``, ``summary.json`` and
``latency-*.hlog``: latency percentiles over time, throughput sent vs answered,
the first metric over time, the latency distribution (percentile spectrum),
the status breakdown, and resource use when the timeline has it. With a second
run, each chart overlays both. Reads files, writes PNGs; computes no figure.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from hdrh.log import HistogramLogReader  # noqa: E402

from ..hist import new_histogram  # noqa: E402

__all__ = ["RunData", "draw_charts", "load_run"]

STATUSES = ("correct", "incorrect", "deadline_exceeded", "missing", "syntax_error", "duplicate", "unknown")


class RunData:
    """What a chart needs of one run folder."""

    def __init__(self, folder: Path, summary: dict[str, Any], rows: list[dict[str, str]]) -> None:
        self.folder = folder
        self.summary = summary
        self.rows = rows
        self.label = summary.get("run_id") or folder.name

    @property
    def pipelines(self) -> list[str]:
        return list((self.summary.get("pipelines") or {}).keys())

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


def load_run(folder: Path) -> RunData:
    import json

    summary = json.loads((folder / "summary.json").read_text())
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
    for outage in (run.summary.get("broker") or {}).get("outages") or []:
        ax.axvspan(outage["start_s"], outage["end_s"], color="grey", alpha=0.25, linewidth=0)
    seen = set()
    for incident in run.summary.get("incidents") or []:
        mark = _MARKS.get(incident.get("kind"))
        if mark:
            label = incident["kind"] if incident["kind"] not in seen else None
            seen.add(incident["kind"])
            ax.axvline(incident["t_s"], color=mark[0], linestyle=mark[1], linewidth=1, label=label)


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
    ax.set(title="Latency over time (from intended send time)", xlabel="time (s)", ylabel="ms")
    _legend(ax, fontsize=7, ncol=2)
    charts["latency_over_time"] = _save(fig, out / "latency_over_time.png")

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for r, run in enumerate(runs):
        first = run.pipelines[0] if run.pipelines else None
        if first:
            xs, ys = run.series(first, "sent")
            ax.plot(xs, ys, styles[r % 2], color="black", label="sent" + ("" if len(runs) == 1 else f" ({'AB'[r]})"))
    for run, pipeline, name, style in each():
        xs, ys = run.series(pipeline, "throughput_eps")
        ax.plot(xs, ys, style, label=f"{name} answered")
    _mark_incidents(ax, runs[0])
    ax.set(title="Throughput: events sent vs answered per second", xlabel="time (s)", ylabel="events/s")
    _legend(ax, fontsize=7, ncol=2)
    charts["throughput"] = _save(fig, out / "throughput.png")

    fig, ax = plt.subplots(figsize=(9, 3.6))
    metric = None
    for run, pipeline, name, style in each():
        metrics = (run.summary["pipelines"][pipeline].get("metrics") or {})
        metric = metric or next(iter(metrics), None)
        if metric:
            xs, ys = run.series(pipeline, metric)
            ax.plot(xs, ys, style, label=name)
    ax.set(title=f"{metric or 'metric'} per window (prequential)", xlabel="time (s)", ylabel=metric or "")
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

    fig, ax = plt.subplots(figsize=(9, 3.6))
    names, bottoms = [], None
    labels = [name for _, _, name, _ in each()]
    import numpy as np

    bottoms = np.zeros(len(labels))
    for status in STATUSES:
        values = np.array([(run.summary["pipelines"][p].get("status") or {}).get(status, 0) for run, p, _, _ in each()])
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
        cpu_ax.set(title="CPU (% of one core)", xlabel="time (s)")
        mem_ax.set(title="Memory (MiB)", xlabel="time (s)")
        _legend(cpu_ax, fontsize=7)
        charts["resources"] = _save(fig, out / "resources.png")
    return charts
