"""The harness's own event-loop lateness: how late a short periodic timer wakes.

Owns one measurement: a task on the run's event loop asks to wake every
``interval`` (10 ms) and records, in an HDR histogram of microseconds, how
much later than asked it woke (Node's ``monitorEventLoopDelay`` and
HdrHistogram's jitter meter measure the same thing). A loop that runs late
means the harness was starved of CPU (or blocked): its own stamps - when an
answer was read, when an event was sent - are then late by as much, and the
validity rules say so (``[validity] max_loop_lateness_p99``).

It measures only; it does not judge (that is :mod:`..results.validity`) and does not
know what else the loop runs. Its figures are a typed snapshot,
:meth:`LoopLateness.statistics`.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import anyio
from anyio.abc import TaskStatus
from hdrh.histogram import HdrHistogram

from ..scoring.hist import MAX_US, new_histogram, quantiles_ms

__all__ = ["INTERVAL_S", "LatenessStats", "LoopLateness", "lateness_stats"]

INTERVAL_S = 0.010


class LatenessStats(NamedTuple):
    """Loop lateness so far, in ms (None before the first wake)."""

    samples: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def summary(self) -> dict[str, Any]:
        """``summary.json``'s form: ``{"p50", "p99", "max", "samples"}``."""
        return {"p50": self.p50_ms, "p99": self.p99_ms, "max": self.max_ms, "samples": self.samples}


def lateness_stats(histogram: HdrHistogram) -> LatenessStats:
    """The snapshot of a lateness histogram (one monitor's, or several merged)."""
    figures = quantiles_ms(histogram, ("p50", "p99"))
    return LatenessStats(histogram.get_total_count(), figures["p50"], figures["p99"], figures["max"])


class LoopLateness:
    """Wakes every ``interval_s`` and records how late it woke. Start it with
    ``tg.start(monitor.run)``; it runs until cancelled."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.histogram = new_histogram()  # microseconds

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        interval_ns = int(self.interval_s * 1e9)
        record = self.histogram.record_value
        task_status.started()
        while True:
            planned = time.perf_counter_ns() + interval_ns
            await anyio.sleep(self.interval_s)
            late_us = (time.perf_counter_ns() - planned) // 1000
            record(min(max(late_us, 1), MAX_US))  # 1 us: the histogram's floor

    def statistics(self) -> LatenessStats:
        return lateness_stats(self.histogram)
