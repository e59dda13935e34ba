"""Fault injection: the scenario's ``[[faults]]`` carried out during a run.

Owns acting on the run's own parts at the planned times: killing or pausing a
pipeline's replicas (through its runner), crashing or stopping the run's
embedded Apache Kafka and starting it again on the same data, adding packet
delay or loss inside a docker pipeline's network namespace, and corrupting a
fraction of the rows sent (:class:`RowCorruptor`, P-Pipe's "inverse
imputation"). Every fault is an incident (start, and end where it has one), so
it shows in the timeline, the summary and the report. :meth:`FaultInjector.undo`
puts everything back (resumes, restarts, removes network rules) at the end
of the run, whatever happened. It measures nothing itself.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from ..datasets import Row
from ..errors import RunError
from .incidents import IncidentKind, IncidentLog
from ..scenario.faults import (
    BROKER_FAULTS,
    PIPELINE_FAULTS,
    BrokerRestartFault,
    BrokerStopFault,
    CorruptFault,
    KillFault,
    NetworkFault,
    PauseFault,
)

if TYPE_CHECKING:
    from ..runtime.base import Runner

__all__ = ["FaultInjector", "RowCorruptor", "netem_available"]

log = structlog.get_logger(__name__)


class RowCorruptor:
    """Wraps a dataset stream: while a ``corrupt`` fault is on, each row is chosen
    with the fault's probability (seeded by the event's place in the stream) and
    one of its features (from ``columns``, or any) is spoiled. The label is kept:
    the scorer judges the answer against the truth, as a user's data would be."""

    def __init__(self, dataset: Any, faults: list[CorruptFault], *, seed: int,
                 offset_ns: Callable[[], int]) -> None:
        self._dataset = dataset
        self._faults = faults
        self._seed = seed
        self._offset_ns = offset_ns
        self._windows = [(int(float(f.at) * 1e9),
                          None if f.duration is None else int(float(f.at + f.duration) * 1e9))
                         for f in faults]  # when each is on, in ns from the run's start
        self.corrupted = [0] * len(faults)

    def __getattr__(self, name: str) -> Any:  # name, n_rows, target, skipped_rows, close
        return getattr(self._dataset, name)

    def __iter__(self) -> Iterator[Row]:
        for k, row in enumerate(self._dataset):
            now = self._offset_ns()
            for f, (fault, (start, end)) in enumerate(zip(self._faults, self._windows, strict=True)):
                if now >= start and (end is None or now < end) and self._chosen(f, k, fault.fraction):
                    row = row._replace(features=self._spoil(row.features, fault, f, k), spoiled=True)
                    self.corrupted[f] += 1
                    break
            yield row

    def _draw(self, *parts: object) -> float:
        digest = hashlib.blake2b(repr((self._seed, *parts)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def _chosen(self, f: int, k: int, fraction: float) -> bool:
        return self._draw("row", f, k) < fraction

    def _spoil(self, features: dict[str, Any], fault: CorruptFault, f: int, k: int) -> dict[str, Any]:
        columns = [c for c in (fault.columns or list(features)) if c in features]
        if not columns:
            return features
        column = columns[int(self._draw("column", f, k) * len(columns))]
        spoiled = dict(features)
        value = spoiled[column]
        if fault.mode == "missing":
            spoiled[column] = None
        elif fault.mode == "outlier" and isinstance(value, (int, float)) and not isinstance(value, bool):
            spoiled[column] = value * 1000
        else:
            spoiled[column] = "#corrupt#"
        return spoiled


def netem_available() -> bool:
    """Whether this kernel has the netem queueing discipline (needed for delay)."""
    probe = subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
                           capture_output=True, text=True) if shutil.which("tc") else None
    if probe is None:
        return False
    if probe.returncode == 0:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)
        return True
    return "unknown" not in (probe.stderr or "").lower()


