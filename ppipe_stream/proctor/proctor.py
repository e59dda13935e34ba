"""The proctor: sends ``[[commands]]`` on the control topic and judges the replies.

Owns, during a run: a bounded sample of the rows already sent (fed by the
dispatcher), building each command (ids drawn from what was sent at least
``grace`` before the command goes, from the seed: a row sent a moment before
is still on its way to the pipeline, and asking for it would judge the
harness's timing, not the pipeline), sending it with its deadline, matching replies by ``command_id`` (the
first reply of each pipeline counts; replicas' later ones are ignored), and
the judgements, written to ``commands.jsonl`` in the run folder, and their
typed snapshot (:meth:`Proctor.statistics`). Replies come through
:attr:`Proctor.inbox` (:mod:`.inbox`: a bounded memory object stream, sized
from the plan) and are judged by a task of :meth:`Proctor.run` as they arrive.
The verdicts themselves are :func:`judge`'s.
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio
import msgspec
import structlog

from .. import protocol
from ..results.model import CommandCounts
from ..scenario.model import CommandSpec
from ..scoring.scorer import ReplyRecord
from .expressions import compile_expression
from .inbox import ReplyInbox
from .judge import CommandStatus, Judgement, judge
from .timing import command_plan

__all__ = ["CommandSender", "Proctor", "ProctorStatistics"]

log = structlog.get_logger(__name__)

_KEEP_ROWS = 20_000


class CommandSender(Protocol):
    """What the proctor sends commands with (an ``AIOKafkaProducer``)."""

    async def send_and_wait(self, topic: str, value: bytes) -> Any:
        ...


class ProctorStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A typed snapshot of the proctor (what the results builder reads)."""

    commands: dict[str, dict[str, CommandCounts]]  # {pipeline: {command: counts}}
    planned: int
    sent: int
    judged: int
    replies_ignored: int  # not judged: later replies, unknown or unsent commands


class _Pending(msgspec.Struct):
    command: protocol.Command
    spec: CommandSpec
    sent_ns: int
    expected: dict[int, Any]
    targets: list[str]


