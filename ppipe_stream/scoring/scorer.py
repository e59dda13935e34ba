"""The scorer: joins sent events with each pipeline's answers and judges them.

Owns the per-event statuses, the counters of bad answers, the latency
histograms (per window and cumulative, in microseconds), the latency split,
the metrics and the timeline rows. Pure computation: no Kafka, no files, no
clock of its own (every call is handed the wall-clock ns it should use).
The join state lives in :mod:`.ledger`, decoding in :mod:`.decode`, metric
feeding in :mod:`.metrics`, histogram arithmetic in :mod:`.hdr`.

How an event is judged (protocol.md), per pipeline:

- latency runs from the event's intended send time to the moment its answer
  was read (open loop); the first answer decides: within ``deadline_ns`` it is
  ``correct`` or ``incorrect`` (equality for classification; for regression
  ``|p - y| <= atol + rtol * |y|``), after it ``deadline_exceeded``;
- an event with no answer by intended + deadline + drain is ``missing``: it is
  dropped from the ledger then (so memory follows the events in flight), or at
  :meth:`Scorer.finish`; an answer that comes after that is counted as
  ``late_after_drain`` and changes nothing (a second answer that late cannot
  be told from a first one: it is counted the same way);
- later answers for an id are ``duplicate``; ids never sent ``unknown``;
  undecodable or off-schema messages ``syntax_error`` (see :mod:`.decode`).

Metrics take the answers judged ``correct`` or ``incorrect``: an answer after
the deadline did not count for the user, so it does not count for the model's
quality either (``missing_ratio`` and ``deadline_exceeded`` report those).
Events intended before ``warmup_end_ns`` are left out of every figure (status
counts, duplicates, latency, metrics, timeline, hlog) and counted in
``warmup_events``; syntax errors and unknown ids cannot be told apart by
event and always count.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
from hdrh.histogram import HdrHistogram

from .. import protocol
from .decode import Answers, decode_answers
from .hdr import new_histogram, quantiles_ms, record_array
from .ledger import HOLE, Ledger
from .metrics import DEFAULT_METRICS, MetricSet, feed
from .windows import SentWindow, Window, timeline_row

__all__ = ["Advance", "COUNTERS", "EventStatus", "Scorer", "ScoringConfig"]

_INT64 = (-(2**63), 2**63 - 1)
_NP_TRUE = np.True_


class EventStatus(enum.StrEnum):
    """How one event ended, for one pipeline."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    MISSING = "missing"


COUNTERS = ("syntax_error", "duplicate", "unknown")


class ScoringConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What the scorer needs of the scenario; times in ns, ``warmup_end_ns`` absolute."""

    task: str = "classification"
    metrics: list[str] = []
    deadline_ns: int
    window_ns: int
    drain_ns: int
    warmup_end_ns: int = 0
    rtol: float = 1e-6
    atol: float = 1e-6

    def __post_init__(self) -> None:
        if self.task not in DEFAULT_METRICS:
            raise ValueError(f"task must be classification or regression, not {self.task!r}")
        if self.window_ns <= 0 or self.deadline_ns < 0 or self.drain_ns < 0:
            raise ValueError("window must be positive, deadline and drain not negative")


class Advance(msgspec.Struct):
    """What :meth:`Scorer.advance` closed: timeline rows and hlog intervals
    ``(pipeline, start_ns, end_ns, histogram of latency in us)``."""

    timeline_rows: list[dict[str, Any]]
    hlog_intervals: list[tuple[str, int, int, HdrHistogram]]


class _Track:
    """The figures of one pipeline."""

    def __init__(self, name: str, index: int, metric_names: list[str], task: str) -> None:
        self.name = name
        self.index = index  # its row in the ledger's answered flags
        self.status = dict.fromkeys(map(str, EventStatus), 0)
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.late_after_drain = 0
        self.answers = 0  # distinct events answered, warm-up included
        self.latency = new_histogram()  # closed windows
        self.latency_sum_ns = 0
        self.split = {key: new_histogram() for key in ("broker_in", "compute", "broker_out")}
        self.metrics = MetricSet(metric_names, task)
        self.windows: dict[int, Window] = {}
        self.last_read_ns: int | None = None


class Scorer:
    """Scores every pipeline of a run against the events the dispatcher sent."""

    def __init__(self, pipelines: Sequence[str], config: ScoringConfig, *, start_ns: int) -> None:
        self.config = config
        self.start_ns = start_ns
        self.metric_names = list(config.metrics) or DEFAULT_METRICS[config.task]
        self._tracks = {name: _Track(name, k, self.metric_names, config.task)
                        for k, name in enumerate(pipelines)}
        self._ledger = Ledger(len(self._tracks))
        self._sent: dict[int, SentWindow] = {}
        self._closed_below = 0  # windows below this index are closed
        self._first_scored_ns: int | None = None  # intended stamp of the first scored event
        self._regression = config.task == "regression"
        self.events = 0  # sent, warm-up included
        self.warmup_events = 0
        self.replies: list[tuple[str, protocol.Reply, int]] = []

    # -- what was sent -------------------------------------------------------
    def record_sent(self, ids: Sequence[int], intended_ns: Sequence[int], sent_ns: Sequence[int],
                    labels: Sequence[Any]) -> None:
        """The dispatcher sent these events (called before they reach the broker)."""
        if not len(ids):
            return
        self._ledger.append(ids, intended_ns, sent_ns, labels)
        self.events += len(ids)
        intended = np.asarray(intended_ns, dtype=np.int64)
        lag_us = (np.asarray(sent_ns, dtype=np.int64) - intended) // 1000
        scored = intended >= self.config.warmup_end_ns
        if not scored.all():
            self.warmup_events += int(np.count_nonzero(~scored))
            intended, lag_us = intended[scored], lag_us[scored]
        if not len(intended):
            return
        if self._first_scored_ns is None:
            self._first_scored_ns = int(intended[0])
        index = np.maximum((intended - self.start_ns) // self.config.window_ns, self._closed_below)
        groups = [int(index[0])] if index[0] == index[-1] else np.unique(index).tolist()
        for window in groups:
            part = lag_us if len(groups) == 1 else lag_us[index == window]
            self._sent.setdefault(window, SentWindow()).add(part)

    # -- what came back --------------------------------------------------------
    def on_output(self, pipeline: str, values: Sequence[bytes | None], read_ns: int) -> None:
        """Raw message values read from ``pipeline``'s output topic at ``read_ns``."""
        track = self._tracks[pipeline]
        answers = decode_answers(values)
        window = self._window(track, read_ns)
        if answers.syntax_errors:
            track.counters["syntax_error"] += answers.syntax_errors
            window.counters["syntax_error"] += answers.syntax_errors
        for reply in answers.replies:
            self.replies.append((pipeline, reply, read_ns))
        if answers.ids:
            self._judge(track, window, answers, read_ns)

    def _judge(self, track: _Track, window: Window, answers: Answers, read_ns: int) -> None:
        ledger, config = self._ledger, self.config
        ids = _int64(answers.ids)
        k = np.arange(len(ids))  # answer numbers still in play
        held = (ids >= ledger.lo) & (ids < ledger.hi)
        if not held.all():
            dropped = int(np.count_nonzero((ids >= 0) & (ids < ledger.lo)))
            track.late_after_drain += dropped
            self._count(track, window, "unknown", len(ids) - int(np.count_nonzero(held)) - dropped)
            k = k[held]
        pos = ledger.positions(ids[k])
        intended = ledger.intended[pos]
        hole = intended == HOLE
        if hole.any():
            self._count(track, window, "unknown", int(np.count_nonzero(hole)))
            k, pos, intended = k[~hole], pos[~hole], intended[~hole]
        flags = ledger.answered[track.index]
        new = ~flags[pos] & _first_occurrences(pos)
        if not new.all():
            duplicate = ~new
            self._count(track, window, "duplicate",
                        int(np.count_nonzero(intended[duplicate] >= config.warmup_end_ns)))
            k, pos, intended = k[new], pos[new], intended[new]
        flags[pos] = True
        ledger.pending[track.index] -= len(pos)
        track.answers += len(pos)
        scored = intended >= config.warmup_end_ns
        if not scored.all():
            k, pos, intended = k[scored], pos[scored], intended[scored]
        if not len(k):
            return
        track.last_read_ns = read_ns
        latency_ns = read_ns - intended
        record_array(window.latency, latency_ns // 1000)
        window.latency_sum_ns += int(latency_ns.sum())
        window.answered += len(k)
        if answers.stamped:
            self._split(track, answers, k, pos, read_ns)
        in_time = latency_ns < config.deadline_ns
        late = len(k) - int(np.count_nonzero(in_time))
        if late:
            window.status["deadline_exceeded"] += late
            track.status["deadline_exceeded"] += late
            k, pos = k[in_time], pos[in_time]
        predictions = answers.predictions
        guesses = [predictions[i] for i in k.tolist()]
        truths = ledger.labels[pos].tolist()
        hits = self._hits(guesses, truths)
        for key, count in (("correct", hits), ("incorrect", len(guesses) - hits)):
            window.status[key] += count
            track.status[key] += count
        window.pending_truths.extend(truths)
        window.pending_guesses.extend(guesses)

    def _hits(self, guesses: list[Any], truths: list[Any]) -> int:
        if not self._regression:
            return sum(1 for same in map(operator.eq, guesses, truths)
                       if same is True or same is _NP_TRUE)
        guess, truth = _floats(guesses), _floats(truths)
        ok = np.abs(guess - truth) <= self.config.atol + self.config.rtol * np.abs(truth)
        return int(np.count_nonzero(ok))

    def _split(self, track: _Track, answers: Answers, k: np.ndarray, pos: np.ndarray,
               read_ns: int) -> None:
        """Latency split for the scored answers that carried both stamps."""
        stamp_of = np.full(len(answers.ids), -1, dtype=np.int64)
        stamp_of[np.asarray(answers.stamped, dtype=np.int64)] = np.arange(len(answers.stamped))
        which = stamp_of[k]
        mine = which >= 0
        if not mine.any():
            return
        which = which[mine]
        received = _int64(answers.received)[which]
        emitted = _int64(answers.emitted)[which]
        sent = self._ledger.sent[pos[mine]]
        for key, values in (("broker_in", received - sent), ("compute", emitted - received),
                            ("broker_out", read_ns - emitted)):
            record_array(track.split[key], values // 1000)

    def _count(self, track: _Track, window: Window, counter: str, n: int) -> None:
        if n:
            track.counters[counter] += n
            window.counters[counter] += n

    # -- time ------------------------------------------------------------------
    def _index(self, ns: int) -> int:
        return max((ns - self.start_ns) // self.config.window_ns, self._closed_below, 0)

    def _window(self, track: _Track, ns: int) -> Window:
        index = self._index(ns)
        window = track.windows.get(index)
        if window is None:
            window = track.windows[index] = Window()
        return window

    def advance(self, now_ns: int) -> Advance:
        """Give up on events that can no longer be answered (``missing``), close
        the windows that ended by ``now_ns``, feed the metrics."""
        self._drop(now_ns - self.config.deadline_ns - self.config.drain_ns, now_ns)
        self._feed_metrics()
        return self._close(max((now_ns - self.start_ns) // self.config.window_ns, 0), now_ns)

    def finish(self, now_ns: int) -> Advance:
        """The end of the drain: every event still unanswered is ``missing``; every
        window closes (the last one ends at ``now_ns``)."""
        self._drop(None, now_ns)
        self._feed_metrics()
        current = max((now_ns - self.start_ns) // self.config.window_ns, 0)
        if self.start_ns + current * self.config.window_ns == now_ns:
            current -= 1  # ``now`` is the first instant of a window: it is empty
        last = max([current, *self._sent,
                    *(index for t in self._tracks.values() for index in t.windows)])
        return self._close(last + 1, now_ns)

    def _drop(self, cutoff_ns: int | None, now_ns: int) -> None:
        intended, answered = self._ledger.drop_before(cutoff_ns)
        if not len(intended):
            return
        scored = intended >= self.config.warmup_end_ns
        for track in self._tracks.values():
            missing = int(np.count_nonzero(scored & ~answered[track.index]))
            if missing:
                track.status["missing"] += missing
                self._window(track, now_ns).status["missing"] += missing

    def _feed_metrics(self) -> None:
        for track in self._tracks.values():
            for window in track.windows.values():
                if window.pending_truths:
                    if window.metrics is None:
                        window.metrics = MetricSet(self.metric_names, self.config.task)
                    feed(window.pending_truths, window.pending_guesses,
                         [window.metrics, track.metrics])
                    window.pending_truths, window.pending_guesses = [], []

    def _close(self, below: int, now_ns: int) -> Advance:
        rows: list[dict[str, Any]] = []
        intervals: list[tuple[str, int, int, HdrHistogram]] = []
        width = self.config.window_ns
        for index in range(self._closed_below, below):
            sent = self._sent.pop(index, None) or SentWindow()
            start = self.start_ns + index * width
            end = start + width
            seconds = (min(end, now_ns) - start) / 1e9 if index == below - 1 else width / 1e9
            for track in self._tracks.values():
                window = track.windows.pop(index, None) or Window()
                track.latency.add(window.latency)
                track.latency_sum_ns += window.latency_sum_ns
                intervals.append((track.name, start, end, window.latency))
                rows.append(timeline_row(
                    time_s=index * width / 1e9, pipeline=track.name, sent=sent, window=window,
                    seconds=seconds if seconds > 0 else width / 1e9,
                    metric_names=self.metric_names))
        self._closed_below = max(self._closed_below, below)
        return Advance(timeline_rows=rows, hlog_intervals=intervals)

    # -- reading -----------------------------------------------------------------
    def all_answered(self) -> bool:
        """Every event held (sent and not given up on) has an answer from every pipeline."""
        return not any(self._ledger.pending)

    @property
    def in_flight(self) -> int:
        """Ids whose join state is held (about rate x (deadline + drain))."""
        return self._ledger.held

    @property
    def state_size(self) -> int:
        """Slots allocated for join state: bounded by the events in flight, not the run."""
        return self._ledger.capacity + sum(len(t.windows) for t in self._tracks.values())

    def _latency(self, track: _Track, keys: Sequence[str]) -> dict[str, float | None]:
        hists = [track.latency, *(w.latency for w in track.windows.values())]
        figures = quantiles_ms(hists, keys)
        count = sum(h.total_count for h in hists)
        total_ns = track.latency_sum_ns + sum(w.latency_sum_ns for w in track.windows.values())
        return {"mean": round(total_ns / count / 1e6, 6) if count else None, **figures}

    def snapshot(self, now_ns: int) -> dict[str, dict[str, Any]]:
        """Cheap live figures per pipeline, for a progress display (JSON-ready)."""
        self._feed_metrics()
        out = {}
        for name, track in self._tracks.items():
            latency = self._latency(track, ("p50", "p99"))
            out[name] = {
                "sent": self.events,
                "answered": track.answers,
                "answered_rate": round(track.answers / self.events, 6) if self.events else None,
                "status": dict(track.status),
                **track.counters,
                "late_after_drain": track.late_after_drain,
                "latency_p50_ms": latency["p50"],
                "latency_p99_ms": latency["p99"],
                "metrics": track.metrics.get(),
            }
        return out

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per pipeline, the entries of results.md's ``pipelines`` (plus extra keys).

        ``throughput_eps`` is the scored answers over the scored period: from the
        intended time of the first scored event to the read time of the last
        answer (robust to micro-batches, which read many answers at one instant).
        """
        self._feed_metrics()
        scored_events = self.events - self.warmup_events
        out = {}
        for name, track in self._tracks.items():
            status = track.status
            answered = status["correct"] + status["incorrect"] + status["deadline_exceeded"]
            span_s = 0.0
            if track.last_read_ns is not None and self._first_scored_ns is not None:
                span_s = (track.last_read_ns - self._first_scored_ns) / 1e9
            out[name] = {
                "predictions": answered,
                "status": {**status, **track.counters},
                "throughput_eps": round(answered / span_s, 3) if span_s > 0 else 0.0,
                "latency_ms": self._latency(track, ("p50", "p90", "p99", "p999")),
                "latency_split_ms": {key: quantiles_ms(h, ("p50", "p90", "p99"))
                                     for key, h in track.split.items()},
                "metrics": track.metrics.get(),
                "events": scored_events,
                "warmup_events": self.warmup_events,
                "late_after_drain": track.late_after_drain,
                "missing_ratio": round(status["missing"] / scored_events, 6) if scored_events
                else 0.0,
            }
        return out


def _int64(values: list[int]) -> np.ndarray:
    """Ints as int64; one beyond int64 becomes -1 (an id never sent, a bad stamp)."""
    try:
        return np.asarray(values, dtype=np.int64)
    except OverflowError:
        low, high = _INT64
        return np.asarray([v if low <= v <= high else -1 for v in values], dtype=np.int64)


def _first_occurrences(pos: np.ndarray) -> np.ndarray | bool:
    """True where a position appears for the first time in the batch."""
    if len(pos) < 2:
        return True
    _, first = np.unique(pos, return_index=True)
    if len(first) == len(pos):
        return True
    mask = np.zeros(len(pos), dtype=np.bool_)
    mask[first] = True
    return mask


def _floats(values: list[Any]) -> np.ndarray:
    """Numbers as float64; anything else (text, bool, null, a list) as NaN, never equal."""
    if all(type(v) is float or type(v) is int for v in values):
        try:
            return np.asarray(values, dtype=np.float64)
        except OverflowError:
            pass
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, int | float) and not isinstance(v, bool):
            try:
                out[i] = float(v)
            except OverflowError:
                continue
    return out