class FaultInjector:
    """Carries out the faults at their times; start with ``tg.start_soon(injector.run, clock)``."""

    def __init__(self, faults: list[Any], *, runners: dict[str, Runner], broker: Any,
                 incidents: IncidentLog, corruptor: RowCorruptor | None,
                 watch: Any = None) -> None:
        self.faults = sorted(faults, key=lambda f: float(f.at))
        self._runners = runners
        self._broker = broker  # RestartableKafka or None
        self._incidents = incidents
        self._corruptor = corruptor
        self._watch = watch  # the broker watch: told at once when a node is back
        self._undo: dict[int, Callable[[], Any]] = {}  # fault index -> what puts it back
        self._broker_lock = anyio.Lock()  # one broker fault at a time: the next waits for the restart
        self.applied = 0

    async def run(self, clock: tuple[int, int]) -> None:
        async with anyio.create_task_group() as tg:
            for index, fault in enumerate(self.faults):
                tg.start_soon(self._one, index, fault, clock)

    async def _one(self, index: int, fault: Any, clock: tuple[int, int]) -> None:
        _, start_mono = clock
        delay = (start_mono + int(float(fault.at) * 1e9) - time.perf_counter_ns()) / 1e9
        await anyio.sleep(max(delay, 0))
        if isinstance(fault, BROKER_FAULTS):
            async with self._broker_lock:  # a node still coming back is not crashed again
                await self._apply(index, fault)
        else:
            await self._apply(index, fault)

    async def _apply(self, index: int, fault: Any) -> None:
        what = _describe(fault)
        self._incidents.record(IncidentKind.FAULT, _target(fault), what)
        self.applied += 1
        began = time.monotonic()
        if isinstance(fault, KillFault):
            await self._runners[fault.pipeline].kill(fault.replica)
            return
        if isinstance(fault, CorruptFault):
            if fault.duration is not None:
                await anyio.sleep(float(fault.duration))
                self._end(fault, began)
            return
        if isinstance(fault, PauseFault):
            runner = self._runners[fault.pipeline]
            await runner.pause(fault.replica)
            self._undo[index] = lambda: runner.resume(fault.replica)
            await anyio.sleep(float(fault.duration))
        elif isinstance(fault, BrokerRestartFault):
            await anyio.to_thread.run_sync(self._broker.crash)
            self._undo[index] = self._restart_broker
            await anyio.sleep(float(fault.downtime))
        elif isinstance(fault, BrokerStopFault):
            await anyio.to_thread.run_sync(self._broker.stop_clean)
            self._undo[index] = self._restart_broker
            await anyio.sleep(float(fault.duration))
        elif isinstance(fault, NetworkFault):
            runner = self._runners[fault.pipeline]
            await anyio.to_thread.run_sync(runner.degrade_network, fault.delay, fault.loss)
            self._undo[index] = lambda: anyio.to_thread.run_sync(runner.restore_network)
            if fault.duration is None:
                return
            await anyio.sleep(float(fault.duration))
        await self._undo.pop(index)()
        self._end(fault, began)

    async def _restart_broker(self) -> None:
        await anyio.to_thread.run_sync(self._broker.start)
        if self._watch is not None:  # seen up before the next broker fault may take it down
            await self._watch.check()

    def _end(self, fault: Any, began: float) -> None:
        self._incidents.record(IncidentKind.FAULT_END, _target(fault), f"{fault.action} ended",
                               duration_s=time.monotonic() - began)

    async def undo(self) -> None:
        """Put back whatever is still broken (the run ended mid-fault)."""
        for index in list(self._undo):
            try:
                await self._undo.pop(index)()
            except Exception as exc:  # noqa: BLE001 - one failed undo must not stop the others
                log.error("fault.undo_failed", fault=_describe(self.faults[index]), error=str(exc))

    def summary(self) -> list[dict[str, Any]]:
        out = []
        corrupt = [f for f in self.faults if isinstance(f, CorruptFault)]
        for fault in self.faults:
            entry = {"action": fault.action, "at_s": float(fault.at), "target": _target(fault),
                     "what": _describe(fault)}
            if isinstance(fault, CorruptFault) and self._corruptor is not None:
                entry["rows_corrupted"] = self._corruptor.corrupted[corrupt.index(fault)]
            out.append(entry)
        return out


def _target(fault: Any) -> str:
    if isinstance(fault, PIPELINE_FAULTS):
        return fault.pipeline
    if isinstance(fault, BROKER_FAULTS):
        return f"broker node {fault.node}"
    return "rows"


def _describe(fault: Any) -> str:
    if isinstance(fault, KillFault):
        return "kill" + (f" replica {fault.replica}" if fault.replica is not None else "")
    if isinstance(fault, PauseFault):
        return f"pause for {fault.duration}"
    if isinstance(fault, BrokerRestartFault):
        return f"broker crash, restart after {fault.downtime}"
    if isinstance(fault, BrokerStopFault):
        return f"broker stop for {fault.duration}"
    if isinstance(fault, NetworkFault):
        parts = ([f"delay {fault.delay}"] if fault.delay is not None else []) + (
            [f"loss {fault.loss:.0%}"] if fault.loss else [])
        return "network " + ", ".join(parts) + (f" for {fault.duration}" if fault.duration else "")
    if isinstance(fault, CorruptFault):
        return f"corrupt {fault.fraction:.0%} of rows ({fault.mode})" + (
            f" for {fault.duration}" if fault.duration else "")
    raise RunError(f"unknown fault {fault!r}")
