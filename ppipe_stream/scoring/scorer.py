"""The scorer: joins sent events with each pipeline's answers and judges them.

Owns the join state, the per-event statuses, the counters of bad answers, the
latency histograms (per window and cumulative, in microseconds), the split of
latency where the pipeline stamps its answers, the river metrics, and the
timeline rows. Pure computation: no Kafka, no files, no clock of its own
(every call is handed the wall-clock ns it should use).

How an event is judged (protocol.md): latency runs from the event's intended
send time to the moment its answer was read (open loop). The first answer
decides: within the deadline it is ``correct`` or ``incorrect``, after it
``deadline_exceeded``; with no valid answer by intended + deadline + drain the
event is ``missing`` and its join state is dropped, so memory follows the
events in flight, not the run's length. Later answers for the same id count as
``duplicate``; answers for ids never sent as ``unknown``; answers for an id
already given up on as ``late_after_drain``; anything that does not decode to
the schema as ``syntax_error``. Metrics are updated with the answers given
within the deadline. Events meant to go before the warm-up's end count in
``warmup_events`` only.
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
from hdrh.histogram import HdrHistogram

from .. import protocol
from ..hist import new_histogram, percentiles_ms, record_many
from .metrics import make_metrics

__all__ = ["Advance", "EventStatus", "Scorer", "ScoringConfig"]

class EventStatus(enum.StrEnum):
    """How one event ended, for one pipeline."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    MISSING = "missing"


COUNTERS = ("syntax_error", "duplicate", "unknown")


class ScoringConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What the scorer needs of the scenario, in nanoseconds."""

    task: str = "classification"
    metrics: list[str] = []
    deadline_ns: int
    window_ns: int
    drain_ns: int
    warmup_end_ns: int = 0
    rtol: float = 1e-6
    atol: float = 1e-6


class Advance(msgspec.Struct):
    """What :meth:`Scorer.advance` closed: timeline rows and hlog intervals."""

    timeline_rows: list[dict[str, Any]]
    hlog_intervals: list[tuple[str, int, int, HdrHistogram]]


class _Window:
    __slots__ = ("answered", "latencies", "status", "metrics", "counters")

    def __init__(self, metrics: dict[str, Any]) -> None:
        self.answered = 0
        self.latencies: list[int] = []
        self.status = dict.fromkeys(EventStatus, 0)
        self.metrics = metrics
        self.counters = dict.fromkeys(COUNTERS, 0)


class _Pipeline:
    """Join state and figures of one pipeline."""

    def __init__(self, name: str, config: ScoringConfig) -> None:
        self.name = name
        self.seen: set[int] = set()  # in-flight ids already answered
        self.status = dict.fromkeys(EventStatus, 0)
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.late_after_drain = 0
        self.warmup_answers = 0
        self.answers = 0  # distinct events answered (any status but missing), warm-up included
        self.missing_total = 0  # warm-up included
        self.latency = new_histogram()
        self.latency_total_us = 0
        self.split = {"broker_in": new_histogram(), "compute": new_histogram(),
                      "broker_out": new_histogram()}
        self.split_values: dict[str, list[int]] = {k: [] for k in self.split}
        self.metrics = make_metrics(list(config.metrics), config.task)
        self.windows: dict[int, _Window] = {}
        self.first_read_ns: int | None = None
        self.last_read_ns: int | None = None


class Scorer:
    """Scores every pipeline of a run against the events the dispatcher sent."""

    def __init__(self, pipelines: Sequence[str], config: ScoringConfig, *, start_ns: int) -> None:
        self.config = config
        self.start_ns = start_ns
        self._pipelines = {name: _Pipeline(name, config) for name in pipelines}
        self._events: dict[int, tuple[int, int, Any]] = {}  # id -> (intended, sent, label)
        self._order: collections.deque[int] = collections.deque()  # ids in send order
        self._evicted: set[int] = set()
        self._evicted_below = 0  # ids below were all sent and given up on or finished
        self._max_id = -1
        self.events = 0
        self.warmup_events = 0
        self._sent_windows: dict[int, list[int]] = {}  # window -> [count, *lags_us]
        self._closed_below = 0  # windows below this index are closed
        self.replies: list[tuple[str, protocol.Reply, int]] = []
        self._regression = config.task == "regression"
        self._decode = protocol.output_decoder.decode

    # -- input ----------------------------------------------------------------
    def record_sent(self, ids: Sequence[int], intended_ns: Sequence[int], sent_ns: Sequence[int],
                    labels: Sequence[Any]) -> None:
        """The dispatcher sent these events (called before they reach the broker)."""
        events, order = self._events, self._order
        warm = self.config.warmup_end_ns
        for event_id, intended, sent, label in zip(ids, intended_ns, sent_ns, labels):
            events[event_id] = (intended, sent, label)
            order.append(event_id)
            if intended < warm:
                self.warmup_events += 1
            if event_id > self._max_id:
                self._max_id = event_id
        self.events += len(ids)
        if len(ids):
            window = self._window_of(intended_ns[0])
            bucket = self._sent_windows.setdefault(max(window, self._closed_below), [0])
            bucket[0] += len(ids)
            bucket.extend(((s - i) // 1000 for s, i in zip(sent_ns, intended_ns)))

    def on_output(self, pipeline: str, values: Sequence[bytes | None], read_ns: int) -> None:
        """Answers read from ``pipeline``'s output topic at ``read_ns``."""
        state = self._pipelines[pipeline]
        decode = self._decode
        window = self._window(state, read_ns)
        for value in values:
            try:
                if value is None:
                    raise msgspec.DecodeError("a message without a value")
                message = decode(value)
            except msgspec.DecodeError:
                state.counters["syntax_error"] += 1
                window.counters["syntax_error"] += 1
                continue
            if isinstance(message, protocol.Reply):
                self.replies.append((pipeline, message, read_ns))
                continue
            if message.id is not None and message.ids is None:
                self._answer(state, window, message.id, message.prediction, message, read_ns)
            elif (message.id is None and message.ids is not None and message.predictions is not None
                  and len(message.ids) == len(message.predictions)):
                for event_id, prediction in zip(message.ids, message.predictions):
                    self._answer(state, window, event_id, prediction, message, read_ns)
            else:
                state.counters["syntax_error"] += 1
                window.counters["syntax_error"] += 1

    def _answer(self, state: _Pipeline, window: _Window, event_id: int, prediction: Any,
                message: protocol.Prediction, read_ns: int) -> None:
        event = self._events.get(event_id)
        if event is None:
            if 0 <= event_id <= self._max_id and (event_id < self._evicted_below or event_id in self._evicted):
                state.late_after_drain += 1
            else:
                state.counters["unknown"] += 1
                window.counters["unknown"] += 1
            return
        if event_id in state.seen:
            state.counters["duplicate"] += 1
            window.counters["duplicate"] += 1
            return
        state.seen.add(event_id)
        state.answers += 1
        intended, sent, label = event
        if intended < self.config.warmup_end_ns:
            state.warmup_answers += 1
            return
        latency_ns = read_ns - intended
        if state.first_read_ns is None:
            state.first_read_ns = read_ns
        state.last_read_ns = read_ns
        window.answered += 1
        window.latencies.append(latency_ns // 1000)
        if message.received_ns is not None and message.emitted_ns is not None:
            split = state.split_values
            split["broker_in"].append((message.received_ns - sent) // 1000)
            split["compute"].append((message.emitted_ns - message.received_ns) // 1000)
            split["broker_out"].append((read_ns - message.emitted_ns) // 1000)
        if latency_ns > self.config.deadline_ns:
            status = EventStatus.DEADLINE_EXCEEDED
        else:
            status = EventStatus.CORRECT if self._matches(prediction, label) else EventStatus.INCORRECT
            for metric in state.metrics.values():
                _update(metric, label, prediction)
            for metric in window.metrics.values():
                _update(metric, label, prediction)
        state.status[status] += 1
        window.status[status] += 1

    def _matches(self, prediction: Any, label: Any) -> bool:
        if not self._regression:
            return prediction == label
        try:
            return abs(float(prediction) - float(label)) <= self.config.atol + self.config.rtol * abs(float(label))
        except (TypeError, ValueError):
            return False

    # -- time -----------------------------------------------------------------
    def _window_of(self, ns: int) -> int:
        return max((ns - self.start_ns) // self.config.window_ns, 0)

    def _window(self, state: _Pipeline, read_ns: int) -> _Window:
        index = max(self._window_of(read_ns), self._closed_below)
        window = state.windows.get(index)
        if window is None:
            window = state.windows[index] = _Window(make_metrics(list(self.config.metrics),
                                                                 self.config.task))
        return window

    def advance(self, now_ns: int) -> Advance:
        """Give up on events that can no longer be answered; close finished windows."""
        self._evict(now_ns - self.config.deadline_ns - self.config.drain_ns)
        return self._close(self._window_of(now_ns))

    def finish(self, now_ns: int) -> Advance:
        """The end of the drain: every event still unanswered is missing; close all windows."""
        self._evict(None)
        last = max([self._closed_below, *self._sent_windows,
                    *(w for p in self._pipelines.values() for w in p.windows)])
        return self._close(max(last + 1, self._window_of(now_ns)))

    def _evict(self, before_ns: int | None) -> None:
        events, order = self._events, self._order
        warm = self.config.warmup_end_ns
        while order:
            event_id = order[0]
            intended = events[event_id][0]
            if before_ns is not None and intended >= before_ns:
                break
            order.popleft()
            del events[event_id]
            for state in self._pipelines.values():
                if event_id in state.seen:
                    state.seen.discard(event_id)
                else:
                    state.missing_total += 1
                    if intended >= warm:
                        state.status[EventStatus.MISSING] += 1
                        window = self._window(state, intended + self.config.deadline_ns)
                        window.status[EventStatus.MISSING] += 1
            if event_id == self._evicted_below:
                self._evicted_below += 1
                while self._evicted_below in self._evicted:
                    self._evicted.discard(self._evicted_below)
                    self._evicted_below += 1
            else:
                self._evicted.add(event_id)

    def _close(self, below: int) -> Advance:
        rows: list[dict[str, Any]] = []
        intervals: list[tuple[str, int, int, HdrHistogram]] = []
        for index in range(self._closed_below, below):
            sent = self._sent_windows.pop(index, [0])
            lags = sent[1:]
            start = self.start_ns + index * self.config.window_ns
            end = start + self.config.window_ns
            for state in self._pipelines.values():
                window = state.windows.pop(index, None) or _Window({})
                hist = new_histogram()
                record_many(hist, window.latencies)
                state.latency.add(hist)
                state.latency_total_us += sum(window.latencies)
                for key, values in state.split_values.items():
                    record_many(state.split[key], values)
                    values.clear()
                intervals.append((state.name, start, end, hist))
                window_ms = percentiles_ms(hist, ("p50", "p99"))
                row = {
                    "time_s": round(index * self.config.window_ns / 1e9, 3),
                    "pipeline": state.name,
                    "sent": sent[0],
                    "answered": window.answered,
                    "throughput_eps": round(window.answered / (self.config.window_ns / 1e9), 3),
                    "latency_p50_ms": window_ms["p50"],
                    "latency_p99_ms": window_ms["p99"],
                    "lag_ms_p99": float(np.percentile(lags, 99)) / 1000 if lags else None,
                }
                for name in state.metrics:
                    metric = window.metrics.get(name)
                    row[name] = _get(metric) if metric is not None and window.answered else None
                row.update({str(k): v for k, v in window.status.items()})
                row.update(window.counters)
                rows.append(row)
        self._closed_below = max(self._closed_below, below)
        return Advance(timeline_rows=rows, hlog_intervals=intervals)

    # -- reading --------------------------------------------------------------
    def all_answered(self) -> bool:
        """Every event sent so far has an answer (or was given up on) from every pipeline."""
        return all(p.answers + p.missing_total >= self.events for p in self._pipelines.values())

    @property
    def in_flight(self) -> int:
        """Events whose join state is still held (bounded by rate x (deadline + drain))."""
        return len(self._events)

    def snapshot(self, now_ns: int) -> dict[str, dict[str, Any]]:
        """Cheap live figures per pipeline (histograms as of the last closed window)."""
        out = {}
        for name, state in self._pipelines.items():
            live = percentiles_ms(state.latency, ("p50", "p99"))
            out[name] = {
                "sent": self.events,
                "answered": state.answers,
                "status": {str(k): v for k, v in state.status.items()},
                **state.counters,
                "latency_p50_ms": live["p50"],
                "latency_p99_ms": live["p99"],
                "metrics": {k: _get(m) for k, m in state.metrics.items()},
            }
        return out

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per pipeline, the entries of results.md's ``pipelines`` (plus extra keys)."""
        out = {}
        scored_events = self.events - self.warmup_events
        for name, state in self._pipelines.items():
            answered = sum(state.status[s] for s in (EventStatus.CORRECT, EventStatus.INCORRECT,
                                                      EventStatus.DEADLINE_EXCEEDED))
            span = ((state.last_read_ns or 0) - (state.first_read_ns or 0)) / 1e9
            status = {str(k): v for k, v in state.status.items()}
            status.update(state.counters)
            out[name] = {
                "predictions": answered,
                "status": status,
                "throughput_eps": round((answered - 1) / span, 3) if span > 0 and answered > 1 else 0.0,
                "latency_ms": percentiles_ms(state.latency, total_us=state.latency_total_us),
                "latency_split_ms": {key: percentiles_ms(h, ("p50", "p99"))
                                     for key, h in state.split.items()},
                "metrics": {k: _get(m) for k, m in state.metrics.items()},
                "events": scored_events,
                "warmup_events": self.warmup_events,
                "late_after_drain": state.late_after_drain,
                "missing_ratio": round(state.status[EventStatus.MISSING] / scored_events, 6)
                if scored_events else 0.0,
            }
        return out


def _update(metric: Any, label: Any, prediction: Any) -> None:
    try:
        metric.update(label, prediction)
    except (TypeError, ValueError, KeyError):
        pass  # a prediction of the wrong type: judged incorrect, kept out of the metric


def _get(metric: Any) -> float | None:
    try:
        value = float(metric.get())
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return None if math.isnan(value) else round(value, 6)
