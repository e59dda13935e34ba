"""The runner seam: what every pipeline runtime offers the run, and what it hands back.

Owns the :class:`Runner` Protocol that :class:`~.process.ProcessRunner`,
:class:`~.docker.DockerRunner` and :class:`~.external.ExternalRunner` all
implement in full (a runtime with nothing to do for a call, such as supervising
a pipeline the user started elsewhere, implements it as a no-op), and the typed
snapshots they return: :class:`RunnerStatus` from ``poll``/``apoll``/``status``
(one per call, never a dict), :class:`Resources` from ``stats``. The per-replica
state is a :class:`ReplicaState`. It starts nothing itself and knows no runtime.

``RunnerStatus.to_summary()`` is the one place summary.json's
``pipelines.<name>.container`` entry is built from (results.md: ``restarts``,
``oom_killed``, ``exit_code``; the hang watch adds its own keys beside them).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

if TYPE_CHECKING:
    from ..watch.incidents import IncidentLog

__all__ = ["ReplicaState", "ReplicaStatus", "Resources", "Runner", "RunnerStatus"]


class ReplicaState(enum.Enum):
    """Where one replica of a pipeline is in its life."""

    RUNNING = "running"
    PAUSED = "paused"  # frozen by a fault: alive, answering nothing
    RESTARTING = "restarting"  # between its exit and its new start (restart policy)
    EXITED = "exited"  # ended on its own (an early exit)
    STOPPED = "stopped"  # ended because the harness stopped it
    UNKNOWN = "unknown"  # not under the harness's control (external), or not read yet

    @property
    def up(self) -> bool:
        """Counted in ``running``: alive, or about to be again."""
        return self in (ReplicaState.RUNNING, ReplicaState.PAUSED, ReplicaState.RESTARTING,
                        ReplicaState.UNKNOWN)


class ReplicaStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One replica, as its runner last saw it."""

    replica: int
    state: ReplicaState
    exit_code: int | None = None  # of its last exit, None while it never ended
    restarts: int = 0
    oom_killed: bool = False


class RunnerStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One pipeline's replicas at one moment: what ``poll``, ``apoll`` and ``status`` return."""

    name: str
    replicas: tuple[ReplicaStatus, ...] = ()
    restarts: int = 0  # restarts of all replicas, by the harness or the engine
    oom_killed: bool = False  # any replica killed for memory
    exit_code: int | None = None  # of the first replica that ended on its own (None: none did)
    exited: int = 0  # early exits seen so far (each replica's each ending on its own)
    dropped: dict[str, int] = {}  # engine errors the runner dropped, by kind (docker)

    @property
    def running(self) -> int:
        """Replicas up, or being started again."""
        return sum(1 for r in self.replicas if r.state.up)

    def to_summary(self) -> dict[str, Any]:
        """summary.json's ``pipelines.<name>.container`` entry (its keys exactly)."""
        return {"restarts": self.restarts, "oom_killed": self.oom_killed, "exit_code": self.exit_code}


class Resources(msgspec.Struct, frozen=True, kw_only=True):
    """CPU % (100 = one core) and resident memory of a pipeline's replicas, summed."""

    cpu_percent: float
    memory_mib: float

    def to_dict(self) -> dict[str, float]:
        """The live frame's ``resources`` entry."""
        return {"cpu_percent": self.cpu_percent, "memory_mib": self.memory_mib}


@runtime_checkable
class Runner(Protocol):
    """One pipeline's replicas, however they run. The run calls all of it without probing."""

    name: str
    incidents: IncidentLog | None  # the run's incident log, set by the run before start()

    @property
    def ready_timeout(self) -> float:
        """How long the run should wait for this pipeline's readiness reply (0: the default)."""
        ...

    @property
    def running(self) -> int:
        """Replicas up, or being started again by a restart policy."""
        ...

    async def start(self) -> None:
        """Start every replica; PipelineError when it cannot be started at all."""
        ...

    async def supervise(self) -> None:
        """Watch the replicas until the run ends (restarts, exits); a no-op if nothing to watch."""
        ...

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop every replica, forcefully after ``timeout`` seconds, and release what it holds."""
        ...

    async def kill(self, replica: int | None = None) -> None:
        """Kill a replica (all when None) as a crash would: the restart policy applies."""
        ...

    def kill_now(self) -> None:
        """Kill every replica at once, with no restart (a second Ctrl+C); never blocks long."""
        ...

    async def pause(self, replica: int | None = None) -> None:
        """Freeze replicas (all when None): alive, answering nothing."""
        ...

    async def resume(self, replica: int | None = None) -> None:
        """Unfreeze what :meth:`pause` froze."""
        ...

    def degrade_network(self, delay: Any, loss: float) -> None:
        """Delay and/or drop the replicas' packets (RunError where the runtime cannot)."""
        ...

    def restore_network(self) -> None:
        """Undo :meth:`degrade_network` (a no-op when nothing was degraded)."""
        ...

    def poll(self) -> RunnerStatus:
        """Read the replicas' state now (noticing and logging early exits)."""
        ...

    async def apoll(self) -> RunnerStatus:
        """:meth:`poll` without blocking the event loop."""
        ...

    def status(self) -> RunnerStatus:
        """The last state read, without reading again."""
        ...

    def stats(self) -> Resources | None:
        """The latest CPU and memory figures (None when unknown)."""
        ...

    def log_path(self, replica: int) -> Path:
        """Where the replica's output goes in the run folder."""
        ...

    def last_lines(self, replica: int = 0, count: int = 10) -> str:
        """The replica's last output lines ("" when the harness has none)."""
        ...
