"""Dispatch workers: one run's dispatching split over N processes (``[load] workers``).

Owns the worker processes and their join in the main process. Worker ``k`` of
``N`` owns the input partitions ``p`` with ``p % N == k``: it opens the same
dataset and builds the same schedule from the same seed, walks all of it, and
sends (with its own producer, same settings) exactly the events and labels
whose partition (``id % partitions``) it owns, through a :class:`Dispatcher`
given ``owned``. All workers share the run's clock origin: the main process
hands over the wall-clock ns of offset 0 and each worker maps it onto its own
monotonic clock.

Each worker streams back, batched (every ``FLUSH_NS`` or ``FLUSH_EVENTS``) on a
pipe whose OS buffer bounds it, in the tagged Structs of :mod:`.messages`,
what it sent - ids, intended and sent stamps, labels - and how far along the
schedule it has come, plus its cumulative dispatch figures with its lag
histogram (hdrh encoding, lossless), its dropped events and planned span, and
its own event loop's lateness every ``STATS_NS``. :class:`DispatchWorkers` (a
:class:`~.base.Dispatch`) merges the records of all workers in id
order up to the slowest worker's progress before handing them to ``on_sent``
(the ledger wants rising ids), and merges the histograms, so its ``stats``
read as one dispatcher's. Answers may now reach the scorer before their
record: the run builds the scorer with ``hold_unrecorded=True``.

A worker that raises, or dies, fails the run with one :class:`RunError` line.
Workers ignore SIGINT/SIGHUP (the run stops them) and leave when their pipe
to the main process closes, so none outlives the run.

Processes come from multiprocessing's ``spawn`` context: a fresh interpreter
(no forked event loop, Kafka sockets or threads), a long-lived process that
streams for the whole run (``anyio.to_process`` is made for calls that return
once), and a duplex pipe whose file descriptor the event loop can wait on.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import msgspec
import numpy as np
import structlog
from anyio.abc import TaskStatus

from . import messages as wire
from .base import DispatchFigures, DispatchStats, OnSent, open_plan
from ..errors import RunError, first_leaf
from ..scoring.hist import decode, encode, merge, new_histogram
from ..watch.loop_lag import LatenessStats, LoopLateness, lateness_stats
from ..scenario import LoadedScenario
from ..scenario.model import Scenario

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

__all__ = ["DispatchWorkers", "owned_partitions"]

log = structlog.get_logger(__name__)

FLUSH_NS = 2_000_000  # a worker ships its records at least this often while busy
FLUSH_EVENTS = 8192  # ... or once it holds this many
STATS_NS = 500_000_000  # and its figures this often
READY_TIMEOUT_S = 120.0
CACHE_ROWS = 200_000  # datasets up to this many rows are read once per worker
STOP_TIMEOUT_S = 5.0


def owned_partitions(worker: int, workers: int, partitions: int) -> list[int]:
    """The partitions worker ``worker`` of ``workers`` sends: ``p % workers == worker``."""
    return [p for p in range(partitions) if p % workers == worker]


# -- the worker process ----------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    scenario: Scenario
    base_dir: str
    bootstrap: str
    topic: str
    index: int
    log_dir: str | None
    with_rows: bool


def _worker_main(conn: Any, spec: _Spec) -> None:
    """Entry point of worker ``spec.index`` (a spawned process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole process group:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the run stops its workers itself
    try:
        from ..run.logs import configure_logging

        configure_logging(Path(spec.log_dir) if spec.log_dir else None, console_level="critical")
        structlog.contextvars.bind_contextvars(worker=spec.index)
        anyio.run(_worker_async, conn, spec)
    except BaseException as caught:  # noqa: BLE001 - reported to the main process, which fails the run
        exc = first_leaf(caught)  # the task group's first real error
        text = (str(exc).splitlines() or [""])[0]
        try:
            conn.send_bytes(wire.encode(wire.Failed(
                message=f"{type(exc).__name__}: {text}" if text else type(exc).__name__)))
        except OSError:
            pass
    finally:
        conn.close()


async def _worker_async(conn: Any, spec: _Spec) -> None:
    from aiokafka import AIOKafkaProducer

    from .dispatcher import Dispatcher, producer_settings
    from ..security import ClientSecurity

    scenario = spec.scenario
    load, base_dir = scenario.load, Path(spec.base_dir)
    dataset, schedule = open_plan(scenario, base_dir)
    _cache_rows(dataset)
    # the run's login, resolved from the environment the worker inherited
    security = ClientSecurity.resolve(scenario.kafka.security, base_dir=base_dir)
    producer = AIOKafkaProducer(**producer_settings(scenario.kafka, spec.bootstrap, security))
    await producer.start()
    try:
        sink = _Sink(conn, with_rows=spec.with_rows)
        dispatcher = Dispatcher(
            producer=producer, topic=spec.topic, partitions=scenario.kafka.partitions,
            dataset=dataset, schedule=schedule, label_delay_s=float(scenario.labels.delay),
            on_sent=sink.on_sent, drain_s=float(load.drain),
            on_rows=sink.on_rows if spec.with_rows else None,
            owned=owned_partitions(spec.index, load.workers, scenario.kafka.partitions),
            on_idle=sink.on_idle, max_lag_s=load.max_lag_s,
            stop_on_overload=load.on_overload == "stop")
        sink.dispatcher = dispatcher
        conn.send_bytes(wire.encode(wire.Ready(pid=os.getpid())))
        message = wire.decode_to_worker(await _receive(conn))
        if not isinstance(message, wire.Go):
            return
        wall0 = message.wall0_ns
        clock = (wall0, time.perf_counter_ns() - (time.time_ns() - wall0))
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_main, conn, tg.cancel_scope, sink)
            await tg.start(sink.lateness.run)
            await dispatcher.run(clock=clock)
            tg.cancel_scope.cancel()
        if not sink.stopped:
            sink.flush(done=True)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_TIMEOUT_S):
            await producer.stop()


