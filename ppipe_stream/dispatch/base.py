"""The dispatch seam: what every dispatcher is to the run, and its figures.

Owns the :class:`Dispatch` Protocol that one in-process :class:`~.dispatcher.Dispatcher`
and the :class:`~.workers.DispatchWorkers` pool both implement (and
remote agents will), the live :class:`DispatchStats` every implementation
updates through its own methods only (events sent, worker figures combined),
their typed snapshots (:class:`DispatchSummary`, summary.json's ``dispatch``;
:class:`DispatchFigures`, what a worker ships), and :func:`open_plan`, the one
place the dataset and its schedule are built for a run.

It sends nothing and knows no process or broker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec
import numpy as np
from anyio.abc import TaskStatus

from ..datasets import DatasetStream, open_dataset
from ..scoring.hist import decode, encode, merge, new_histogram, quantiles_ms, record_many
from ..watch.loop_lag import LatenessStats
from ..scenario.model import ReplayLoad, Scenario
from .schedule import Schedule, build_schedule

__all__ = ["Dispatch", "DispatchFigures", "DispatchStats", "DispatchSummary", "LagFigures",
           "OnSent", "open_plan"]

# the ledger's hook: ids, intended ns, sent ns, labels; a dispatcher calls it with lists,
# the workers' merge with int64 arrays (the scorer's record_sent takes both)
OnSent = Callable[[Sequence[int], Sequence[int], Sequence[int], Sequence[Any]], None]


@runtime_checkable
class Dispatch(Protocol):
    """One run's dispatch, however it is spread: started by the run with
    ``tg.start``-style ``run(clock=...)``, read through ``stats`` while it goes."""

    @property
    def stats(self) -> DispatchStats:
        """The live figures (the progress display and the summary read them)."""
        ...

    async def run(self, *, clock: tuple[int, int] | None = None,
                  task_status: TaskStatus[None] = ...) -> DispatchStats:
        """Send the whole schedule on the run's clock, (wall ns, ``perf_counter_ns``)
        of offset 0; return the final figures."""
        ...

    def workers_lateness(self) -> LatenessStats | None:
        """The event-loop lateness of the processes that dispatch apart from the
        run's own (merged), None when the run's own loop is the only one."""
        ...


class LagFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Dispatch lag (sent - intended) in ms; None before the first event."""

    p50: float | None
    p99: float | None
    max: float | None


class DispatchSummary(msgspec.Struct, frozen=True, kw_only=True):
    """summary.json's ``dispatch``: a snapshot of :class:`DispatchStats`."""

    events_sent: int
    labels_sent: int
    target_rate: float | None
    achieved_rate: float
    lag_ms: LagFigures
    dataset_exhausted: bool
    planned_events: int
    planned_rate: float | None
    dropped: int
    schedule_lost_at_s: float | None
    stopped_on_overload: bool
    schedule_cut: bool


class DispatchFigures(msgspec.Struct, frozen=True, kw_only=True):
    """One dispatcher's cumulative figures, lag histogram encoded (lossless): what a
    dispatch worker ships to the main process, which combines them."""

    finished: bool
    dataset_exhausted: bool
    labels_sent: int
    events_sent: int
    lag_us: bytes
    dropped: int
    first_planned_ns: int | None
    last_planned_ns: int | None
    schedule_lost_s: float | None
    overloaded: bool
    cut: bool


