"""Pipeline runtimes: how a pipeline named in a scenario is started and stopped.

``base.py`` holds the :class:`~.base.Runner` Protocol that every runtime
implements in full, and the snapshots it returns (``RunnerStatus``,
``Resources``). The runtimes: ``process.py`` (local processes), ``docker.py``
(sandboxed containers, with ``engine.py`` for the engine's connection, states
and errors, ``sandbox.py`` for their network and broker and ``images.py`` for
base images made offline) and ``external.py`` (started by the user). The
Docker modules import the Docker SDK only when used.
"""

from typing import TYPE_CHECKING

from .base import ReplicaState, ReplicaStatus, Resources, Runner, RunnerStatus
from .external import ExternalRunner
from .process import ProcessRunner, ReplicaExit, resolve_command

if TYPE_CHECKING:  # mypy proves each runtime is a Runner
    from .docker import DockerRunner

    def _runners(process: ProcessRunner, docker: DockerRunner, external: ExternalRunner) -> list[Runner]:
        return [process, docker, external]

__all__ = ["ExternalRunner", "ProcessRunner", "ReplicaExit", "ReplicaState", "ReplicaStatus",
           "Resources", "Runner", "RunnerStatus", "resolve_command"]
