"""The Data Dispatcher: publishes dataset rows as a timed, open-loop event stream.

Owns the send loop: it pulls intended send times from a :class:`Schedule`, rows
from a :class:`DatasetStream`, and hands each due event to the producer in
per-partition batches (no await per message), stamping ``ppipe-intended-ns``
and ``ppipe-sent-ns``. Ground-truth labels follow each event after the label
delay, on the same partition. Every sent batch is reported synchronously to
``on_sent`` (the scorer's ledger) *before* it reaches the broker, so no answer
can be read for an id the ledger does not know.

With ``owned`` (a dispatch worker's share, see :mod:`.workers`) it
walks the same schedule and rows but sends only the events and labels of the
partitions it owns; ``on_sent`` then gets those events only, and
``next_id`` says how far along the schedule it has come.

An event the loop reaches more than ``max_lag`` after its intended time is
dropped and counted (``stats.dropped``), never sent late; with
``stop_on_overload`` the first drop ends the dispatch. Past the schedule's
duration + ``max_lag`` the walk stops (``stats.cut``), so a run the harness
cannot keep up with still ends on time.

It does not create topics, start brokers or score anything. The schedule is
open loop: a slow broker or pipeline never delays the *intended* times, and the
gap between intended and sent (dispatch lag) is measured, not hidden.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import anyio
import msgspec
import numpy as np
import structlog
from aiokafka import AIOKafkaProducer
from anyio.abc import TaskStatus

from .. import protocol
from ..datasets import DatasetStream, Row
from ..errors import DatasetError, first_leaf
from ..watch.loop_lag import LatenessStats
from .base import DispatchStats, OnSent
from .schedule import Schedule

__all__ = ["Dispatcher", "producer_settings"]

log = structlog.get_logger(__name__)

_MAX_BATCH_EVENTS = 2000  # events taken per pass of the loop before yielding to others
_SLEEP_SLACK_NS = 200_000  # wake this early and spin the rest in the loop's next pass
_MAX_QUEUED = 16  # full batches waiting per partition before the loop itself waits
_ENCODED_ROWS = 100_000  # datasets up to this many rows keep each row's features JSON
_DROP_SLICE_NS = 5_000_000  # dropping a lost schedule yields to the loop this often
_COUNT_LEFT_NS = 1_000_000_000  # past duration + max_lag, the rest is counted for at most this long


def producer_settings(kafka: Any, bootstrap: str, security: Any) -> dict[str, Any]:
    """The dispatcher's producer settings from ``[kafka]``, with the run's login
    (a ``ClientSecurity``): one place for the run's producer and every worker's."""
    return dict(bootstrap_servers=bootstrap, acks="all" if kafka.acks == "all" else int(kafka.acks),
                enable_idempotence=kafka.idempotent, linger_ms=max(int(float(kafka.linger) * 1000), 0),
                max_batch_size=262_144, max_request_size=4_194_304, **security.kafka_kwargs())


class Dispatcher:
    """Sends one run's events and labels (a :class:`~.base.Dispatch`).
    Start with ``tg.start(dispatcher.run)``."""

    def __init__(
        self,
        *,
        producer: AIOKafkaProducer,
        topic: str,
        partitions: int,
        dataset: DatasetStream,
        schedule: Schedule,
        label_delay_s: float,
        on_sent: OnSent,
        drain_s: float,
        on_rows: Callable[[Sequence[int], Sequence[dict[str, Any]], Sequence[Any]], None] | None = None,
        owned: Sequence[int] | None = None,
        on_idle: Callable[[int], None] | None = None,
        max_lag_s: float = math.inf,
        stop_on_overload: bool = False,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._partitions = partitions
        self._dataset = dataset
        self._schedule = schedule
        self._label_delay_ns = None if label_delay_s == float("inf") else int(label_delay_s * 1e9)
        self._on_sent = on_sent
        self._on_rows = on_rows  # the proctor's sample of sent rows, when commands are planned
        self._drain_ns = int(drain_s * 1e9)
        # a worker's share: owned[p] says whether partition p is sent here (None: all)
        self._owned = None if owned is None else [p in set(owned) for p in range(partitions)]
        self._on_idle = on_idle  # called with the ns the loop is about to sleep (-1: events done)
        # an event due more than this long ago is dropped, never sent late (inf: never)
        self._max_lag_ns = None if math.isinf(max_lag_s) else int(max_lag_s * 1e9)
        self._stop_on_overload = stop_on_overload  # the first drop ends the dispatch
        self.next_id = 0  # the first id not yet taken (a worker: the first schedule index)
        # a looped dataset sends the same rows again: their features JSON is made once
        # (Row.index names a row of the dataset, whatever the pass or the shuffle)
        small = dataset.n_rows is not None and dataset.n_rows <= _ENCODED_ROWS
        self._encoded: dict[int, bytes] | None = {} if small else None
        self._labels: collections.deque[tuple[int, int, Any]] = collections.deque()
        self._pending: list[Any] = []  # delivery futures not yet checked
        # per partition: the open batch the loop appends to, full ones waiting, and a
        # shipper task that hands them to the producer (which takes one batch per
        # partition at a time, and waits for the previous one to go out: the loop
        # itself never waits on the broker)
        self._open: list[Any] = [None] * partitions
        self._full: list[collections.deque[Any]] = [collections.deque() for _ in range(partitions)]
        self._wake = [anyio.Event() for _ in range(partitions)]
        self._busy = [False] * partitions
        self.stats = DispatchStats(schedule.target_rate)
        self.start_wall_ns = 0
        self._start_mono_ns = 0

    def workers_lateness(self) -> LatenessStats | None:
        """None: this dispatcher runs on the run's own event loop."""
        return None

    def now_wall_ns(self) -> int:
        """Wall-clock ns on the dispatcher's clock: the start stamp plus monotonic time."""
        return self.start_wall_ns + (time.perf_counter_ns() - self._start_mono_ns)

    async def run(self, *, clock: tuple[int, int] | None = None,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> DispatchStats:
        """Dispatch the whole schedule, then keep releasing labels until they are
        all out or the drain ends. Returns the final stats.

        ``clock`` is the run's start as (wall-clock ns, ``perf_counter_ns``) read
        at the same moment: offset 0 of the schedule is that instant, so the
        scorer's windows and the intended stamps share one origin."""
        self.start_wall_ns, self._start_mono_ns = clock or (time.time_ns(), time.perf_counter_ns())
        try:
            async with anyio.create_task_group() as tg:
                for partition in range(self._partitions):
                    tg.start_soon(self._shipper, partition)
                task_status.started()
                await self._dispatch()
                await self._shipped()
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # one error, as it was raised, for the caller
            raise first_leaf(group) from None
        await self._producer.flush()
        self._check_delivered(final=True)
        return self.stats

    async def _dispatch(self) -> None:
        """The schedule's events (and their labels), then the labels still due.

        Events due more than ``max_lag`` ago when the loop reaches them are
        dropped (:meth:`_drop`): the loop sends what is due now, so a run the
        harness cannot keep up with still ends on time, and says how much it lost."""
        log.info("dispatch.started", topic=self._topic, target_rate=self.stats.target_rate)
        rows = iter(self._dataset)
        owned = self._owned is not None
        max_lag = self._max_lag_ns
        start_mono = self._start_mono_ns
        clock = time.perf_counter_ns
        duration = self._schedule.duration_s
        # past its duration + max_lag nothing more can be sent: the walk stops there
        # (a schedule planned faster than it can even be counted is cut, not walked)
        cut_ns = None if max_lag is None or duration is None else int(duration * 1e9) + max_lag
        yield_at = 0
        cut_at: int | None = None
        for chunk in self._schedule.chunks():
            if max_lag is not None and int(chunk[-1]) < (now := clock() - start_mono) - max_lag:
                self._drop(int(chunk[0]), int(chunk[-1]), len(chunk))  # all of it, unlooked at
                if self.stats.overloaded:
                    break
                if cut_ns is not None and now > cut_ns:
                    # every event left is past max_lag: counted while that is quick, else cut
                    cut_at = now if cut_at is None else cut_at
                    if now - cut_at > _COUNT_LEFT_NS:
                        self.stats.cut = True
                        log.warning("dispatch.cut", at_s=round(now / 1e9, 3),
                                    planned_events=self.stats.planned_events)
                        break
                if now > yield_at:  # counting a lost schedule must not hold up the run's loop
                    await anyio.sleep(0)
                    yield_at = clock() - start_mono + _DROP_SLICE_NS
                continue
            offsets = chunk.tolist()
            i = 0
            while i < len(offsets):
                now = clock() - start_mono
                if offsets[i] > now:
                    await self._release_labels(now)
                    wait = offsets[i] - now
                    if self._labels:
                        wait = min(wait, self._labels[0][0] - now)
                    if self._on_idle is not None:
                        self._on_idle(wait)
                    await anyio.sleep(max(wait - _SLEEP_SLACK_NS, 0) / 1e9)
                    continue
                if max_lag is not None and offsets[i] < now - max_lag:
                    k = bisect.bisect_left(offsets, now - max_lag, i)
                    self._drop(offsets[i], offsets[k - 1], k - i)
                    i = k
                    if self.stats.overloaded:
                        break
                    continue
                j = i + 1
                limit = min(len(offsets), i + _MAX_BATCH_EVENTS)
                while j < limit and offsets[j] <= now:
                    j += 1
                first = self.next_id
                sent = await self._send_events(rows, first, offsets[i:j])
                if sent < j - i:  # the dataset ran out
                    self.stats.dataset_exhausted = True
                    break
                if not owned:  # a worker's next_id is the schedule index, moved by _send_events
                    self.next_id = first + sent
                i = j
                await self._release_labels(clock() - start_mono)
                await anyio.sleep(0)
            if self.stats.dataset_exhausted:
                log.warning("dispatch.dataset_exhausted", events=self.stats.events_sent)
                break
            if self.stats.overloaded:
                break
        self.stats.finished = True
        if self._on_idle is not None:
            self._on_idle(-1)
        log.info("dispatch.events_done", events=self.stats.events_sent, dropped=self.stats.dropped)
        drain_end = clock() - start_mono + self._drain_ns
        while self._labels and not self.stats.overloaded:
            now = clock() - start_mono
            if now >= drain_end:
                break
            await self._release_labels(now)
            if self._labels:
                await anyio.sleep(max(min(self._labels[0][0], drain_end) - now, 0) / 1e9)

    def _drop(self, first_offset: int, last_offset: int, n: int) -> None:
        """``n`` scheduled events (offsets ``first_offset`` to ``last_offset``) came too
        late to send: counted, never sent. They take no id (ids stay dense, 0, 1,
        2, ... over the events sent) and no row: the next event sent takes the next
        row. A worker counts the ones it owns, and moves along the schedule's ids."""
        stats = self.stats
        if self._owned is not None:
            first_id = self.next_id
            self.next_id = first_id + n
            owned = self._owned
            n_part = self._partitions
            full, rest = divmod(n, n_part)
            n = full * sum(owned) + sum(owned[(first_id + k) % n_part] for k in range(rest))
            if self._on_sent is not None:
                self._on_sent([], [], [], [])  # tells how far the schedule went
        if stats.schedule_lost_s is None:
            stats.schedule_lost_s = round(first_offset / 1e9, 3)
            log.warning("dispatch.schedule_lost", at_s=stats.schedule_lost_s,
                        max_lag_ms=(self._max_lag_ns or 0) / 1e6,
                        stop=self._stop_on_overload)
        stats.dropped += n
        stats.record_planned(self.start_wall_ns + first_offset, self.start_wall_ns + last_offset)
        if self._stop_on_overload:
            stats.overloaded = True

    async def _send_events(self, rows: Iterator[Row], first_id: int, offsets: list[int]) -> int:
        """Build and send per-partition batches for these due events; returns how many were sent.

        The hot path of the tool: per event, one row, one JSON value built from
        the row's features, two header stamps and one append to a batch."""
        taken = list(itertools.islice(rows, len(offsets)))
        if not taken:
            return 0
        if self._owned is not None:
            self.next_id = first_id + len(taken)
            return await self._send_owned(taken, first_id, offsets)
        return await self._send_rows(taken, list(range(first_id, first_id + len(taken))), offsets)

    async def _send_owned(self, taken: list[Row], first_id: int, offsets: list[int]) -> int:
        """A worker's share of these events: those on the partitions it owns."""
        owned, n_part = self._owned, self._partitions
        assert owned is not None
        keep = [k for k in range(len(taken)) if owned[(first_id + k) % n_part]]
        if not keep:
            self._on_sent([], [], [], [])  # still tells how far the schedule went
            return len(taken)
        await self._send_rows([taken[k] for k in keep], [first_id + k for k in keep],
                              [offsets[k] for k in keep])
        return len(taken)

    async def _send_rows(self, taken: list[Row], ids: list[int], offsets: list[int]) -> int:
        """Send ``taken[k]`` as event ``ids[k]`` intended at ``offsets[k]``."""
        n_part = self._partitions
        producer = self._producer
        builders = self._open
        for partition in range(n_part):
            if builders[partition] is None:
                builders[partition] = producer.create_batch()
        start_wall, start_mono = self.start_wall_ns, self._start_mono_ns
        clock = time.perf_counter_ns
        encode = protocol.encode
        header_intended, header_sent = protocol.HEADER_INTENDED_NS, protocol.HEADER_SENT_NS
        intended = [start_wall + offset for offset in offsets[: len(taken)]]
        sent: list[int] = []
        cache = self._encoded
        cached = cache.get if cache is not None else _none
        for event_id, row, intended_ns in zip(ids, taken, intended, strict=True):
            spoiled = row.spoiled  # a fault's features are not the row's own: never cached
            features = None if spoiled else cached(row.index)
            if features is None:
                try:
                    features = encode(row.features)
                except (TypeError, msgspec.EncodeError) as exc:
                    raise DatasetError(self._dataset.name, f"row {row.index} cannot be sent as JSON: {exc}") from None
                if cache is not None and not spoiled:
                    cache[row.index] = features
            value = b'{"type":"event","id":%d,"features":%s,"row":%d}' % (event_id, features, row.index)
            sent_ns = start_wall + (clock() - start_mono)
            sent.append(sent_ns)
            headers = [(header_intended, b"%d" % intended_ns), (header_sent, b"%d" % sent_ns)]
            partition = event_id % n_part
            builder = builders[partition]
            if builder.append(key=b"%d" % event_id, value=value, timestamp=None, headers=headers) is None:
                self._full[partition].append(builder)
                builder = builders[partition] = producer.create_batch()
                builder.append(key=b"%d" % event_id, value=value, timestamp=None, headers=headers)
        labels = [row.label for row in taken]
        self._on_sent(ids, intended, sent, labels)  # ledger first: answers can only follow
        if self._on_rows is not None:
            self._on_rows(ids, [row.features for row in taken], labels)
        if self._label_delay_ns is not None:
            delay = self._label_delay_ns
            self._labels.extend((offset + delay, event_id, label)
                                for offset, event_id, label in zip(offsets, ids, labels, strict=False))
        await self._kick()
        self.stats.record_sent(np.asarray(intended, dtype=np.int64), np.asarray(sent, dtype=np.int64))
        return len(ids)

    async def _release_labels(self, now_offset_ns: int) -> None:
        """Send every label whose release time has come."""
        queue = self._labels
        if not queue or queue[0][0] > now_offset_ns:
            return
        builders = self._open
        encode = protocol.encode
        count = 0
        while queue and queue[0][0] <= now_offset_ns and count < _MAX_BATCH_EVENTS:
            _, event_id, label = queue.popleft()
            partition = event_id % self._partitions
            builder = builders[partition]
            if builder is None:
                builder = builders[partition] = self._producer.create_batch()
            key = b"%d" % event_id
            try:
                value = encode(protocol.Label(id=event_id, label=label))
            except (TypeError, msgspec.EncodeError) as exc:
                raise DatasetError(self._dataset.name, f"the label of event {event_id} cannot be "
                                   f"sent as JSON: {exc}") from None
            if builder.append(key=key, value=value, timestamp=None) is None:
                self._full[partition].append(builder)
                builder = builders[partition] = self._producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)
            count += 1
        self.stats.labels_sent += count
        await self._kick()

    async def _kick(self) -> None:
        """Wake the shippers of partitions with records; wait while too many full
        batches queue up (the broker is slower than the schedule: that is lag)."""
        for partition, builder in enumerate(self._open):
            if self._full[partition] or (builder is not None and builder.record_count()):
                self._wake[partition].set()
        while any(len(queue) > _MAX_QUEUED for queue in self._full):
            await anyio.sleep(0.0005)

    async def _shipper(self, partition: int) -> None:
        """Hand this partition's batches to the producer, one at a time, in order."""
        producer, full = self._producer, self._full[partition]
        while True:
            builder = self._open[partition]
            if not full and (builder is None or not builder.record_count()):
                self._wake[partition] = anyio.Event()
                await self._wake[partition].wait()
                continue
            if full:
                builder = full.popleft()
            else:
                self._open[partition] = producer.create_batch()
            self._busy[partition] = True
            builder.close()
            future = await producer.send_batch(builder, self._topic, partition=partition)
            self._busy[partition] = False
            self._pending.append(future)
            if len(self._pending) > 256:
                self._check_delivered()

    async def _shipped(self) -> None:
        """Wait until every batch built has been handed to the producer."""
        while True:
            left = [p for p in range(self._partitions)
                    if self._busy[p] or self._full[p]
                    or (self._open[p] is not None and self._open[p].record_count())]
            if not left:
                return
            for partition in left:
                self._wake[partition].set()
            await anyio.sleep(0.0005)

    def _check_delivered(self, final: bool = False) -> None:
        """Raise the first delivery failure; forget futures that succeeded."""
        still = []
        for future in self._pending:
            if future.done():
                exc = future.exception()
                if exc is not None:
                    raise exc
            elif not final:
                still.append(future)
        self._pending = still


def _none(_key: int) -> None:
    return None
