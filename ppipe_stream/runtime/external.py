"""The external runtime: a pipeline the user runs elsewhere (``runtime = "external"``).

Owns telling the user how to start it: the protocol's environment is written to
``pipeline-<name>.env`` in the run folder and printed on standard error, and
the run waits (up to ``ready_timeout``) for the pipeline's reply to the
readiness ping. It starts, stops, supervises and measures nothing: those parts
of the :class:`~.base.Runner` Protocol are no-ops here, and its one replica's
state is always ``UNKNOWN`` (assumed up; its answers tell).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import structlog

from ..errors import RunError
from ..watch.incidents import IncidentLog
from ..scenario.model import ExternalPipeline
from .base import ReplicaState, ReplicaStatus, Resources, RunnerStatus

__all__ = ["ExternalRunner"]

log = structlog.get_logger(__name__)


class ExternalRunner:
    """Stands for a pipeline running outside the harness's control (a :class:`~.base.Runner`)."""

    def __init__(self, spec: ExternalPipeline, *, env: dict[str, str], run_dir: Path) -> None:
        self.spec = spec
        self.name = spec.name
        self._env = env
        self._run_dir = run_dir
        self.ready_timeout = float(spec.ready_timeout)
        self.incidents: IncidentLog | None = None  # the run's, set by the run (nothing to report)

    @property
    def env_path(self) -> Path:
        return self._run_dir / f"pipeline-{self.name}.env"

    async def start(self) -> None:
        lines = [f"export {key}={shlex.quote(value)}" for key, value in sorted(self._env.items())]
        self.env_path.write_text("\n".join(lines) + "\n")
        print(f"ppipe: pipeline {self.name!r} is external: start it now with this environment "
              f"(also in {self.env_path}); the run waits up to {self.ready_timeout:.0f} s for it:",
              file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        sys.stderr.flush()
        log.info("pipeline.external", pipeline=self.name, env_file=str(self.env_path))

    async def supervise(self) -> None:
        """Nothing to supervise: the user started it elsewhere."""

    def poll(self) -> RunnerStatus:
        return self.status()

    async def apoll(self) -> RunnerStatus:
        return self.status()

    def status(self) -> RunnerStatus:
        return RunnerStatus(name=self.name,
                            replicas=(ReplicaStatus(replica=0, state=ReplicaState.UNKNOWN),))

    @property
    def running(self) -> int:
        return 1  # unknown: assumed up; its answers tell

    def log_path(self, replica: int) -> Path:
        """Where its output would be: the harness has none (the user's terminal has it)."""
        return self._run_dir / f"pipeline-{self.name}.log"

    def last_lines(self, replica: int = 0, count: int = 10) -> str:
        return ""

    def stats(self) -> Resources | None:
        return None

    async def kill(self, replica: int | None = None) -> None:
        """Nothing to kill: the user started it elsewhere."""

    def kill_now(self) -> None:
        """Nothing to kill: the user started it elsewhere."""

    async def pause(self, replica: int | None = None) -> None:
        """Nothing to freeze."""

    async def resume(self, replica: int | None = None) -> None:
        """Nothing was frozen."""

    def degrade_network(self, delay: Any, loss: float) -> None:
        raise RunError(f"pipeline {self.name!r}: network faults need runtime = \"docker\"")

    def restore_network(self) -> None:
        """Nothing was degraded."""

    async def stop(self, timeout: float = 5.0) -> None:
        return None
