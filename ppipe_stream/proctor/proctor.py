"""The proctor: sends ``[[commands]]`` on the control topic and judges the replies.

Owns, during a run: a bounded sample of the rows already sent (fed by the
dispatcher), building each command (ids drawn from what was sent, from the
seed), sending it with its deadline, matching replies by ``command_id`` (the
first reply of each pipeline counts; replicas' later ones are ignored), and
the judgements, written to ``commands.jsonl`` in the run folder. The verdicts
themselves are :func:`judge`'s.
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec
import structlog

from .. import protocol
from ..scenario.model import CommandSpec
from .expressions import compile_expression
from .judge import CommandStatus, Judgement, judge
from .timing import command_plan

__all__ = ["Proctor"]

log = structlog.get_logger(__name__)

_KEEP_ROWS = 20_000


class _Pending(msgspec.Struct):
    command: protocol.Command
    spec: CommandSpec
    sent_ns: int
    expected: dict[int, Any]
    targets: list[str]


class Proctor:
    """Start with ``tg.start_soon(proctor.run, producer, clock)``; feed it with
    :meth:`on_rows` and :meth:`collect`; end with :meth:`finish`."""

    def __init__(self, specs: Sequence[CommandSpec], *, topic: str, pipelines: Sequence[str],
                 seed: int, duration_s: float, rtol: float, atol: float, task: str,
                 out: Path) -> None:
        self._specs = list(specs)
        self._topic = topic
        self._pipelines = list(pipelines)
        self._plan = command_plan(self._specs, duration_s=duration_s, seed=seed)
        self._rng = random.Random(f"{seed}:proctor")
        self._rows: collections.deque[tuple[int, dict[str, Any], Any]] = collections.deque(maxlen=_KEEP_ROWS)
        self._pending: dict[str, _Pending] = {}
        self._answered: set[tuple[str, str]] = set()
        self._rtol, self._atol, self._task = rtol, atol, task
        self._expressions = {i: compile_expression(s.expression) for i, s in enumerate(self._specs)
                             if s.expression}
        self._out = out
        self._seen_replies = 0
        self.judgements: list[Judgement] = []
        self.sent = 0

    @property
    def planned(self) -> int:
        return len(self._plan)

    def on_rows(self, ids: Sequence[int], features: Sequence[dict[str, Any]], labels: Sequence[Any]) -> None:
        """The dispatcher sent these rows (kept, bounded, to draw commands from)."""
        self._rows.extend(zip(ids, features, labels, strict=True))

    async def run(self, producer, clock: tuple[int, int]) -> None:
        """Send each planned command at its time (offset from the run's start)."""
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
        rows = self._rng.sample(list(self._rows), min(spec.sample, len(self._rows))) if self._rows else []
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

    def collect(self, replies: Sequence[tuple[str, protocol.Reply, int]]) -> None:
        """Judge the replies that arrived since the last call."""
        for pipeline, reply, read_ns in replies[self._seen_replies:]:
            pending = self._pending.get(reply.command_id)
            key = (reply.command_id, pipeline)
            if pending is None or pipeline not in pending.targets or key in self._answered:
                continue
            self._answered.add(key)
            self._record(judge(pending.command, pipeline, reply, read_ns, sent_ns=pending.sent_ns,
                               expected=pending.expected, rtol=self._rtol, atol=self._atol,
                               task=self._task))
        self._seen_replies = len(replies)

    def settled(self) -> bool:
        """Every planned command was sent and every target has answered it."""
        if self.sent < len(self._plan):
            return False
        return all((cid, p) in self._answered for cid, pending in self._pending.items()
                   for p in pending.targets)

    def finish(self) -> None:
        """Every command a pipeline never answered is ``deadline_exceeded``."""
        for command_id, pending in self._pending.items():
            for pipeline in pending.targets:
                if (command_id, pipeline) not in self._answered:
                    self._answered.add((command_id, pipeline))
                    self._record(judge(pending.command, pipeline, None, None,
                                       sent_ns=pending.sent_ns, expected=pending.expected,
                                       rtol=self._rtol, atol=self._atol, task=self._task))

    def _record(self, judgement: Judgement) -> None:
        self.judgements.append(judgement)
        with open(self._out, "ab") as fh:
            fh.write(msgspec.json.encode(judgement) + b"\n")
        log.info("command.judged", command_id=judgement.command_id, pipeline=judgement.pipeline,
                 status=str(judgement.status), message=judgement.message)

    def summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """{pipeline: {command: {status: count}}} (results.md's ``commands``)."""
        out: dict[str, dict[str, dict[str, int]]] = {p: {} for p in self._pipelines}
        for spec in self._specs:
            for pipeline in ([spec.pipeline] if spec.pipeline else self._pipelines):
                out.setdefault(pipeline, {}).setdefault(spec.command, dict.fromkeys(map(str, CommandStatus), 0))
        for j in self.judgements:
            out[j.pipeline][j.command][str(j.status)] += 1
        return out
