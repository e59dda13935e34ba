"""``ppipe tail``: watch a run from another terminal, or another host.

Owns following a run two ways: a run folder (``summary.json``, rewritten every
second while the run goes, read as a :class:`~ppipe_stream.results.model.Summary`
until it says ``complete``), or the run's
scores topic on its broker (``--bootstrap`` and ``--run``: each message is a
live-view frame, read from the latest one) until the run is done. A run that
is not there is a one-line UsageError, unless ``wait`` says to wait for it; a secured cluster's login is read from
the same ``PPIPE_SECURITY_*`` variables a pipeline is given (docs/security.md). Draws with :mod:`ppipe_stream.view.live`:
redrawn in a terminal, plain lines otherwise. Ctrl+C stops watching, never the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
from rich.console import Console
from rich.live import Live

from ..errors import UsageError
from .live import Frame, Trends, frame_from_summary, render
from ..results.model import read_summary_bytes, to_builtins
from ..security import ClientSecurity, describe_failure

__all__ = ["tail_folder", "tail_topic"]

_FINAL_STATES = {"done", "interrupted"}
QUIET_S = 30.0
TLS_CLOSE_S = 0.2


def _show(frames: Iterator[Frame], console: Console) -> Frame | None:
    trends = Trends()
    last: Frame | None = None
    if console.is_terminal:
        with Live(console=console, refresh_per_second=4) as live:
            for frame in frames:
                trends.add(frame)
                live.update(render(frame, trends))
                last = frame
        return last
    shown = 0.0
    for frame in frames:
        last = frame
        if time.monotonic() - shown >= 5:
            shown = time.monotonic()
            console.print(f"{frame.run_id} {frame.state} {frame.elapsed_s:.0f}s sent {frame.events_sent}")
    if last is not None:
        console.print(render(last))
    return last


STARTING_S = 120.0  # how long a folder the run has made (scenario.toml) may lack its summary


def tail_folder(folder: Path, *, console: Console, poll_s: float = 1.0, wait: bool = False,
                stop: Callable[[], bool] = lambda: False) -> Frame | None:
    """Follow ``folder/summary.json`` until the run is complete (or stopped). A folder
    that is not a run's is a UsageError at once, unless ``wait``: then it is waited for."""
    path = folder / "summary.json"
    if not wait and not path.exists():
        if not folder.exists():
            raise UsageError(f"{folder}: no such run (`ppipe runs` lists them; --wait waits for it)")
        if not (folder / "scenario.toml").exists():
            raise UsageError(f"{folder}: not a run folder (no summary.json; --wait waits for one)")

    def frames() -> Iterator[Frame]:
        deadline = None if wait else time.monotonic() + STARTING_S  # a run just starting
        while not path.exists():
            if deadline is not None and time.monotonic() > deadline:
                raise UsageError(f"{folder}: the run wrote no summary.json in {STARTING_S:.0f} s")
            time.sleep(poll_s / 4)
        while True:
            try:
                summary = read_summary_bytes(path.read_bytes())
            except msgspec.ValidationError as exc:  # JSON, but not a summary: waiting will not help
                raise UsageError(f"{path}: not a run's summary: {exc}") from None
            except (OSError, msgspec.DecodeError):
                time.sleep(poll_s / 4)  # caught mid-replace: read again
                continue
            frame = frame_from_summary(to_builtins(summary))  # the live view reads plain data
            yield frame
            if summary.complete or summary.interrupted or summary.error or stop():
                return
            time.sleep(poll_s)

    return _show(frames(), console)


def tail_topic(bootstrap: str, run_id: str, *, console: Console, timeout_s: float = 3600,
               security: ClientSecurity | None = None, wait: bool = False) -> Frame | None:
    """Follow the run's scores topic (``ppipe.<run_id>.scores``) from its latest frame until
    the run is done. No such topic is a UsageError, unless ``wait``: then it is waited for.
    ``security`` defaults to what ``PPIPE_SECURITY_*`` in the environment say."""
    security = security or ClientSecurity.from_env()
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    topic = f"ppipe.{run_id}.scores"
    queue: list[Frame] = []

    async def consume() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    request_timeout_ms=10_000, **security.kafka_kwargs())
        try:
            await consumer.start()
        except (KafkaError, OSError) as exc:
            await consumer.stop()
            why = await describe_failure(bootstrap, security) or exc
            raise UsageError(f"cannot reach the broker at {bootstrap} ({security.describe()}): "
                             f"{why}") from None
        try:
            await _find_topic(consumer, topic, wait=wait, timeout_s=timeout_s,
                              missing=f"no run {run_id!r} on {bootstrap}: its scores topic {topic} "
                                      "does not exist (--wait waits for it)")
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            latest = (await consumer.end_offsets([partition]))[partition]
            consumer.seek(partition, max(latest - 1, 0))  # the latest frame, not the run's first
            end = time.monotonic() + timeout_s
            last_frame = time.monotonic()
            while time.monotonic() < end:
                if time.monotonic() - last_frame > QUIET_S:
                    return  # the run publishes every second: it is gone
                batches = await consumer.getmany(timeout_ms=500)
                if batches:
                    last_frame = time.monotonic()
                for records in batches.values():
                    for record in records:
                        try:
                            queue.append(msgspec.json.decode(record.value, type=Frame))
                        except msgspec.DecodeError:
                            continue
                if queue and queue[-1].state in _FINAL_STATES:
                    return
                yield_point.set()
                await asyncio.sleep(0)
        finally:
            await consumer.stop()

    yield_point = asyncio.Event()

    def frames() -> Iterator[Frame]:
        loop = asyncio.new_event_loop()
        task = loop.create_task(consume())
        try:
            shown = 0
            while not task.done():
                loop.run_until_complete(asyncio.wait([task], timeout=0.5))
                while shown < len(queue):
                    shown += 1
                    yield queue[shown - 1]
            task.result()
            while shown < len(queue):
                shown += 1
                yield queue[shown - 1]
        finally:
            if not task.done():
                task.cancel()
                loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            if security.tls:  # let the TLS connections' close handshakes finish first
                loop.run_until_complete(asyncio.sleep(TLS_CLOSE_S))
            loop.close()

    return _show(frames(), console)


async def _find_topic(consumer, topic: str, *, wait: bool, timeout_s: float, missing: str) -> None:
    """Return once ``topic`` is in the cluster's metadata; UsageError(``missing``) unless ``wait``.
    (Asking for all topics' metadata never auto-creates one, unlike assigning it.)"""
    end = time.monotonic() + timeout_s
    while topic not in await consumer.topics():
        if not wait or time.monotonic() > end:
            raise UsageError(missing)
        await asyncio.sleep(1.0)
