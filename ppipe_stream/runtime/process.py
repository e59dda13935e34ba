"""The process runtime: a pipeline started as local processes (``runtime = "process"``).

Owns starting each replica with the protocol's environment, sending its output
into the run folder (``pipeline-<name>[-<replica>].log``), noticing when one
exits early, and stopping them all at the end (SIGTERM, then SIGKILL). It does
not know about Kafka or scoring. Processes run in their own session so that a
Ctrl+C in the terminal reaches the harness, which then stops them in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import anyio
import structlog
from anyio.abc import Process

from ..errors import PipelineError
from ..procutil import signal_group, tail_lines
from ..scenario.model import ProcessPipeline

__all__ = ["ProcessRunner", "ReplicaExit"]

log = structlog.get_logger(__name__)


class ReplicaExit:
    """How one replica ended: its index, exit code and whether the harness stopped it."""

    def __init__(self, replica: int, exit_code: int, stopped_by_harness: bool) -> None:
        self.replica = replica
        self.exit_code = exit_code
        self.stopped_by_harness = stopped_by_harness


def resolve_command(command: list[str]) -> list[str]:
    """A leading ``python``/``python3`` means the interpreter running ppipe, so a
    scenario runs the same way inside and outside a virtualenv."""
    if command and command[0] in ("python", "python3"):
        return [sys.executable, *command[1:]]
    return list(command)


class ProcessRunner:
    """Runs one pipeline's replicas as child processes."""

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
        self.exits: list[ReplicaExit] = []

    def log_path(self, replica: int) -> Path:
        suffix = "" if self.spec.replicas == 1 else f"-{replica}"
        return self._run_dir / f"pipeline-{self.name}{suffix}.log"

    async def start(self) -> None:
        """Start every replica; PipelineError when the command cannot be run at all."""
        command = resolve_command(self.spec.command)
        for replica in range(self.spec.replicas):
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
            self._processes.append(process)
            log.info("pipeline.started", pipeline=self.name, replica=replica, pid=process.pid)

    def poll(self) -> list[ReplicaExit]:
        """Replicas that have exited since the last poll (early exits are the interesting ones)."""
        new = []
        known = {e.replica for e in self.exits}
        for replica, process in enumerate(self._processes):
            if replica not in known and process.returncode is not None:
                ended = ReplicaExit(replica, process.returncode, self._stopping)
                self.exits.append(ended)
                new.append(ended)
                if not self._stopping:
                    log.warning("pipeline.exited_early", pipeline=self.name, replica=replica,
                                exit_code=process.returncode, log=str(self.log_path(replica)))
        return new

    async def apoll(self) -> list[ReplicaExit]:
        return self.poll()

    def stats(self) -> dict[str, float] | None:
        return None

    @property
    def running(self) -> int:
        return sum(1 for p in self._processes if p.returncode is None)

    def last_lines(self, replica: int = 0, count: int = 10) -> str:
        return tail_lines(self.log_path(replica), count)

    async def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM every replica, wait up to ``timeout``, then SIGKILL the rest."""
        self.poll()
        self._stopping = True
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

    def status(self) -> dict[str, object]:
        """results.md's ``container`` entry: restarts, OOM, and the exit code of a
        replica that ended on its own (None while all ran to the end)."""
        early = [e for e in self.exits if not e.stopped_by_harness]
        return {
            "restarts": 0,
            "oom_killed": False,
            "exit_code": early[0].exit_code if early else None,
        }
