"""Pipeline runtimes: how a pipeline named in a scenario is started and stopped.

``process.py`` (local processes), ``docker.py`` (sandboxed containers, with
``sandbox.py`` for their network and broker and ``images.py`` for base images
made offline) and ``external.py`` (started by the user). Every runner offers
``start()``, ``apoll()``, ``running``, ``stats()``, ``stop()``, ``status()`` and
``last_lines()``. The Docker modules import the Docker SDK only when used.
"""

from .external import ExternalRunner
from .process import ProcessRunner, ReplicaExit, resolve_command

__all__ = ["ExternalRunner", "ProcessRunner", "ReplicaExit", "resolve_command"]
