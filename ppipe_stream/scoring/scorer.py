"""The scorer: joins sent events with each pipeline's answers and judges them.

Owns the run's scoring as the run loop sees it (:class:`Scorer`): what was
sent (:meth:`Scorer.record_sent`), what came back (:meth:`Scorer.on_output`),
time (:meth:`Scorer.advance` closes windows and gives up on events that can
no longer be answered, :meth:`Scorer.finish` ends the run) and the figures
(:meth:`Scorer.snapshot`, :meth:`Scorer.summary`). Pure computation: no
Kafka, no files, no clock of its own (every call is handed the wall-clock ns
it should use). The join state lives in :mod:`.ledger`, the rules in
:mod:`.answers`, decoding in :mod:`.decode`, windows in :mod:`.windows`,
metric feeding in :mod:`.metrics`, histogram arithmetic in :mod:`ppipe_stream.scoring.hist`.

An event with no answer by intended + deadline + drain is ``missing``: it is
dropped from the ledger then, so memory follows the events in flight, not the
run's length (an answer that comes later is counted ``late_after_drain``; a
duplicate that late cannot be told from a first answer and is counted the same
way). ``missing`` is counted in the window in which it was decided.

Metrics take the answers judged ``correct`` or ``incorrect``: an answer after
the deadline did not count for the user, so it does not count for the model's
quality either (``deadline_exceeded`` and ``missing_ratio`` report those).
The summary's metrics are cumulative, a timeline row's are its window's own.
With ``hold_unrecorded`` (dispatch workers: an event's record reaches the
ledger from another process, so its answer can come first) an answer for an
id at or above the ledger's ``hi`` is held, not judged ``unknown`` at once:
it is judged, with the time it was read, as soon as the ledger records its id,
or at :meth:`Scorer.finish` (then ``unknown``). At most ``MAX_HELD`` answers
are held; past that the oldest are judged at once.

Events intended before ``warmup_end_ns`` are left out of every figure (status
counts, duplicates, latency, metrics, timeline, hlog) and counted in
``warmup_events``; syntax errors and unknown ids cannot be tied to an event
and always count.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
from hdrh.histogram import HdrHistogram

from .. import protocol
from .decode import Answers, decode_answers
from .hist import quantiles_ms
from .answers import COUNTERS, EventStatus, ScoringConfig, Track, judge
from .ledger import Ledger
from .metrics import DEFAULT_METRICS, MetricSet, feed
from .windows import SentWindow, Window, timeline_row

__all__ = ["Advance", "COUNTERS", "EventStatus", "MAX_HELD", "Scorer", "ScoringConfig"]

MAX_HELD = 200_000  # answers held for ids the ledger has not recorded yet


class Advance(msgspec.Struct):
    """What :meth:`Scorer.advance` closed: timeline rows and hlog intervals
    ``(pipeline, start_ns, end_ns, histogram of latency in us)``."""

    timeline_rows: list[dict[str, Any]]
    hlog_intervals: list[tuple[str, int, int, HdrHistogram]]


class Scorer:
    """Scores every pipeline of a run against the events the dispatcher sent."""

    def __init__(self, pipelines: Sequence[str], config: ScoringConfig, *, start_ns: int,
                 hold_unrecorded: bool = False) -> None:
        self.config = config
        self.start_ns = start_ns
        self.metric_names = list(config.metrics) or DEFAULT_METRICS[config.task]
        self._tracks = {name: Track(name, k, self.metric_names, config.task)
                        for k, name in enumerate(pipelines)}
        self._ledger = Ledger(len(self._tracks))
        self._sent: dict[int, SentWindow] = {}
        self._closed_below = 0  # windows below this index are closed
        self._first_scored_ns: int | None = None  # intended stamp of the first scored event
        self.events = 0  # sent, warm-up included
        self.warmup_events = 0
        self.replies: list[tuple[str, protocol.Reply, int]] = []
        self._hold = hold_unrecorded
        self._held: deque[tuple[str, Answers, int]] = deque()  # (pipeline, answers, read_ns)
        self._held_count = 0

    # -- what was sent -------------------------------------------------------
    def record_sent(self, ids: Sequence[int], intended_ns: Sequence[int], sent_ns: Sequence[int],
                    labels: Sequence[Any]) -> None:
        """The dispatcher sent these events (called before they reach the broker)."""
        if not len(ids):
            return
        self._ledger.append(ids, intended_ns, sent_ns, labels)
        self.events += len(ids)
        if self._held:
            self._release(self._ledger.hi)
        intended = np.asarray(intended_ns, dtype=np.int64)
        lag_us = (np.asarray(sent_ns, dtype=np.int64) - intended) // 1000
        scored = intended >= self.config.warmup_end_ns
        if not scored.all():
            self.warmup_events += int(np.count_nonzero(~scored))
            self._count_warmup(intended[~scored])
            intended, lag_us = intended[scored], lag_us[scored]
        if not len(intended):
            return
        first = int(intended.min())
        if self._first_scored_ns is None or first < self._first_scored_ns:
            self._first_scored_ns = first
        index = np.maximum((intended - self.start_ns) // self.config.window_ns, self._closed_below)
        groups = [int(index[0])] if index[0] == index[-1] else np.unique(index).tolist()
        for window in groups:
            part = lag_us if len(groups) == 1 else lag_us[index == window]
            self._sent.setdefault(window, SentWindow()).add(part)

    def _count_warmup(self, intended: np.ndarray) -> None:
        """Warm-up events by window: sent (the throughput chart shows them), not scored."""
        index = np.maximum((intended - self.start_ns) // self.config.window_ns, self._closed_below)
        windows, counts = np.unique(index, return_counts=True)
        for window, count in zip(windows.tolist(), counts.tolist(), strict=True):
            self._sent.setdefault(window, SentWindow()).warmup += count

    # -- what came back --------------------------------------------------------
    def on_output(self, pipeline: str, values: Sequence[bytes | None], read_ns: int) -> None:
        """Raw message values read from ``pipeline``'s output topic at ``read_ns``."""
        track = self._tracks[pipeline]
        if values:
            track.last_output_ns = read_ns
        answers = decode_answers(values)
        window = self._window(track, read_ns)
        track.count(window, "syntax_error", answers.syntax_errors)
        for reply in answers.replies:
            self.replies.append((pipeline, reply, read_ns))
        if answers.ids and self._hold:
            answers = self._hold_ahead(pipeline, answers, read_ns)
        if answers.ids:
            judge(answers, ledger=self._ledger, track=track, window=window, read_ns=read_ns,
                  config=self.config)

    # -- answers that came before their record (dispatch workers) -----------------
    @property
    def held(self) -> int:
        """Answers held for ids the ledger has not recorded yet."""
        return self._held_count

    def _hold_ahead(self, pipeline: str, answers: Answers, read_ns: int) -> Answers:
        """Keep the answers for ids not recorded yet; return the others."""
        hi = self._ledger.hi
        ids = answers.ids
        if max(ids) < hi:
            return answers
        ahead = [k for k, i in enumerate(ids) if i >= hi]
        self._held.append((pipeline, _subset(answers, ahead), read_ns))
        self._held_count += len(ahead)
        while self._held_count > MAX_HELD:  # bounded: the oldest are judged now
            self._judge_held(*self._held.popleft())
        ahead_set = set(ahead)
        return _subset(answers, [k for k in range(len(ids)) if k not in ahead_set])

    def _release(self, below: int | None) -> None:
        """Judge the held answers for ids below ``below`` (all when None), in the order read."""
        kept: deque[tuple[str, Answers, int]] = deque()
        for pipeline, answers, read_ns in self._held:
            if below is None:
                self._judge_held(pipeline, answers, read_ns)
                continue
            now = [k for k, i in enumerate(answers.ids) if i < below]
            if not now:
                kept.append((pipeline, answers, read_ns))
                continue
            self._judge_held(pipeline, _subset(answers, now), read_ns)
            if len(now) < len(answers.ids):
                taken = set(now)
                kept.append((pipeline, _subset(answers, [k for k in range(len(answers.ids))
                                                         if k not in taken]), read_ns))
        self._held = kept

    def _judge_held(self, pipeline: str, answers: Answers, read_ns: int) -> None:
        self._held_count -= len(answers.ids)
        track = self._tracks[pipeline]
        judge(answers, ledger=self._ledger, track=track, window=self._window(track, read_ns),
              read_ns=read_ns, config=self.config)

    # -- time ------------------------------------------------------------------
    def _index(self, ns: int) -> int:
        return max((ns - self.start_ns) // self.config.window_ns, self._closed_below, 0)

    def _window(self, track: Track, ns: int) -> Window:
        return self._window_at(track, self._index(ns))

    @staticmethod
    def _window_at(track: Track, index: int) -> Window:
        window = track.windows.get(index)
        if window is None:
            window = track.windows[index] = Window()
        return window

    def advance(self, now_ns: int) -> Advance:
        """Give up on events that can no longer be answered (``missing``), close
        the windows that ended by ``now_ns``, feed the metrics."""
        self._drop(now_ns - self.config.deadline_ns - self.config.drain_ns, self._index(now_ns))
        self._feed_metrics()
        return self._close(max((now_ns - self.start_ns) // self.config.window_ns, 0), now_ns)

    def finish(self, now_ns: int) -> Advance:
        """The end of the drain: every event still unanswered is ``missing``; every
        window closes (the last one ends at ``now_ns``)."""
        current = max((now_ns - self.start_ns) // self.config.window_ns, 0)
        if current and self.start_ns + current * self.config.window_ns == now_ns:
            current -= 1  # ``now`` is the first instant of a window: that one stays empty
        if self._held:
            self._release(None)  # never recorded: unknown
        self._drop(None, max(current, self._closed_below))
        self._feed_metrics()
        last = max([current, *self._sent,
                    *(index for t in self._tracks.values() for index in t.windows)])
        return self._close(last + 1, now_ns)

    def _drop(self, cutoff_ns: int | None, index: int) -> None:
        """Drop what can no longer be answered; the missing count in window ``index``."""
        intended, answered = self._ledger.drop_before(cutoff_ns)
        if not len(intended):
            return
        scored = intended >= self.config.warmup_end_ns
        for track in self._tracks.values():
            missing = int(np.count_nonzero(scored & ~answered[track.index]))
            if missing:
                track.judged(self._window_at(track, index), "missing", missing)

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
            if index == below - 1 and start < now_ns < end:
                end = now_ns  # the run's last window, cut short by finish()
            seconds = (end - start) / 1e9
            for track in self._tracks.values():
                window = track.windows.pop(index, None) or Window()
                track.latency.add(window.latency)
                track.latency_sum_ns += window.latency_sum_ns
                intervals.append((track.name, start, end, window.latency))
                rows.append(timeline_row(
                    time_s=index * width / 1e9, pipeline=track.name, sent=sent, window=window,
                    seconds=seconds, metric_names=self.metric_names))
        self._closed_below = max(self._closed_below, below)
        return Advance(timeline_rows=rows, hlog_intervals=intervals)

    # -- reading -----------------------------------------------------------------
    def all_answered(self) -> bool:
        """Every event held (sent and not given up on) has an answer from every pipeline."""
        return not any(self._ledger.pending)

    def waiting_after(self, pipeline: str, after_ns: int | None) -> int | None:
        """Sent ns of the oldest held event ``pipeline`` has not answered that was
        sent after ``after_ns`` (its last output; None: any). None when no such
        event waits: an event sent before the last output was seen by a pipeline
        that was still answering, so it tells nothing about a hang."""
        ledger, p = self._ledger, self._tracks[pipeline].index
        if not ledger.pending[p]:
            return None
        begin, end = ledger.start, ledger.start + ledger.held
        waiting = ~ledger.answered[p, begin:end]
        if after_ns is not None:
            waiting &= ledger.sent[begin:end] > after_ns
        first = int(np.argmax(waiting))
        return int(ledger.sent[begin + first]) if waiting[first] else None

    def last_output_ns(self, pipeline: str) -> int | None:
        """When anything (answer, reply, garbage) was last read from ``pipeline``."""
        return self._tracks[pipeline].last_output_ns

    @property
    def in_flight(self) -> int:
        """Ids whose join state is held (about rate x (deadline + drain))."""
        return self._ledger.held

    @property
    def state_size(self) -> int:
        """Slots allocated for join state: bounded by the events in flight, not the run."""
        return self._ledger.capacity + sum(len(t.windows) for t in self._tracks.values())

    def _latency(self, track: Track, keys: Sequence[str]) -> dict[str, float | None]:
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


def _subset(answers: Answers, keep: list[int]) -> Answers:
    """The answers ``keep`` (indexes, rising) of ``answers``, stamps kept with them."""
    out = Answers()
    out.ids = [answers.ids[k] for k in keep]
    out.predictions = [answers.predictions[k] for k in keep]
    if answers.stamped:
        where = {k: n for n, k in enumerate(answers.stamped)}
        for new, k in enumerate(keep):
            n = where.get(k)
            if n is not None:
                out.stamped.append(new)
                out.received.append(answers.received[n])
                out.emitted.append(answers.emitted[n])
    return out