class Proctor:
    """Start with ``tg.start_soon(proctor.run, producer, clock)``; feed it with
    :meth:`on_rows` and (the scorer) :attr:`inbox`; end with :meth:`finish`."""

    def __init__(self, specs: Sequence[CommandSpec], *, topic: str, pipelines: Sequence[str],
                 seed: int, duration_s: float, rtol: float, atol: float, task: str,
                 out: Path, grace_ns: int = 0,
                 clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self._specs = list(specs)
        self._topic = topic
        self._pipelines = list(pipelines)
        self._plan = command_plan(self._specs, duration_s=duration_s, seed=seed)
        self._rng = random.Random(f"{seed}:proctor")
        # (sent at, by ``clock``; id; features; label), in send order
        self._rows: collections.deque[tuple[int, int, dict[str, Any], Any]] = collections.deque(maxlen=_KEEP_ROWS)
        self._grace_ns = grace_ns
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._answered: set[tuple[str, str]] = set()
        self._rtol, self._atol, self._task = rtol, atol, task
        self._expressions = {i: compile_expression(s.expression) for i, s in enumerate(self._specs)
                             if s.expression}
        self._out = out
        self.judgements: list[Judgement] = []
        self.sent = 0
        # each planned command is judged once per target: the most replies a run can judge
        self.inbox = ReplyInbox(self, bound=len(self._plan) * max(1, len(self._pipelines)),
                                overflow=self._judge)

    @property
    def planned(self) -> int:
        return len(self._plan)

    def on_rows(self, ids: Sequence[int], features: Sequence[dict[str, Any]], labels: Sequence[Any]) -> None:
        """The dispatcher sent these rows (kept, bounded, to draw commands from)."""
        now = self._clock()
        self._rows.extend((now, i, f, y) for i, f, y in zip(ids, features, labels, strict=True))

    def expects(self, command_id: str, pipeline: str) -> bool:
        """``command_id`` was sent to ``pipeline`` and is not judged for it yet."""
        pending = self._pending.get(command_id)
        return (pending is not None and pipeline in pending.targets
                and (command_id, pipeline) not in self._answered)

    async def run(self, producer: CommandSender, clock: tuple[int, int]) -> None:
        """Send each planned command at its time (offset from the run's start) and
        judge the replies as they come through the inbox (until cancelled)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._judge_replies)
            await self._send_plan(producer, clock)

    async def _judge_replies(self) -> None:
        async for record in self.inbox.receive:
            self._judge(record)

    async def _send_plan(self, producer: CommandSender, clock: tuple[int, int]) -> None:
        start_wall, start_mono = clock
        for number, (offset_s, index) in enumerate(self._plan):
            wait = offset_s - (time.perf_counter_ns() - start_mono) / 1e9
            if wait > 0:
                await anyio.sleep(wait)
            spec = self._specs[index]
            command, expected = self._build(f"c{number}", spec, index)
            now = start_wall + (time.perf_counter_ns() - start_mono)
            command = msgspec.structs.replace(command, deadline_ns=now + spec.deadline.ns)
            targets = [spec.pipeline] if spec.pipeline else list(self._pipelines)
            self._pending[command.command_id] = _Pending(command, spec, now, expected, targets)
            await producer.send_and_wait(self._topic, protocol.encode(command))
            self.sent += 1
            log.info("command.sent", command_id=command.command_id, command=spec.command,
                     rows=len(expected), targets=targets)

    def _build(self, command_id: str, spec: CommandSpec, index: int) -> tuple[protocol.Command, dict[int, Any]]:
        pool = self._settled_rows()
        rows = self._rng.sample(pool, min(spec.sample, len(pool))) if pool else []
        args: dict[str, Any] = {}
        expected: dict[int, Any] = {}
        if spec.command == "validate":
            args["ids"] = [i for i, _, _ in rows]
            expected = {i: f for i, f, _ in rows}
        elif spec.command == "batch_predict":
            args["rows"] = [{"id": i, "features": f} for i, f, _ in rows]
            expected = {i: y for i, _, y in rows}
        elif spec.command == "feature":
            expression = self._expressions[index]
            args.update(name=spec.feature, ids=[])
            for i, f, _ in rows:
                try:
                    expected[i] = expression.evaluate(f)
                except ValueError:
                    continue  # a row the expression does not apply to is not asked for
                args["ids"].append(i)
        if spec.pipeline:
            args["pipeline"] = spec.pipeline
        return protocol.Command(command_id=command_id, command=spec.command, deadline_ns=0,
                                args=args), expected

    def _settled_rows(self) -> list[tuple[int, dict[str, Any], Any]]:
        """The rows sent at least ``grace`` ago (those an on-time pipeline holds); when
        none is that old yet (a command early in the run), every row sent so far."""
        cutoff = self._clock() - self._grace_ns
        settled = [(i, f, y) for at, i, f, y in self._rows if at <= cutoff]
        return settled or [(i, f, y) for _, i, f, y in self._rows]

    def _judge(self, record: ReplyRecord) -> None:
        """Judge one reply the inbox let through (the first of its pipeline to its command)."""
        pipeline, reply, read_ns = record
        pending = self._pending.get(reply.command_id)
        key = (reply.command_id, pipeline)
        if pending is None or pipeline not in pending.targets or key in self._answered:
            return
        self._answered.add(key)
        self._record(judge(pending.command, pipeline, reply, read_ns, sent_ns=pending.sent_ns,
                           expected=pending.expected, rtol=self._rtol, atol=self._atol,
                           task=self._task))

    def settled(self) -> bool:
        """Every planned command was sent and every target has answered it."""
        if self.sent < len(self._plan):
            return False
        return all((cid, p) in self._answered for cid, pending in self._pending.items()
                   for p in pending.targets)

    def finish(self) -> None:
        """Judge the replies still queued; then every command a pipeline never
        answered is ``deadline_exceeded``."""
        for record in self.inbox.take_all():
            self._judge(record)
        self.close()
        for command_id, pending in self._pending.items():
            for pipeline in pending.targets:
                if (command_id, pipeline) not in self._answered:
                    self._answered.add((command_id, pipeline))
                    self._record(judge(pending.command, pipeline, None, None,
                                       sent_ns=pending.sent_ns, expected=pending.expected,
                                       rtol=self._rtol, atol=self._atol, task=self._task))

    def close(self) -> None:
        """Close the inbox's stream (done by :meth:`finish`; a run that did not
        complete calls it at its end). A reply offered later is judged at once."""
        self.inbox.close()

    def _record(self, judgement: Judgement) -> None:
        self.judgements.append(judgement)
        with open(self._out, "ab") as fh:
            fh.write(msgspec.json.encode(judgement) + b"\n")
        log.info("command.judged", command_id=judgement.command_id, pipeline=judgement.pipeline,
                 status=str(judgement.status), message=judgement.message)

    def statistics(self) -> ProctorStatistics:
        """The commands' outcomes so far as a typed snapshot."""
        commands = {pipeline: {name: CommandCounts(**counts) for name, counts in by_command.items()}
                    for pipeline, by_command in self.summary().items()}
        return ProctorStatistics(commands=commands, planned=self.planned, sent=self.sent,
                                 judged=len(self.judgements), replies_ignored=self.inbox.ignored)

    def summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """{pipeline: {command: {status: count}}} (results.md's ``commands``)."""
        out: dict[str, dict[str, dict[str, int]]] = {p: {} for p in self._pipelines}
        for spec in self._specs:
            for pipeline in ([spec.pipeline] if spec.pipeline else self._pipelines):
                out.setdefault(pipeline, {}).setdefault(spec.command, dict.fromkeys(map(str, CommandStatus), 0))
        for j in self.judgements:
            out[j.pipeline][j.command][str(j.status)] += 1
        return out
