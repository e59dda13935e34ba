"""The process runtime: a pipeline started as local processes (``runtime = "process"``).

Owns starting each replica with the protocol's environment, sending its output
into the run folder (``pipeline-<name>[-<replica>].log``), noticing the moment
one exits on its own (:meth:`ProcessRunner.supervise` waits on each) and
starting it again when the pipeline's ``restart`` policy says so, freezing
(SIGSTOP/SIGCONT) and killing replicas for fault injection, and stopping them
all at the end (SIGTERM, then SIGKILL). It does not know about Kafka or scoring.
Processes run in their own session so that a Ctrl+C in the terminal reaches the
harness, which then stops them in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import anyio
import msgspec
import structlog
from anyio.abc import Process

from ..errors import PipelineError, RunError
from ..watch.incidents import IncidentKind, IncidentLog
from .procutil import signal_group, tail_lines
from ..watch.resources import TreeSampler
from ..scenario.model import ProcessPipeline
from .base import ReplicaState, ReplicaStatus, Resources, RunnerStatus

__all__ = ["ProcessRunner", "ReplicaExit"]

log = structlog.get_logger(__name__)


class ReplicaExit(msgspec.Struct, frozen=True):
    """How one replica ended: its index, exit code and whether the harness stopped it."""

    replica: int
    exit_code: int
    stopped_by_harness: bool
    process: Any = None  # the ended process (a restarted replica has a new one)


def resolve_command(command: list[str]) -> list[str]:
    """A leading ``python``/``python3`` means the interpreter running ppipe, so a
    scenario runs the same way inside and outside a virtualenv."""
    if command and command[0] in ("python", "python3"):
        return [sys.executable, *command[1:]]
    return list(command)


class ProcessRunner:
    """Runs one pipeline's replicas as child processes (a :class:`~.base.Runner`)."""

    ready_timeout = 0.0  # the run's default readiness wait

    def __init__(self, spec: ProcessPipeline, *, env: dict[str, str], run_dir: Path,
                 base_dir: Path) -> None:
        self.spec = spec
        self.name = spec.name
        self._env = {**os.environ, **env, **spec.env, "PYTHONUNBUFFERED": "1"}
        self._cwd = (base_dir / spec.cwd) if spec.cwd else base_dir
        self._run_dir = run_dir
        self._processes: list[Process] = []
        self._logs: list[IO[bytes]] = []
        self._stopping = False
        self._paused: set[int] = set()
        self._restarting: set[int] = set()  # replicas between their exit and their new start
        self.exits: list[ReplicaExit] = []
        self.restarts = 0
        self._restarts: dict[int, int] = {}  # replica -> times started again
        self.incidents: IncidentLog | None = None  # the run's, set by the run
        self._sampler = TreeSampler(lambda: [p.pid for p in self._processes if p.returncode is None])

    def log_path(self, replica: int) -> Path:
        suffix = "" if self.spec.replicas == 1 else f"-{replica}"
        return self._run_dir / f"pipeline-{self.name}{suffix}.log"

    async def start(self) -> None:
        """Start every replica; PipelineError when the command cannot be run at all."""
        for replica in range(self.spec.replicas):
            self._processes.append(await self._spawn(replica))

    async def _spawn(self, replica: int) -> Process:
        command = resolve_command(self.spec.command)
        out = open(self.log_path(replica), "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(out)
        try:
            process = await anyio.open_process(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self._cwd, env={**self._env, "PPIPE_REPLICA": str(replica)},
                start_new_session=True,
            )
        except OSError as exc:
            out.close()
            self._logs.remove(out)
            raise PipelineError(self.name, f"cannot start {command[0]!r}: {exc.strerror or exc}") from exc
        log.info("pipeline.started", pipeline=self.name, replica=replica, pid=process.pid)
        return process

    def poll(self) -> RunnerStatus:
        """Note the replicas that exited since the last poll (an early exit is logged and
        recorded as an incident), and return the status."""
        known = {id(e.process) for e in self.exits}
        for replica, process in enumerate(self._processes):
            if id(process) not in known and process.returncode is not None:
                ended = ReplicaExit(replica, process.returncode, self._stopping, process)
                self.exits.append(ended)
                if not self._stopping:
                    log.warning("pipeline.exited_early", pipeline=self.name, replica=replica,
                                exit_code=process.returncode, log=str(self.log_path(replica)))
                    if self.incidents is not None:
                        self.incidents.record(IncidentKind.PIPELINE_EXIT, self.name,
                                              f"replica {replica} exited with code {process.returncode}",
                                              detected_after_s=0.0)
        return self.status()

    async def supervise(self) -> None:
        """Wait on every replica; the moment one ends on its own, report it and start
        it again if the ``restart`` policy says so (at most ``max_restarts`` times)."""
        async with anyio.create_task_group() as tg:
            for replica in range(len(self._processes)):
                tg.start_soon(self._watch, replica)

    async def _watch(self, replica: int) -> None:
        policy, limit = self.spec.restart, self.spec.max_restarts
        while True:
            process = self._processes[replica]
            code = await process.wait()
            if self._stopping:
                return
            wanted = policy == "always" or (policy == "on-failure" and code != 0)
            restart = wanted and self.restarts < limit
            if restart:
                self._restarting.add(replica)
            self.poll()
            if not restart:
                return
            began = time.monotonic()
            try:
                self._processes[replica] = await self._spawn(replica)
            finally:
                self._restarting.discard(replica)
            self.restarts += 1
            self._restarts[replica] = self._restarts.get(replica, 0) + 1
            log.warning("pipeline.restarted", pipeline=self.name, replica=replica, restarts=self.restarts)
            if self.incidents is not None:
                self.incidents.record(IncidentKind.PIPELINE_RESTART, self.name,
                                      f"replica {replica} started again ({policy})",
                                      duration_s=time.monotonic() - began)

    def _replicas(self, replica: int | None) -> list[Process]:
        chosen = self._processes if replica is None else [self._processes[replica]]
        return [p for p in chosen if p.returncode is None]

    async def kill(self, replica: int | None = None) -> None:
        """SIGKILL a replica (all when None), as a crash would: the restart policy applies."""
        for process in self._replicas(replica):
            signal_group(process, signal.SIGKILL)

    def kill_now(self) -> None:
        """SIGKILL every replica at once, with no restart (a second Ctrl+C)."""
        self._stopping = True
        for process in self._processes:
            if process.returncode is None:
                signal_group(process, signal.SIGKILL)

    async def pause(self, replica: int | None = None) -> None:
        """Freeze replicas (SIGSTOP to the process group): alive, but answering nothing."""
        for index, process in enumerate(self._processes):
            if replica in (None, index) and process.returncode is None:
                signal_group(process, signal.SIGSTOP)
                self._paused.add(index)

    async def resume(self, replica: int | None = None) -> None:
        for index in sorted(self._paused):
            if replica in (None, index):
                signal_group(self._processes[index], signal.SIGCONT)
                self._paused.discard(index)

    def degrade_network(self, delay: Any, loss: float) -> None:
        """Local processes share the host's network: a network fault needs docker."""
        raise RunError(f"pipeline {self.name!r}: network faults need runtime = \"docker\"")

    def restore_network(self) -> None:
        """Nothing was degraded."""

    async def apoll(self) -> RunnerStatus:
        return self.poll()

    def stats(self) -> Resources | None:
        """CPU % (100 = one core) and resident MiB of the replicas and their children."""
        sample = self._sampler.sample()
        return None if sample is None else Resources(cpu_percent=sample["cpu_percent"],
                                                     memory_mib=sample["memory_mib"])

    @property
    def running(self) -> int:
        """Replicas up, or being started again by the restart policy."""
        return sum(1 for k, p in enumerate(self._processes)
                   if p.returncode is None or k in self._restarting)

    def last_lines(self, replica: int = 0, count: int = 10) -> str:
        return tail_lines(self.log_path(replica), count)

    async def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM every replica, wait up to ``timeout``, then SIGKILL the rest."""
        self.poll()
        self._stopping = True
        await self.resume(None)  # a frozen process would not act on SIGTERM
        for process in self._processes:
            if process.returncode is None:
                signal_group(process, signal.SIGTERM)
        with anyio.move_on_after(timeout):
            for process in self._processes:
                await process.wait()
        for process in self._processes:
            if process.returncode is None:
                log.warning("pipeline.killed", pipeline=self.name, pid=process.pid)
                signal_group(process, signal.SIGKILL)
                await process.wait()
        for out in self._logs:
            out.close()
        self._logs.clear()

    def status(self) -> RunnerStatus:
        """Each replica's state, the restarts, and the exit code of the first replica
        that ended on its own (None while all ran to the end); reads nothing new."""
        early = [e for e in self.exits if not e.stopped_by_harness]
        return RunnerStatus(
            name=self.name, replicas=tuple(self._replica_status(k) for k in range(len(self._processes))),
            restarts=self.restarts, oom_killed=False,
            exit_code=early[0].exit_code if early else None, exited=len(early))

    def _replica_status(self, replica: int) -> ReplicaStatus:
        process = self._processes[replica]
        code = process.returncode
        if replica in self._restarting:
            state = ReplicaState.RESTARTING
        elif code is None:
            state = ReplicaState.PAUSED if replica in self._paused else ReplicaState.RUNNING
        else:
            ended = next((e for e in self.exits if e.process is process), None)
            by_harness = ended.stopped_by_harness if ended is not None else self._stopping
            state = ReplicaState.STOPPED if by_harness else ReplicaState.EXITED
        last = next((e.exit_code for e in reversed(self.exits) if e.replica == replica), None)
        return ReplicaStatus(replica=replica, state=state, exit_code=code if code is not None else last,
                             restarts=self._restarts.get(replica, 0))
