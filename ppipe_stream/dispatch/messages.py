"""The messages between the run's process and its dispatch workers, and their wire form.

Owns the pipe's vocabulary as tagged, frozen msgspec Structs (one ``tag`` each)
and its encoding (msgpack, one message per ``send_bytes``). The run's process
sends :class:`Go` and :class:`Stop`; a worker sends :class:`Ready`, then
:class:`Sent` records and :class:`Stats` figures as it goes, and :class:`Done`
at its end, or one :class:`Failed` line. Id and stamp columns travel as the
raw bytes of int64 arrays (:func:`column`, :func:`array`).

It does not open pipes or processes (that is :mod:`.workers`).
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from .base import DispatchFigures

__all__ = ["Done", "Failed", "Go", "Ready", "Sent", "Stats", "Stop", "ToMain", "ToWorker",
           "array", "column", "decode_to_main", "decode_to_worker", "encode"]


class Ready(msgspec.Struct, frozen=True, tag="ready"):
    """A worker has its dataset, schedule and producer, and waits for :class:`Go`."""

    pid: int


class Go(msgspec.Struct, frozen=True, tag="go"):
    """Start: offset 0 of the schedule is this wall-clock ns."""

    wall0_ns: int


class Stop(msgspec.Struct, frozen=True, tag="stop"):
    """Stop now; no final report."""


class Sent(msgspec.Struct, frozen=True, tag="sent"):
    """What a worker sent since its last :class:`Sent`, and how far along the
    schedule it has come (every id below ``covered`` is sent or not its own)."""

    covered: int
    ids: bytes  # int64 columns, see column()
    intended: bytes
    sent: bytes
    labels: list[Any]
    features: list[Any] | None  # with the proctor's rows only


class Stats(msgspec.Struct, frozen=True, tag="stats"):
    """A worker's cumulative figures while it runs, and its loop lateness histogram."""

    figures: DispatchFigures
    loop_us: bytes


class Done(msgspec.Struct, frozen=True, tag="done"):
    """A worker's final figures: it has sent all it will."""

    figures: DispatchFigures
    loop_us: bytes


class Failed(msgspec.Struct, frozen=True, tag="error"):
    """A worker raised: one line, ``Type: message``."""

    message: str


ToWorker = Go | Stop
ToMain = Ready | Sent | Stats | Done | Failed

encode = msgspec.msgpack.Encoder().encode
decode_to_worker = msgspec.msgpack.Decoder(ToWorker).decode
decode_to_main = msgspec.msgpack.Decoder(ToMain).decode


def column(values: list[int]) -> bytes:
    """A column of ints as the raw bytes of an int64 array."""
    return np.asarray(values, dtype=np.int64).tobytes()


def array(raw: bytes) -> np.ndarray:
    """A column back as a (read-only) int64 array."""
    return np.frombuffer(raw, dtype=np.int64)
