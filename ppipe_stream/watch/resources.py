"""CPU and memory of local processes, sampled with psutil: a process pipeline's
replicas with all their children, the harness itself, and the run's own broker.

Owns turning a set of root pids into one figure, ``cpu_percent`` (100 = one
core, summed over the tree) and ``memory_mib`` (resident, summed), sampled at
most every ``every_s`` so that a caller reading it every tick costs nothing.
A process that ends between two samples is left out of the next one, never
raised. Containers are measured by the Docker runtime, not here.

Finding a tree's children reads every process on the host (psutil's
``children()``: 3 ms with 70 of them, on the run's event loop, where it delays
the harness's own stamps), so the tree is looked up again only every
``rescan_s``; in between, the processes already known are sampled (a few
``/proc`` reads each). A child started meanwhile counts from the next lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import psutil

__all__ = ["TreeSampler"]


class TreeSampler:
    """CPU % and RSS of the processes rooted at ``roots()`` (children included)."""

    def __init__(self, roots: Callable[[], Iterable[int]], *, children: bool = True,
                 every_s: float = 1.0, rescan_s: float = 5.0) -> None:
        self._roots = roots
        self._children = children
        self._every_s = every_s
        self._rescan_s = rescan_s
        self._known: dict[int, psutil.Process] = {}  # cpu_percent needs the same object
        self._trees: dict[int, list[psutil.Process]] = {}  # root pid -> its processes, last lookup
        self._scanned = float("-inf")
        self._last: dict[str, float] | None = None
        self._at = 0.0

    def sample(self) -> dict[str, float] | None:
        """The latest figures (None until a process is known)."""
        now = time.monotonic()
        if self._last is not None and now - self._at < self._every_s:
            return self._last
        self._at = now
        roots = list(self._roots())
        if now - self._scanned >= self._rescan_s or any(pid not in self._trees for pid in roots):
            self._scanned = now
            self._trees = {pid: self._tree(pid) for pid in roots}
        cpu = memory = 0.0
        seen: dict[int, psutil.Process] = {}
        for pid in roots:
            for process in self._trees.get(pid, ()):
                known = self._known.get(process.pid, process)
                try:
                    with known.oneshot():
                        if known.status() == psutil.STATUS_ZOMBIE:  # ended, not reaped: reads 0 MiB
                            continue
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
