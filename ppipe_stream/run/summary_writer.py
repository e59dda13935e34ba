"""Writing ``summary.json`` (and ``report.html``) from the components' snapshots.

Owns :class:`SummaryWriter`: take each component's typed snapshot at one
moment (the scorer's, the proctor's, the incident log's, the dispatch's, each
runner's status with the hang watch's, the broker's, the harness's lateness),
hand them to :func:`~ppipe_stream.results.builder.build_summary` and write the
result (and hand it to the live metrics when there are some: ``--metrics-port``);
at the end of a complete run it first closes the scorer's last windows and
judges the proctor's last replies. A partial summary is written
every second while the run goes, so a crash leaves one. It computes no figure.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from ..results.builder import RunSnapshots, build_summary
from ..results.model import ContainerFigures, HarnessFigures, LatenessFigures, Outcome, Summary
from ..runtime import Runner
from ..scenario.calibration import floor_name
from ..scenario.model import Scenario
from ..watch.incidents import IncidentLog
from ..watch.loop_lag import LatenessStats, LoopLateness
from .broker_start import RunBroker
from .folder import RunFolder, iso_utc
from .parts import RunParts
from .timeline import TimelineWriter
from .tracker import RunTracker

if TYPE_CHECKING:  # imported by the CLI only with --metrics-port
    from ..view.prometheus import LiveFigures

__all__ = ["SummaryWriter"]

log = structlog.get_logger(__name__)


def _lateness(stats: LatenessStats) -> LatenessFigures:
    return LatenessFigures(p50=stats.p50_ms, p99=stats.p99_ms, max=stats.max_ms, samples=stats.samples)


class SummaryWriter:
    """Builds and writes the run's summary; ``parts`` is set once the run's clock starts."""

    def __init__(self, scenario: Scenario, *, folder: RunFolder, broker: RunBroker,
                 runners: Sequence[Runner], incidents: IncidentLog, tracker: RunTracker,
                 lateness: LoopLateness, timeline: TimelineWriter, metrics: LiveFigures | None = None) -> None:
        self._scenario = scenario
        self._folder = folder
        self._broker = broker
        self._runners = runners
        self._incidents = incidents
        self._tracker = tracker
        self._lateness = lateness
        self._timeline = timeline
        self._metrics = metrics
        self.parts: RunParts | None = None
        self.started_ns = time.time_ns()  # the run's clock once it starts
        self.error: str | None = None  # the first line of what ended the run, if it failed

    def write(self, *, complete: bool) -> Summary:
        """Take every component's snapshot, build the summary from them, write it."""
        parts, tracker = self.parts, self._tracker
        now = time.time_ns()
        if complete and parts is not None:
            self._timeline.write(parts.scorer.finish(now))
            parts.hlogs.close()
            if parts.proctor is not None:
                parts.proctor.finish()
        containers: dict[str, ContainerFigures] = {}
        for runner in self._runners:
            status = runner.status()
            hang = parts.hang_watch.summary(runner.name) if parts is not None else {}
            containers[runner.name] = ContainerFigures(
                restarts=status.restarts, oom_killed=status.oom_killed, exit_code=status.exit_code,
                hangs=hang.get("hangs", 0), hung_now=hang.get("hung_now", False))
        incidents = self._incidents.statistics(now)
        outcome = (Outcome.COMPLETE if complete else Outcome.INTERRUPTED if tracker.interrupted
                   else Outcome.FAILED if self.error else Outcome.RUNNING)
        snapshots = RunSnapshots(
            run_id=self._folder.run_id, scenario=self._scenario.name, complete=complete,
            outcome=outcome, started_at=iso_utc(self.started_ns),
            duration_s=round((now - self.started_ns) / 1e9, 3),
            broker=self._broker.figures(incidents, parts.broker_watch.statistics() if parts is not None else None),
            harness=self._harness(parts),
            dispatch=parts.dispatch.stats.statistics() if parts is not None else None,
            scored=parts.scorer.statistics() if parts is not None else None,
            commands=parts.proctor.statistics() if parts is not None and parts.proctor else None,
            containers=containers, incidents=incidents,
            faults=parts.injector.summary() if parts is not None and parts.injector else None,
            aborted=tracker.aborted, error=self.error, interrupted=tracker.interrupted,
            floor=floor_name(self._scenario))
        summary = build_summary(snapshots, thresholds=self._scenario.thresholds,
                                rules=self._scenario.validity)
        written = self._folder.write_summary(summary)
        assert isinstance(written, Summary)
        if self._metrics is not None:  # before the report: the final figures are served while it draws
            self._metrics.publish_summary(written)
        if complete or tracker.interrupted or self.error:
            self._write_report()
        return written

    def _harness(self, parts: RunParts | None) -> HarnessFigures:
        """summary.json's ``harness``: the run's own event-loop lateness (and its
        dispatch workers', merged, when there are some)."""
        workers = parts.dispatch.workers_lateness() if parts is not None else None
        own = _lateness(self._lateness.statistics())
        if workers is None:
            return HarnessFigures(loop_lateness_ms=own)
        return HarnessFigures(loop_lateness_ms=own, workers_loop_lateness_ms=_lateness(workers))

    def _write_report(self) -> None:
        """report.html at the end of every run; a drawing problem is logged, not raised."""
        try:
            from ..report import write_report
            from ..report.ci import write_run_ci_files

            write_run_ci_files(self._folder.path)  # junit.xml, summary.md: cheap, before the charts
            write_report([self._folder.path])
        except Exception:
            log.exception("report.failed")
