"""The proctor's inbox: how replies read by the scorer reach the proctor's judge.

Owns :class:`ReplyInbox`, the :class:`~ppipe_stream.scoring.scorer.ReplySink`
the scorer hands every reply to, and the bounded anyio memory object stream
behind it that the proctor's judging task reads.

Backpressure. The inbox is called on the output reader's path, which must never
wait for a slow consumer, so it only ever uses ``send_nowait``. It lets through
only a reply that can be judged: the first reply of a pipeline to a command
that was sent to it (:meth:`Expecting.expects`). Every other reply (a replica's
later one, one to an unknown or unsent command, a readiness ping's late one) is
counted in :attr:`ReplyInbox.ignored` and not queued, as the proctor ignored
them before. The stream's buffer is sized from the scenario's plan: planned
commands x pipelines, the most replies a run can ever judge. So the buffer can
hold every judged reply of the run at once: ``send_nowait`` never finds it full,
the reader never waits, and no judged reply is dropped (were it full all the
same, the reply would be judged on the spot rather than lost).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..scoring.scorer import ReplyRecord

__all__ = ["Expecting", "ReplyInbox"]


class Expecting(Protocol):
    """What the inbox asks the proctor."""

    def expects(self, command_id: str, pipeline: str) -> bool:
        """``command_id`` was sent to ``pipeline`` (a reply from it can be judged)."""
        ...


class ReplyInbox:
    """The gate and the stream between the scorer and the proctor's judge."""

    def __init__(self, proctor: Expecting, *, bound: int,
                 overflow: Callable[[ReplyRecord], None]) -> None:
        self.bound = max(1, bound)
        send, receive = anyio.create_memory_object_stream[ReplyRecord](self.bound)
        self._send: MemoryObjectSendStream[ReplyRecord] = send
        self.receive: MemoryObjectReceiveStream[ReplyRecord] = receive
        self._proctor = proctor
        self._overflow = overflow  # judges a reply at once (cannot happen: see the module docstring)
        self._offered: set[tuple[str, str]] = set()
        self.accepted = 0
        self.ignored = 0

    def offer(self, record: ReplyRecord) -> None:
        """Queue ``record`` when it can be judged (the first per command and pipeline)."""
        key = (record.reply.command_id, record.pipeline)
        if key in self._offered or not self._proctor.expects(*key):
            self.ignored += 1
            return
        self._offered.add(key)
        self.accepted += 1
        try:
            self._send.send_nowait(record)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._overflow(record)

    def take_all(self) -> list[ReplyRecord]:
        """What is queued now, taken without waiting (the end of a run)."""
        taken: list[ReplyRecord] = []
        while True:
            try:
                taken.append(self.receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return taken

    def close(self) -> None:
        self._send.close()
        self.receive.close()
