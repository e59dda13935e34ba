"""Pipeline runtimes: how a pipeline named in a scenario is started and stopped.

``process`` (local processes) lives in ``process.py``; every runtime offers
``start()``, ``poll()``, ``stop()``, ``status()`` and ``last_lines()``.
"""

from .process import ProcessRunner, ReplicaExit, resolve_command

__all__ = ["ProcessRunner", "ReplicaExit", "resolve_command"]
