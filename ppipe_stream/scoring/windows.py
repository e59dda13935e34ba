"""Timeline windows: what one window of the run holds, and its ``timeline.csv`` row.

Owns the per-window accumulators (answers by read time, sent events and
dispatch lag by intended time, statuses and counters by the time they were
decided) and the row format of results.md's ``timeline.csv``: ``time_s``
(window start, seconds after the run's start), ``pipeline``, ``sent``,
``answered``, ``throughput_eps``, ``latency_p50_ms``, ``latency_p99_ms``, one
column per metric (the window's own value, not the run's so far),
``lag_ms_p99``, then the four statuses and the three counters. Every row has
every column, in this order, so the CSV header is known from the first row.
It does not decide statuses: the scorer does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from .hist import new_histogram, quantiles_ms, record_array
from .metrics import MetricSet

__all__ = ["SentWindow", "Window", "timeline_row"]

STATUS_KEYS = ("correct", "incorrect", "deadline_exceeded", "missing")
COUNTER_KEYS = ("syntax_error", "duplicate", "unknown")


class Window:
    """One pipeline's figures in one window."""

    __slots__ = ("answered", "status", "counters", "latency", "latency_sum_ns", "metrics",
                 "pending_truths", "pending_guesses")

    def __init__(self) -> None:
        self.answered = 0
        self.status = dict.fromkeys(STATUS_KEYS, 0)
        self.counters = dict.fromkeys(COUNTER_KEYS, 0)
        self.latency: HdrHistogram = new_histogram()  # us, scored answers read in the window
        self.latency_sum_ns = 0
        self.metrics: MetricSet | None = None  # made on the first answer judged in time
        self.pending_truths: list[Any] = []  # answers judged, not yet fed to the metrics
        self.pending_guesses: list[Any] = []


class SentWindow:
    """The scored events intended in one window, and their dispatch lag (us); and
    the warm-up events intended in it (sent, never scored)."""

    __slots__ = ("count", "lag", "warmup")

    def __init__(self) -> None:
        self.count = 0
        self.warmup = 0
        self.lag: HdrHistogram | None = None

    def add(self, lag_us: np.ndarray) -> None:
        self.count += len(lag_us)
        if self.lag is None:
            self.lag = new_histogram()
        record_array(self.lag, lag_us)


def timeline_row(*, time_s: float, pipeline: str, sent: SentWindow, window: Window,
                 seconds: float, metric_names: list[str]) -> dict[str, Any]:
    """The ``timeline.csv`` row of one closed window of one pipeline."""
    latency = quantiles_ms(window.latency, ("p50", "p99"))
    values = window.metrics.get() if window.metrics is not None else {}
    lag = quantiles_ms(sent.lag, ("p99",))["p99"] if sent.lag is not None else None
    row: dict[str, Any] = {
        "time_s": round(time_s, 6),
        "pipeline": pipeline,
        "sent": sent.count,
        "answered": window.answered,
        "throughput_eps": round(window.answered / seconds, 3),
        "latency_p50_ms": latency["p50"],
        "latency_p99_ms": latency["p99"],
    }
    for name in metric_names:
        row[name] = values.get(name)
    row["lag_ms_p99"] = lag
    row.update(window.status)
    row.update(window.counters)
    row["sent_warmup"] = sent.warmup  # sent in the warm-up: on the throughput chart, not scored
    return row