def _cache_rows(dataset: Any) -> None:
    """Keep one pass of a small dataset's rows in memory, read before the clock starts.

    Every worker walks every row (and sends a share): a file re-read and re-parsed
    on each pass would cost each of them what the whole dispatch costs one
    process. The rows come in the same order (shuffling still happens per pass, in
    DatasetStream, from the same seed)."""
    if dataset.n_rows is None or dataset.n_rows > CACHE_ROWS:
        return
    rows = list(dataset._factory())  # noqa: SLF001 - one pass, as DatasetStream reads it
    dataset._factory = lambda: iter(rows)  # noqa: SLF001


async def _receive(conn: Any) -> bytes:
    """The next message on ``conn``, encoded; EOFError when the other end is gone."""
    while not conn.poll():
        await anyio.wait_readable(conn.fileno())
    raw: bytes = conn.recv_bytes()
    return raw


async def _watch_main(conn: Any, scope: anyio.CancelScope, sink: _Sink) -> None:
    """Stop when the main process says so, and leave when it is gone."""
    try:
        while not isinstance(wire.decode_to_worker(await _receive(conn)), wire.Stop):
            pass
    except EOFError:
        raise RunError("the main process went away") from None
    sink.stopped = True
    scope.cancel()


class _Sink:
    """A worker's side of the pipe: batches what its dispatcher sent."""

    def __init__(self, conn: Any, *, with_rows: bool = False) -> None:
        self._conn = conn
        self._with_rows = with_rows  # features follow each on_sent in on_rows: flush after them
        self.dispatcher: Dispatcher | None = None
        self.stopped = False  # the main process said stop: no final report
        self._ids: list[int] = []
        self._intended: list[int] = []
        self._sent: list[int] = []
        self._labels: list[Any] = []
        self._features: list[Any] | None = [] if with_rows else None
        self._covered = 0  # schedule progress last shipped
        self.lateness = LoopLateness()  # this worker's own event loop
        self._last_flush = self._last_stats = time.perf_counter_ns()

    def on_sent(self, ids: Sequence[int], intended: Sequence[int], sent: Sequence[int],
                labels: Sequence[Any]) -> None:
        self._ids.extend(ids)
        self._intended.extend(intended)
        self._sent.extend(sent)
        self._labels.extend(labels)
        if not self._with_rows:
            self._maybe_flush()

    def on_rows(self, ids: Sequence[int], features: Sequence[Any], labels: Sequence[Any]) -> None:
        if self._features is None:
            self._features = []
        self._features.extend(features)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        now = time.perf_counter_ns()
        if now - self._last_flush >= FLUSH_NS or len(self._ids) >= FLUSH_EVENTS:
            self.flush(now=now)

    def on_idle(self, wait_ns: int) -> None:
        """The dispatcher is about to sleep ``wait_ns`` (-1: its events are done)."""
        now = time.perf_counter_ns()
        if wait_ns < 0 or wait_ns >= FLUSH_NS // 2 or now - self._last_flush >= FLUSH_NS:
            self.flush(now=now, finished=wait_ns < 0)

    def flush(self, *, now: int | None = None, finished: bool = False, done: bool = False) -> None:
        now = time.perf_counter_ns() if now is None else now
        assert self.dispatcher is not None
        covered = self.dispatcher.next_id
        if self._ids or covered != self._covered:
            self._conn.send_bytes(wire.encode(wire.Sent(
                covered=covered, ids=wire.column(self._ids), intended=wire.column(self._intended),
                sent=wire.column(self._sent), labels=self._labels, features=self._features)))
            self._ids, self._intended, self._sent, self._labels = [], [], [], []
            self._features = [] if self._with_rows else None
            self._covered = covered
        self._last_flush = now
        if finished or done or now - self._last_stats >= STATS_NS:
            report = wire.Done if done else wire.Stats
            self._conn.send_bytes(wire.encode(report(figures=self.dispatcher.stats.figures(),
                                                     loop_us=encode(self.lateness.histogram))))
            self._last_stats = now


