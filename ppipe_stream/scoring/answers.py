"""Judging one batch of a pipeline's answers against the ledger.

Owns the statuses and the rules that give them (protocol.md, "How the scorer
judges"), the scoring settings (:class:`ScoringConfig`) and the running
figures of one pipeline (:class:`Track`). For a batch read at ``read_ns``,
all at once in numpy:

- an id below the ledger's window was given up on: ``late_after_drain``
  (changes nothing); an id never sent (or skipped): ``unknown``;
- an id already answered, or repeated in the batch after its first answer:
  ``duplicate`` (the first answer decides);
- otherwise the event is answered: latency = ``read_ns`` - intended; within
  ``deadline_ns`` (inclusive) it is ``correct`` or ``incorrect`` (equality for
  classification, ``|p - y| <= atol + rtol * |y|`` for numbers in regression),
  after it ``deadline_exceeded``; judged answers wait in the window for the
  metrics (the scorer feeds them on each tick).

Events intended before ``warmup_end_ns`` are marked answered and counted
nowhere else (nor their duplicates). It does not decide ``missing``: the scorer
does, when it drops events from the ledger.
"""

from __future__ import annotations

import enum
import operator
from typing import Any

import msgspec
import numpy as np

from .decode import Answers
from .hist import new_histogram, record_array
from .ledger import HOLE, Ledger
from .metrics import DEFAULT_METRICS, MetricSet
from .windows import Window

__all__ = ["COUNTERS", "EventStatus", "ScoringConfig", "Track", "judge"]

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
    """What the scorer needs of the scenario; times in ns, ``warmup_end_ns`` absolute
    (events intended before it are left out of every figure)."""

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


class Track:
    """The running figures of one pipeline."""

    def __init__(self, name: str, index: int, metric_names: list[str], task: str) -> None:
        self.name = name
        self.index = index  # its row in the ledger's answered flags
        self.status = dict.fromkeys(map(str, EventStatus), 0)
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.late_after_drain = 0
        self.answers = 0  # distinct events answered, warm-up included
        self.latency = new_histogram()  # us, the closed windows'
        self.latency_sum_ns = 0  # of the closed windows
        self.split = {key: new_histogram() for key in ("broker_in", "compute", "broker_out")}
        self.metrics = MetricSet(metric_names, task)
        self.windows: dict[int, Window] = {}  # open windows, by index
        self.last_read_ns: int | None = None  # of the last scored answer
        self.last_output_ns: int | None = None  # of the last message of any kind (liveness)

    def count(self, window: Window, counter: str, n: int) -> None:
        if n:
            self.counters[counter] += n
            window.counters[counter] += n

    def judged(self, window: Window, status: str, n: int) -> None:
        if n:
            self.status[status] += n
            window.status[status] += n


def judge(answers: Answers, *, ledger: Ledger, track: Track, window: Window, read_ns: int,
          config: ScoringConfig) -> None:
    """Judge the answers of one batch (``answers.ids`` not empty) read at ``read_ns``."""
    ids = _int64(answers.ids)
    k = np.arange(len(ids))  # the answers still in play, by number
    held = (ids >= ledger.lo) & (ids < ledger.hi)
    if not held.all():
        dropped = int(np.count_nonzero((ids >= 0) & (ids < ledger.lo)))
        track.late_after_drain += dropped
        track.count(window, "unknown", len(ids) - int(np.count_nonzero(held)) - dropped)
        k = k[held]
    pos = ledger.positions(ids[k])
    intended = ledger.intended[pos]
    hole = intended == HOLE
    if hole.any():
        track.count(window, "unknown", int(np.count_nonzero(hole)))
        k, pos, intended = k[~hole], pos[~hole], intended[~hole]
    flags = ledger.answered[track.index]
    new = ~flags[pos] & _first_occurrences(pos)
    if not new.all():
        repeated = intended[~new] >= config.warmup_end_ns
        track.count(window, "duplicate", int(np.count_nonzero(repeated)))
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
        _split(track, answers, k, ledger.sent[pos], read_ns)
    in_time = latency_ns <= config.deadline_ns
    late = len(k) - int(np.count_nonzero(in_time))
    if late:
        track.judged(window, "deadline_exceeded", late)
        k, pos = k[in_time], pos[in_time]
    predictions = answers.predictions
    guesses = [predictions[i] for i in k.tolist()]
    truths = ledger.labels[pos].tolist()
    hits = _hits(guesses, truths, config)
    track.judged(window, "correct", hits)
    track.judged(window, "incorrect", len(guesses) - hits)
    window.pending_truths.extend(truths)
    window.pending_guesses.extend(guesses)


def _hits(guesses: list[Any], truths: list[Any], config: ScoringConfig) -> int:
    """How many answers are right."""
    if config.task != "regression":
        return sum(1 for same in map(operator.eq, guesses, truths)
                   if same is True or same is _NP_TRUE)
    guess, truth = _floats(guesses), _floats(truths)
    ok = np.abs(guess - truth) <= config.atol + config.rtol * np.abs(truth)
    return int(np.count_nonzero(ok))


def _split(track: Track, answers: Answers, k: np.ndarray, sent: np.ndarray, read_ns: int) -> None:
    """Latency split of the scored answers ``k`` (events sent at ``sent``) that
    carried both stamps: broker in, compute, broker out."""
    stamp_of = np.full(len(answers.ids), -1, dtype=np.int64)
    stamp_of[np.asarray(answers.stamped, dtype=np.int64)] = np.arange(len(answers.stamped))
    which = stamp_of[k]
    mine = which >= 0
    if not mine.any():
        return
    which = which[mine]
    received = _int64(answers.received)[which]
    emitted = _int64(answers.emitted)[which]
    for key, values in (("broker_in", received - sent[mine]), ("compute", emitted - received),
                        ("broker_out", read_ns - emitted)):
        record_array(track.split[key], values // 1000)


def _int64(values: list[int]) -> np.ndarray:
    """Ints as int64; one beyond int64 becomes -1 (an id never sent, a bad stamp)."""
    try:
        return np.asarray(values, dtype=np.int64)
    except OverflowError:
        low, high = _INT64
        return np.asarray([v if low <= v <= high else -1 for v in values], dtype=np.int64)


def _first_occurrences(pos: np.ndarray) -> np.ndarray | bool:
    """True where a position appears for the first time in the batch."""
    if len(pos) < 2 or (len(pos) < 64 and len(set(pos.tolist())) == len(pos)):
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
