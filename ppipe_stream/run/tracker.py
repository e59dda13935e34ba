"""When a run stops, and why: the stop rules of ``ppipe run`` in one object.

Owns :class:`RunTracker` (quix-streams' run tracker habit): the run's two
waits (:meth:`RunTracker.dispatching`: until the dispatch finished, an abort,
the wall bound or an overload stop; :meth:`RunTracker.draining`: until every
event and command is answered, the drain time is over, an abort, or no
pipeline runs any more), the abort by threshold
(:meth:`RunTracker.check_thresholds`, on each partial summary), and the
interrupts (:meth:`RunTracker.interrupt`: the first Ctrl+C stops the run, the
second stops it hard). What it watches it reads through small Protocols
(:class:`Answering`, :class:`Settling`, :class:`Running`) and the
:class:`~ppipe_stream.dispatch.base.Dispatch` seam; it starts, stops and
writes nothing: the orchestration acts on what it says.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Sequence
from typing import Protocol

import anyio
import structlog

from ..dispatch.base import Dispatch
from ..results.model import Summary
from ..scenario.model import Scenario
from ..scoring.thresholds import settled_failures

__all__ = ["Answering", "RunTracker", "Running", "Settling", "StopReason", "TICK_S",
           "WALL_MARGIN_S", "planned_seconds"]

log = structlog.get_logger(__name__)

TICK_S = 0.1
WALL_MARGIN_S = 5.0  # a run ends by planned duration + max_lag + drain + this


class StopReason(enum.StrEnum):
    """Why a wait of the run ended (logged as ``run.stop``)."""

    DISPATCH_FINISHED = "dispatch finished"
    OVERLOAD = "on_overload stop"
    WALL_BOUND = "wall-time bound"
    ABORTED = "aborted"
    ALL_ANSWERED = "all answered"
    DRAIN_OVER = "drain over"
    NO_PIPELINE = "no pipeline running"


class Answering(Protocol):
    """The scorer, as the drain sees it."""

    def all_answered(self) -> bool:
        """Every event held has an answer from every pipeline."""
        ...


class Settling(Protocol):
    """The proctor, as the drain sees it."""

    def settled(self) -> bool:
        """Every planned command was sent and answered by each of its targets."""
        ...


class Running(Protocol):
    """A pipeline's runner, as the drain sees it."""

    @property
    def running(self) -> int:
        """Replicas running now."""
        ...


def planned_seconds(scenario: Scenario) -> float | None:
    """The load's planned duration in seconds; None for a count or an endless load."""
    duration = scenario.load.duration
    return None if duration is None or math.isinf(duration) else float(duration)


class RunTracker:
    """The stop rules of one run; made at the start, asked by the orchestration."""

    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario
        self._abort = anyio.Event()
        self.aborted: str | None = None  # summary.json's ``aborted``: why the run was ended early
        self.interrupted = False  # a Ctrl+C, SIGTERM or SIGHUP came
        self.hard_stop = False  # a second one: kill everything, wait for nothing
        self.stopped: StopReason | None = None  # why the last wait ended

    # -- aborts and interrupts -----------------------------------------------------
    @property
    def aborting(self) -> bool:
        return self._abort.is_set()

    def abort(self, reason: str) -> None:
        """End the run now, with a partial result that says why."""
        self.aborted = reason
        log.warning("run.aborted", reason=reason)
        self._abort.set()

    def interrupt(self, signal_name: str) -> bool:
        """A stop signal came; True when it is the second (stop hard)."""
        if self.interrupted:
            log.warning("run.hard_stop")
            self.hard_stop = True
            return True
        self.interrupted = True
        log.warning("run.interrupted", signal=signal_name)
        return False

    def check_thresholds(self, partial: Summary) -> None:
        """``abort_on_fail``: abort once a threshold can no longer pass."""
        scenario = self._scenario
        if not (scenario.scoring.abort_on_fail and scenario.thresholds):
            return
        failed = settled_failures(scenario.thresholds, partial)
        if failed:
            first = failed[0]
            self.abort(f"{first['expr']} can no longer pass"
                       + (f" for {first['pipeline']}" if first["pipeline"] else "")
                       + f" (value {first['value']})")

    # -- the waits -----------------------------------------------------------------
    def wall_bound(self, dispatch: Dispatch) -> float | None:
        """The monotonic time the run must end by: its planned duration (or its count
        at the target rate), plus max_lag, the drain and a margin; None when unknown."""
        load = self._scenario.load
        planned = planned_seconds(self._scenario)
        rate = dispatch.stats.target_rate
        if planned is None and load.count and rate:
            planned = load.count / rate
        if planned is None:
            return None
        lag = 0.0 if math.isinf(load.max_lag_s) else load.max_lag_s
        return time.monotonic() + planned + lag + float(load.drain) + WALL_MARGIN_S

    async def dispatching(self, dispatch: Dispatch, wall_end: float | None) -> StopReason:
        """Wait while the dispatch sends: until it finished, an abort, the wall
        bound, or a lost schedule with ``on_overload = "stop"``."""
        stats = dispatch.stats
        reason = StopReason.DISPATCH_FINISHED
        while not stats.finished:
            if self.aborting:
                reason = StopReason.ABORTED
                break
            await anyio.sleep(TICK_S)
            if wall_end is not None and time.monotonic() > wall_end:
                self.abort("the run passed its wall-time bound (planned duration + max_lag + drain "
                           f"+ {WALL_MARGIN_S:g} s) with events still to send")
                reason = StopReason.WALL_BOUND
                break
            if stats.overloaded:  # a worker stopped: the run stops with it
                break
        if stats.overloaded and not self.aborting:
            self.abort(f"the harness lost the schedule at {stats.schedule_lost_s} s "
                       "and on_overload = \"stop\" ended the run there")
            reason = StopReason.OVERLOAD
        return self._ended(reason)

    async def draining(self, *, scorer: Answering, proctor: Settling | None,
                       runners: Sequence[Running], dispatch_done: anyio.Event,
                       wall_end: float | None) -> StopReason:
        """Wait for the answers: until every event and command is answered (the
        dispatch done), the drain time is over (or the wall bound), an abort, or no
        pipeline runs any more."""
        drain_end = time.monotonic() + float(self._scenario.load.drain)
        if wall_end is not None:
            drain_end = min(drain_end, wall_end)
        while True:
            if self.aborting:
                return self._ended(StopReason.ABORTED)
            if time.monotonic() >= drain_end:
                return self._ended(StopReason.DRAIN_OVER)
            if (scorer.all_answered() and dispatch_done.is_set()
                    and (proctor is None or proctor.settled())):
                return self._ended(StopReason.ALL_ANSWERED)
            if not any(r.running for r in runners):
                log.warning("run.no_pipeline_running")
                return self._ended(StopReason.NO_PIPELINE)
            await anyio.sleep(TICK_S / 2)

    def _ended(self, reason: StopReason) -> StopReason:
        self.stopped = reason
        log.info("run.stop", reason=str(reason))
        return reason