# -- the main process --------------------------------------------------------------


@dataclass
class _Worker:
    index: int
    process: Any
    conn: Any
    pid: int = 0
    covered: float = 0  # every id below this was sent (or is not its to send)
    chunks: deque[tuple[np.ndarray, np.ndarray, np.ndarray, list[Any], list[Any] | None]] = field(
        default_factory=deque)
    figures: DispatchFigures | None = None  # the latest Stats or Done
    loop_us: bytes = b""  # its loop lateness histogram, encoded
    done: bool = False


class DispatchWorkers:
    """N dispatch worker processes, run as one dispatcher: ``start()`` them (before
    the run's clock is fixed: a process takes a second or two to come up), then
    ``bind()`` the ledger, ``run()`` like :meth:`Dispatcher.run`, and ``stop()``."""

    def __init__(self, loaded: LoadedScenario, *, bootstrap: str, topic: str,
                 log_dir: Path | None = None, with_rows: bool = False) -> None:
        self._loaded = loaded
        self._bootstrap = bootstrap
        self._topic = topic
        self._log_dir = log_dir
        self._with_rows = with_rows
        self.workers = loaded.scenario.load.workers
        self._procs: list[_Worker] = []
        self._on_sent: OnSent = lambda *args: None
        self._on_rows: Callable[..., None] | None = None
        self.stats = DispatchStats(None)
        self.loop_lateness_us = new_histogram()  # the workers' event loops, merged

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._procs]

    def workers_lateness(self) -> LatenessStats | None:
        """The workers' own event loops' lateness, merged."""
        return lateness_stats(self.loop_lateness_us)

    async def start(self) -> None:
        """Spawn the workers and wait until each is ready to send."""
        context = multiprocessing.get_context("spawn")
        scenario = self._loaded.scenario
        for k in range(self.workers):
            parent, child = context.Pipe(duplex=True)
            spec = _Spec(scenario=scenario, base_dir=str(self._loaded.base_dir),
                         bootstrap=self._bootstrap, topic=self._topic, index=k,
                         log_dir=str(self._log_dir) if self._log_dir else None,
                         with_rows=self._with_rows)
            process = context.Process(target=_worker_main, args=(child, spec),
                                      name=f"ppipe-dispatch-{k}", daemon=True)
            process.start()
            child.close()  # the worker's end lives in the worker only: its death is our EOF
            self._procs.append(_Worker(k, process, parent))
        with anyio.move_on_after(READY_TIMEOUT_S) as scope:
            for worker in self._procs:
                message = await self._receive(worker)
                if not isinstance(message, wire.Ready):
                    raise RunError(f"dispatch worker {worker.index} sent {type(message).__name__} "
                                   "before ready")
                worker.pid = message.pid
                log.info("dispatch.worker_ready", worker=worker.index, pid=worker.pid,
                         partitions=owned_partitions(worker.index, self.workers,
                                                     scenario.kafka.partitions))
        if scope.cancelled_caught:
            raise RunError(f"the dispatch workers were not ready after {READY_TIMEOUT_S:.0f} s")

    def bind(self, *, on_sent: OnSent, target_rate: float | None,
             on_rows: Callable[..., None] | None = None) -> None:
        """Where merged records go (the scorer's ledger) and the proctor's rows."""
        self._on_sent = on_sent
        self._on_rows = on_rows
        self.stats.target_rate = target_rate

    async def run(self, *, clock: tuple[int, int] | None = None,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> DispatchStats:
        """Start the workers on the run's clock and merge what they send until all are done."""
        wall0 = clock[0] if clock else time.time_ns()
        for worker in self._procs:
            worker.conn.send_bytes(wire.encode(wire.Go(wall0_ns=wall0)))
        task_status.started()
        log.info("dispatch.started", workers=self.workers, target_rate=self.stats.target_rate)
        async with anyio.create_task_group() as tg:
            for worker in self._procs:
                tg.start_soon(self._follow, worker)
        self._merge()
        self.stats.finished = True
        log.info("dispatch.workers_done", events=self.stats.events_sent)
        return self.stats

    async def _follow(self, worker: _Worker) -> None:
        while not worker.done:
            message = await self._receive(worker)
            if isinstance(message, wire.Sent):
                worker.covered = max(worker.covered, message.covered)
                ids = wire.array(message.ids)
                if len(ids):
                    worker.chunks.append((ids, wire.array(message.intended), wire.array(message.sent),
                                          message.labels, message.features))
                self._merge()
            elif isinstance(message, (wire.Stats, wire.Done)):
                worker.figures, worker.loop_us = message.figures, message.loop_us
                if isinstance(message, wire.Done) or message.figures.finished:
                    worker.covered = math.inf
                worker.done = isinstance(message, wire.Done)
                self._merge()
                self._update_figures()
            else:
                raise RunError(f"dispatch worker {worker.index} sent {type(message).__name__}")

    async def _receive(self, worker: _Worker) -> wire.ToMain:
        try:
            raw = await _receive(worker.conn)
        except (EOFError, OSError):
            await anyio.to_thread.run_sync(worker.process.join, 2.0)
            raise RunError(f"dispatch worker {worker.index} (pid {worker.process.pid}) died "
                           f"(exit code {worker.process.exitcode})") from None
        try:
            message = wire.decode_to_main(raw)
        except msgspec.DecodeError as exc:
            raise RunError(f"dispatch worker {worker.index} sent an unreadable message: {exc}") from None
        if isinstance(message, wire.Failed):
            raise RunError(f"dispatch worker {worker.index} failed: {message.message}")
        return message

    def _merge(self) -> None:
        """Hand every record below the slowest worker's progress to the ledger, in id order."""
        frontier = min(w.covered for w in self._procs)
        parts: list[Any] = []  # (ids, intended, sent, labels, features) slices
        for worker in self._procs:
            chunks = worker.chunks
            while chunks:
                ids = chunks[0][0]
                if ids[-1] < frontier:
                    parts.append(chunks.popleft())
                    continue
                cut = int(np.searchsorted(ids, frontier))
                if cut:
                    head = chunks[0]
                    parts.append(tuple(None if x is None else x[:cut] for x in head))
                    chunks[0] = tuple(None if x is None else x[cut:] for x in head)  # type: ignore[assignment]
                break
        if not parts:
            return
        ids = np.concatenate([p[0] for p in parts])
        intended = np.concatenate([p[1] for p in parts])
        sent = np.concatenate([p[2] for p in parts])
        labels = [label for p in parts for label in p[3]]
        order = np.argsort(ids, kind="stable")
        ids, intended, sent = ids[order], intended[order], sent[order]
        index = order.tolist()
        labels = [labels[k] for k in index]
        # int64 arrays: the ledger takes them as they are (Sequence-like, not Sequence to mypy)
        self._on_sent(cast(Sequence[int], ids), cast(Sequence[int], intended),
                      cast(Sequence[int], sent), labels)
        if self._on_rows is not None and all(p[4] is not None for p in parts):
            features = [f for p in parts for f in p[4]]  # type: ignore[union-attr]
            self._on_rows(ids.tolist(), [features[k] for k in index], labels)
        self.stats.record_sent(intended, sent, lag=False)  # lag: the workers' own histograms

    def _update_figures(self) -> None:
        reported = [w for w in self._procs if w.figures is not None]
        self.stats.combine([w.figures for w in reported if w.figures is not None], of=len(self._procs))
        self.loop_lateness_us = merge([decode(w.loop_us) for w in reported])

    async def stop(self) -> None:
        """Stop every worker still running and reap it (shielded; terminate, then kill)."""
        with anyio.CancelScope(shield=True):
            for worker in self._procs:
                try:
                    worker.conn.send_bytes(wire.encode(wire.Stop()))
                except OSError:
                    pass
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for worker in self._procs:
                process = worker.process
                await anyio.to_thread.run_sync(process.join, max(deadline - time.monotonic(), 0.1))
                if process.is_alive():
                    log.warning("dispatch.worker_terminated", worker=worker.index, pid=process.pid)
                    process.terminate()
                    await anyio.to_thread.run_sync(process.join, 2.0)
                if process.is_alive():
                    process.kill()
                    await anyio.to_thread.run_sync(process.join, 2.0)
                worker.conn.close()