class DispatchStats:
    """Live figures of a dispatch; read by the progress display and the summary."""

    def __init__(self, target_rate: float | None) -> None:
        self.events_sent = 0
        self.labels_sent = 0
        self.target_rate = target_rate
        self.first_intended_ns: int | None = None
        self.last_sent_ns: int | None = None
        self.last_intended_ns: int | None = None
        self.finished = False
        self.dataset_exhausted = False
        self.lag_us = new_histogram()
        # what the schedule planned, sent or not: events dropped (not sent within
        # max_lag of their time), the planned span, and when the schedule was lost
        self.dropped = 0
        self.first_planned_ns: int | None = None
        self.last_planned_ns: int | None = None
        self.schedule_lost_s: float | None = None  # offset of the first dropped event
        self.overloaded = False  # on_overload = "stop": the dispatcher ended at the first drop
        self.cut = False  # the walk stopped at duration + max_lag, the rest of the schedule unreached

    def record_lag(self, lags_us: np.ndarray) -> None:
        record_many(self.lag_us, lags_us)

    def record_planned(self, first_ns: int, last_ns: int) -> None:
        """Events planned from ``first_ns`` to ``last_ns`` (wall clock) were reached."""
        if self.first_planned_ns is None or first_ns < self.first_planned_ns:
            self.first_planned_ns = first_ns
        if self.last_planned_ns is None or last_ns > self.last_planned_ns:
            self.last_planned_ns = last_ns

    def record_sent(self, intended: np.ndarray, sent: np.ndarray, *, lag: bool = True) -> None:
        """Events sent with these stamps (int64 ns, in any order): counted, their
        span reached, and (``lag``) their lag recorded. The one place sends are
        counted, by a dispatcher as it sends and by the workers' merge (``lag=False``:
        the workers' own lag histograms come with their figures)."""
        if not len(intended):
            return
        first, last = int(intended.min()), int(intended.max())
        if self.first_intended_ns is None or first < self.first_intended_ns:
            self.first_intended_ns = first
        self.events_sent += len(intended)
        self.last_sent_ns = max(self.last_sent_ns or 0, int(sent.max()))
        self.last_intended_ns = max(self.last_intended_ns or 0, last)
        self.record_planned(first, last)
        if lag:
            self.record_lag((sent - intended) // 1000)

    def figures(self) -> DispatchFigures:
        """The cumulative figures, for :meth:`combine` in another process."""
        return DispatchFigures(
            finished=self.finished, dataset_exhausted=self.dataset_exhausted,
            labels_sent=self.labels_sent, events_sent=self.events_sent, lag_us=encode(self.lag_us),
            dropped=self.dropped, first_planned_ns=self.first_planned_ns,
            last_planned_ns=self.last_planned_ns, schedule_lost_s=self.schedule_lost_s,
            overloaded=self.overloaded, cut=self.cut)

    def combine(self, figures: Sequence[DispatchFigures], *, of: int) -> None:
        """Take the latest figures of the workers that reported (``of`` workers in
        all): summed, merged, or the earliest, as one dispatcher's would read.
        Events sent are counted by :meth:`record_sent`, not here."""
        self.labels_sent = sum(f.labels_sent for f in figures)
        self.dataset_exhausted = any(f.dataset_exhausted for f in figures)
        self.lag_us = merge([decode(f.lag_us) for f in figures])
        self.dropped = sum(f.dropped for f in figures)
        for f in figures:
            if f.first_planned_ns is not None and f.last_planned_ns is not None:
                self.record_planned(f.first_planned_ns, f.last_planned_ns)
        lost = [f.schedule_lost_s for f in figures if f.schedule_lost_s is not None]
        self.schedule_lost_s = min(lost) if lost else None
        self.overloaded = any(f.overloaded for f in figures)
        self.cut = any(f.cut for f in figures)
        if len(figures) == of and all(f.finished for f in figures):
            self.finished = True

    @property
    def planned_events(self) -> int:
        """Events the schedule planned up to where the dispatcher came: sent or dropped."""
        return self.events_sent + self.dropped

    @property
    def planned_rate(self) -> float | None:
        """Events per second the schedule itself planned over the span it reached
        (its own randomness included); None below two events or on a zero span
        (a single release)."""
        first, last = self.first_planned_ns, self.last_planned_ns
        if self.planned_events < 2 or first is None or last is None or last <= first:
            return None
        return (self.planned_events - 1) / ((last - first) / 1e9)

    @property
    def achieved_rate(self) -> float:
        """Events per second between the first intended and the last sent stamp."""
        if self.events_sent < 2 or self.first_intended_ns is None or self.last_sent_ns is None:
            return 0.0
        span = (self.last_sent_ns - self.first_intended_ns) / 1e9
        return (self.events_sent - 1) / span if span > 0 else 0.0

    def statistics(self) -> DispatchSummary:
        """A typed snapshot of the figures so far."""
        lag = quantiles_ms(self.lag_us, ("p50", "p99"))
        planned = self.planned_rate
        return DispatchSummary(
            events_sent=self.events_sent, labels_sent=self.labels_sent,
            target_rate=self.target_rate, achieved_rate=round(self.achieved_rate, 3),
            lag_ms=LagFigures(p50=lag["p50"], p99=lag["p99"], max=lag["max"]),
            dataset_exhausted=self.dataset_exhausted, planned_events=self.planned_events,
            planned_rate=None if planned is None else round(planned, 3), dropped=self.dropped,
            schedule_lost_at_s=self.schedule_lost_s, stopped_on_overload=self.overloaded,
            schedule_cut=self.cut)

    def summary(self) -> dict[str, Any]:
        """summary.json's ``dispatch`` (:meth:`statistics` as plain JSON types)."""
        out: dict[str, Any] = msgspec.to_builtins(self.statistics())
        return out


def open_plan(scenario: Scenario, base_dir: Path) -> tuple[DatasetStream, Schedule]:
    """The dataset and the schedule a run walks, built the same way (same seed, same
    rows, same offsets) wherever a dispatch runs: the run's own process or a worker.
    Replay reads the dataset's timestamps from a second, independent pass."""
    load = scenario.load
    dataset = open_dataset(scenario.dataset, base_dir=base_dir, seed=scenario.seed)
    timestamps = None
    if isinstance(load, ReplayLoad):
        again = open_dataset(scenario.dataset, base_dir=base_dir, seed=scenario.seed)
        timestamps = (row.timestamp_s for row in again)
    schedule = build_schedule(load, seed=scenario.seed, n_rows=dataset.n_rows, timestamps=timestamps)
    return dataset, schedule
