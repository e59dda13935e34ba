"""Writing what the scorer closed: ``timeline.csv`` rows and the hlog intervals.

Owns :class:`TimelineWriter`: each closed window's row gets the resources of
its pipeline (its runner's), of the harness and of the broker, the broker's
downtime in that window and the incidents seen in it, then goes to the run
folder (and, as :class:`~ppipe_stream.results.model.TimelineRow`, to the live
metrics when there are some: ``--metrics-port``); the latency intervals go to
the hlog files. It computes no figure of
the scorer's and decides nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from ..results.model import TimelineRow
from ..runtime import Runner
from ..scoring import Advance, HlogFiles
from ..watch.broker_health import BrokerWatch
from ..watch.incidents import IncidentLog
from ..watch.resources import TreeSampler
from .folder import RunFolder

if TYPE_CHECKING:  # imported by the CLI only with --metrics-port
    from ..view.prometheus import LiveFigures

__all__ = ["TimelineWriter", "overlap_s"]


class TimelineWriter:
    """Writes each :class:`~ppipe_stream.scoring.scorer.Advance` into the run folder."""

    def __init__(self, *, folder: RunFolder, runners: Sequence[Runner], incidents: IncidentLog,
                 window_ns: int, worker_pids: Callable[[], list[int]],
                 broker_pids: Callable[[], list[int]], metrics: LiveFigures | None = None) -> None:
        self._folder = folder
        self._runners = runners
        self._incidents = incidents
        self._window_ns = window_ns
        self._worker_pids = worker_pids
        self._metrics = metrics
        self._harness_use = TreeSampler(self._harness_pids, children=False)
        self._broker_use = TreeSampler(broker_pids)
        self.hlogs: HlogFiles | None = None  # set when the run's clock starts
        self.broker_watch: BrokerWatch | None = None  # set with them
        self.started_ns = 0

    def _harness_pids(self) -> list[int]:
        """This process and its dispatch workers (not the pipelines or the broker)."""
        return [os.getpid(), *self._worker_pids()]

    def write(self, advance: Advance) -> None:
        stats = {r.name: r.stats() for r in self._runners}
        harness = self._harness_use.sample() or {}
        broker = self._broker_use.sample() or {}
        window_ns = self._window_ns
        outages = self._incidents.outages()
        stalls = self._incidents.stalls()
        watch = self.broker_watch
        for row in advance.timeline_rows:
            sample = stats.get(row["pipeline"])
            row["cpu_percent"] = sample.cpu_percent if sample is not None else None
            row["memory_mib"] = sample.memory_mib if sample is not None else None
            for who, use in (("harness", harness), ("broker", broker)):
                row[f"{who}_cpu_percent"] = use.get("cpu_percent")
                row[f"{who}_memory_mib"] = use.get("memory_mib")
            begin = self.started_ns + int(row["time_s"] * 1e9)
            row["broker_down_s"] = overlap_s(outages, row["time_s"], window_ns / 1e9)
            row["incidents"] = self._incidents.between(begin, begin + window_ns)
            row["broker_response_ms"] = (watch.slowest_between(begin, begin + window_ns)
                                         if watch is not None else None)
            row["broker_stalled_s"] = overlap_s(stalls, row["time_s"], window_ns / 1e9)
        self._folder.append_timeline(advance.timeline_rows)
        if self._metrics is not None and advance.timeline_rows:
            self._metrics.publish_windows(msgspec.convert(advance.timeline_rows, list[TimelineRow], strict=False))
        if self.hlogs is not None:
            self.hlogs.write(advance.hlog_intervals)


def overlap_s(outages: list[dict[str, Any]], start_s: float, length_s: float) -> float:
    """Seconds of ``[start_s, start_s + length_s)`` during which some broker node was down."""
    end_s = start_s + length_s
    return round(sum(max(0.0, min(float(o["end_s"]), end_s) - max(float(o["start_s"]), start_s))
                     for o in outages), 3)
