"""The ledger: every sent event whose answers can still arrive, by id.

Owns the join state of a run: for each event in flight its intended and sent
stamps, its label, and for each pipeline whether it has answered. Event ids
are dense and rising (protocol.md: 0, 1, 2, ... in schedule order), so the
ledger is a window ``[lo, hi)`` of ids over numpy arrays: ids below ``lo``
were sent and dropped (:meth:`Ledger.drop_before`), ids from ``hi`` on were
never sent. Memory follows the events in flight (about rate x (deadline +
drain)), never the run's length: dropping moves ``lo``, and the arrays are
compacted or grown only when an append does not fit.

An id skipped by the dispatcher leaves a hole that can never be answered
(answers for it are ``unknown``). It does not judge anything: the scorer does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import RunError

__all__ = ["HOLE", "MAX_HOLE", "Ledger", "LedgerError"]

HOLE = np.iinfo(np.int64).min  # intended stamp of an id that was skipped
MAX_HOLE = 1_000_000  # more ids skipped at once than this is a bug, not a hole


class LedgerError(RunError):
    """Raised when the dispatcher records an id that is not above every id
    recorded before (ids are sent once, in rising order), or skips more than
    ``MAX_HOLE`` ids at once: a harness bug, not bad data from a pipeline."""


class Ledger:
    """The in-flight events, their stamps and labels, and who answered them."""

    def __init__(self, n_pipelines: int, *, capacity: int = 4096) -> None:
        self.lo = 0  # lowest id held
        self.hi = 0  # one past the highest id recorded
        self.start = 0  # array index of id ``lo``
        self.n_pipelines = n_pipelines
        self.intended = np.zeros(capacity, dtype=np.int64)
        self.sent = np.zeros(capacity, dtype=np.int64)
        self.labels = np.empty(capacity, dtype=object)
        self.answered = np.zeros((n_pipelines, capacity), dtype=np.bool_)
        self.pending = [0] * n_pipelines  # events held that pipeline p has not answered

    @property
    def held(self) -> int:
        """Ids held (events in flight, holes included)."""
        return self.hi - self.lo

    @property
    def capacity(self) -> int:
        return len(self.intended)

    def append(self, ids: Sequence[int], intended: Sequence[int], sent: Sequence[int],
               labels: Sequence[Any]) -> None:
        """Record sent events; ids must rise and start at or above ``hi``."""
        n = len(ids)
        if n == 0:
            return
        first, last = int(ids[0]), int(ids[-1])
        dense = first == self.hi and last == first + n - 1
        if dense and n > 2:
            dense = bool(np.all(np.diff(np.asarray(ids, dtype=np.int64)) == 1))
        if not dense:
            array = np.asarray(ids, dtype=np.int64)
            if first < self.hi or (n > 1 and not np.all(np.diff(array) > 0)):
                raise LedgerError(f"the ledger got event id {first} after id {self.hi - 1}; "
                                  "ids must be sent once each, in rising order")
        span = last + 1 - self.hi
        if span > n + MAX_HOLE:
            raise LedgerError(f"the ledger got event id {last} after id {self.hi - 1}; ids are "
                              f"dense (0, 1, 2, ...), a hole of {span - n} ids is a harness bug")
        self._reserve(span)
        begin = self.start + self.held
        end = begin + span
        if dense:
            self.intended[begin:end] = intended
            self.sent[begin:end] = sent
            self.labels[begin:end] = _objects(labels)
            self.answered[:, begin:end] = False
        else:
            where = begin + (array - self.hi)
            self.intended[begin:end] = HOLE
            self.sent[begin:end] = HOLE
            self.labels[begin:end] = None
            self.answered[:, begin:end] = True  # a hole is never awaited
            self.intended[where] = intended
            self.sent[where] = sent
            self.labels[where] = _objects(labels)
            self.answered[:, where] = False
        self.hi = last + 1
        for p in range(self.n_pipelines):
            self.pending[p] += n

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Array indexes of ids known to be held (``lo <= id < hi``)."""
        return ids - self.lo + self.start

    def drop_before(self, cutoff_ns: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Drop the leading events intended before ``cutoff_ns`` (all when None).

        Returns their intended stamps and a (pipelines x events) array of who had
        answered, for the scorer to count the missing. Holes count as answered.
        """
        size = self.held
        window = self.intended[self.start:self.start + size]
        if cutoff_ns is None:
            count = size
        else:
            late = window >= cutoff_ns
            count = int(np.argmax(late)) if late.any() else size
        begin, end = self.start, self.start + count
        intended = self.intended[begin:end].copy()
        answered = self.answered[:, begin:end].copy()
        self.labels[begin:end] = None  # let the label objects go
        unanswered = count - answered.sum(axis=1)
        for p in range(self.n_pipelines):
            self.pending[p] -= int(unanswered[p])
        self.start += count
        self.lo += count
        if self.held == 0:
            self.start = 0
        return intended, answered

    def _reserve(self, extra: int) -> None:
        """Make room for ``extra`` more ids after the held ones."""
        size = self.held
        if self.start + size + extra <= self.capacity:
            return
        capacity = self.capacity
        if size + extra > capacity // 2:
            capacity = max(2 * capacity, 2 * (size + extra))
        begin, end = self.start, self.start + size
        intended = np.zeros(capacity, dtype=np.int64)
        sent = np.zeros(capacity, dtype=np.int64)
        labels = np.empty(capacity, dtype=object)
        answered = np.zeros((self.n_pipelines, capacity), dtype=np.bool_)
        intended[:size] = self.intended[begin:end]
        sent[:size] = self.sent[begin:end]
        labels[:size] = self.labels[begin:end]
        answered[:, :size] = self.answered[:, begin:end]
        self.intended, self.sent, self.labels, self.answered = intended, sent, labels, answered
        self.start = 0


def _objects(values: Sequence[Any]) -> np.ndarray:
    """An object array of ``values`` (never a 2-D array of list labels)."""
    array = np.empty(len(values), dtype=object)
    try:
        array[:] = values if isinstance(values, list) else list(values)
    except ValueError:  # equal-length lists would broadcast: place them one by one
        for k, value in enumerate(values):
            array[k] = value
    return array
