"""The run's clock tick: what happens every 100 ms while the run goes.

Owns :class:`Ticker`: each tick it closes the scorer's windows (written by the
:class:`~ppipe_stream.run.timeline.TimelineWriter`), checks for hung pipelines,
polls the runners (every half second), refreshes the live view and hands the
display a frame; every second it writes a partial summary, lets the
:class:`~ppipe_stream.run.tracker.RunTracker` judge the thresholds on it, and
publishes the frame on the scores topic (``ppipe tail``). It runs until
cancelled and stops nothing itself.

Its steps run on the loop that stamps answers as they are read, so it hands
the loop back between them: done in one go, the second's work (timeline row,
resources, summary) held the loop 5-7 ms, and answers read behind it were
stamped that much late (the harness's own loop lateness, p99 6-7 ms).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import anyio
import anyio.lowlevel
import msgspec

from ..runtime import Runner
from .parts import RunParts
from .progress import Progress
from .summary_writer import SummaryWriter
from .timeline import TimelineWriter
from .tracker import TICK_S, RunTracker

__all__ = ["POLL_EVERY_S", "Publisher", "SUMMARY_EVERY_S", "Ticker"]

SUMMARY_EVERY_S = 1.0
POLL_EVERY_S = 0.5  # how often pipelines are checked for exits, OOM kills, restarts


class Publisher(Protocol):
    """What the frames go out with (an ``AIOKafkaProducer``)."""

    async def send(self, topic: str, value: bytes) -> object:
        ...


class Ticker:
    """Start with ``tg.start_soon(ticker.run)`` once the run's parts exist."""

    def __init__(self, parts: RunParts, *, runners: Sequence[Runner], progress: Progress,
                 timeline: TimelineWriter, summary: SummaryWriter, tracker: RunTracker,
                 publisher: Publisher, scores_topic: str) -> None:
        self._parts = parts
        self._runners = runners
        self._progress = progress
        self._timeline = timeline
        self._summary = summary
        self._tracker = tracker
        self._publisher = publisher
        self._scores_topic = scores_topic

    async def run(self) -> None:
        """Every tick: close windows, write timeline rows, publish and save snapshots."""
        parts = self._parts
        last_summary = last_poll = time.monotonic()
        while True:
            await anyio.sleep(TICK_S)
            now = time.time_ns()
            self._timeline.write(parts.scorer.advance(now))
            await anyio.lowlevel.checkpoint()  # each step gives the loop back (see the docstring)
            await parts.hang_watch.check(now)
            if time.monotonic() - last_poll >= POLL_EVERY_S:
                last_poll = time.monotonic()
                for runner in self._runners:
                    await runner.apoll()
            self._progress.view.pipelines = parts.scorer.snapshot(now)
            self._progress.emit()
            if time.monotonic() - last_summary >= SUMMARY_EVERY_S:
                last_summary = time.monotonic()
                await anyio.lowlevel.checkpoint()
                self._tracker.check_thresholds(self._summary.write(complete=False))
                await anyio.lowlevel.checkpoint()
                frame = self._progress.frame()
                await self._publisher.send(self._scores_topic, msgspec.json.encode(frame))
