"""CPU and memory of local processes, sampled with psutil: a process pipeline's
replicas with all their children, the harness itself, and the run's own broker.

Owns turning a set of root pids into one figure, ``cpu_percent`` (100 = one
core, summed over the tree) and ``memory_mib`` (resident, summed), sampled at
most every ``every_s`` so that a caller reading it every tick costs nothing.
A process that ends between two samples is left out of the next one, never
raised. Containers are measured by the Docker runtime, not here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import psutil

__all__ = ["TreeSampler"]


class TreeSampler:
    """CPU % and RSS of the processes rooted at ``roots()`` (children included)."""

    def __init__(self, roots: Callable[[], Iterable[int]], *, children: bool = True,
                 every_s: float = 1.0) -> None:
        self._roots = roots
        self._children = children
        self._every_s = every_s
        self._known: dict[int, psutil.Process] = {}  # cpu_percent needs the same object
        self._last: dict[str, float] | None = None
        self._at = 0.0

    def sample(self) -> dict[str, float] | None:
        """The latest figures (None until a process is known)."""
        now = time.monotonic()
        if self._last is not None and now - self._at < self._every_s:
            return self._last
        self._at = now
        cpu = memory = 0.0
        seen: dict[int, psutil.Process] = {}
        for pid in self._roots():
            for process in self._tree(pid):
                known = self._known.get(process.pid, process)
                try:
                    with known.oneshot():
                        cpu += known.cpu_percent(interval=None)
                        memory += known.memory_info().rss
                except psutil.Error:  # ended or out of reach: it no longer counts
                    continue
                seen[process.pid] = known
        self._known = seen
        self._last = ({"cpu_percent": round(cpu, 1), "memory_mib": round(memory / 2**20, 1)}
                      if seen else None)
        return self._last

    def _tree(self, pid: int) -> list[psutil.Process]:
        try:
            root = self._known.get(pid) or psutil.Process(pid)
            return [root, *(root.children(recursive=True) if self._children else [])]
        except psutil.Error:
            return []
