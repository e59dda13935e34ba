"""Cleanup steps of a run: each one shielded from cancellation and bounded in time.

Owns :class:`Shield`, what the run's AsyncExitStack pushes its callbacks
through: an async stop (:meth:`Shield.call`) or a blocking one in a thread
(:meth:`Shield.in_thread`), each under a shielded cancel scope with a timeout,
so Ctrl+C, SIGTERM or a crash still stop everything. After a second Ctrl+C
(:attr:`~ppipe_stream.run.tracker.RunTracker.hard_stop`) the timeouts shrink and
a thread is abandoned; the clean stops already under way are cut short
(:meth:`Shield.cut_short`). It decides nothing about what is stopped, or in what order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from .tracker import RunTracker

__all__ = ["Shield"]


class Shield:
    """Shielded, time-bound cleanup calls; shorter once the tracker says stop hard."""

    def __init__(self, tracker: RunTracker) -> None:
        self._tracker = tracker
        self._under_way: set[anyio.CancelScope] = set()  # the clean stops awaited now

    async def call(self, fn: Callable[[], Awaitable[object]], timeout: float = 10.0) -> None:
        """Await ``fn()``, shielded, for ``timeout`` s (half a second after a second Ctrl+C)."""
        with anyio.CancelScope(shield=True) as scope, \
                anyio.move_on_after(0.5 if self._tracker.hard_stop else timeout):
            self._under_way.add(scope)
            try:
                await fn()
            finally:
                self._under_way.discard(scope)

    def cut_short(self) -> None:
        """A second Ctrl+C during the cleanup: the clean stops under way wait no longer."""
        for scope in list(self._under_way):
            scope.cancel()

    async def in_thread(self, fn: Callable[[], object], timeout: float = 15.0,
                        hard_timeout: float = 2.0) -> None:
        """``fn`` in a thread, shielded; after a second Ctrl+C it gets ``hard_timeout``."""
        hard = self._tracker.hard_stop
        with anyio.CancelScope(shield=True), anyio.move_on_after(hard_timeout if hard else timeout):
            await anyio.to_thread.run_sync(fn, abandon_on_cancel=hard)
