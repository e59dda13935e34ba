"""Judging replies to proctor commands, as P-Pipe's judge does.

Owns comparing a pipeline's ``reply`` with what the harness knows: the rows it
sent (``validate``), the labels (``batch_predict``), an expected value computed
from each row (``feature``), or just a valid reply in time (``retrain``,
``ping``). Each judgement ends in one status with a message naming what was
matched, missing, extra or mismatched. Numbers compare with the scenario's
tolerance (``|a-b| <= atol + rtol*|b|``); rows are compared key by key, both ways.
Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any, TypedDict

import msgspec

from .. import protocol

__all__ = ["CommandStatus", "Judgement", "judge", "values_match"]


class CommandStatus(enum.StrEnum):
    """How one command ended, for one pipeline."""

    CORRECT = "correct"
    PARTIAL_CORRECT = "partial_correct"
    INCORRECT = "incorrect"
    SYNTAX_ERROR = "syntax_error"
    DEADLINE_EXCEEDED = "deadline_exceeded"


class Judgement(msgspec.Struct, kw_only=True):
    """One command's verdict for one pipeline."""

    command_id: str
    command: str
    pipeline: str
    status: CommandStatus
    message: str
    latency_ms: float | None = None
    matched: int = 0
    missing: int = 0
    extra: int = 0
    mismatched: int = 0


def values_match(got: Any, want: Any, *, rtol: float, atol: float) -> bool:
    """Equal, with numbers within the tolerance (bools and text compared exactly)."""
    if isinstance(want, bool) or isinstance(got, bool) or not isinstance(want, (int, float)):
        return got == want
    if not isinstance(got, (int, float)):
        return False
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    return abs(got - want) <= atol + rtol * abs(want)


def _rows_match(got: Any, want: Mapping[str, Any], *, rtol: float, atol: float) -> bool:
    if not isinstance(got, Mapping) or set(got) != set(want):
        return False
    return all(values_match(got[k], want[k], rtol=rtol, atol=atol) for k in want)


def _by_id(result: Any, value_key: str) -> dict[int, Any] | None:
    """Accept ``{"<id>": value}`` or ``[{"id": .., value_key: ..}]``; None if neither."""
    out: dict[int, Any] = {}
    if isinstance(result, Mapping):
        for key, value in result.items():
            try:
                out[int(key)] = value
            except (TypeError, ValueError):
                return None
        return out
    if isinstance(result, list):
        for item in result:
            if not isinstance(item, Mapping) or "id" not in item or value_key not in item:
                return None
            try:
                out[int(item["id"])] = item[value_key]
            except (TypeError, ValueError):
                return None
        return out
    return None


class _Counts(TypedDict):
    matched: int
    missing: int
    extra: int
    mismatched: int


def _compare(expected: dict[int, Any], got: dict[int, Any], same) -> tuple[CommandStatus, _Counts, str]:
    matched = [i for i in expected if i in got and same(got[i], expected[i])]
    mismatched = [i for i in expected if i in got and not same(got[i], expected[i])]
    missing = [i for i in expected if i not in got]
    extra = [i for i in got if i not in expected]
    counts: _Counts = {"matched": len(matched), "missing": len(missing), "extra": len(extra),
                       "mismatched": len(mismatched)}
    if len(matched) == len(expected) and not extra:
        status = CommandStatus.CORRECT
    elif matched:
        status = CommandStatus.PARTIAL_CORRECT
    else:
        status = CommandStatus.INCORRECT
    parts = [f"{len(matched)}/{len(expected)} matched"]
    for name, ids in (("missing", missing), ("mismatched", mismatched), ("extra", extra)):
        if ids:
            shown = ", ".join(str(i) for i in sorted(ids)[:5]) + (", ..." if len(ids) > 5 else "")
            parts.append(f"{len(ids)} {name} (ids {shown})")
    return status, counts, "; ".join(parts)


def judge(command: protocol.Command, pipeline: str, reply: protocol.Reply | None,
          reply_ns: int | None, *, sent_ns: int, expected: dict[int, Any], rtol: float,
          atol: float, task: str = "classification") -> Judgement:
    """The verdict on ``reply`` (None: no reply by the end) to ``command``.

    ``expected`` holds, by id: the sent rows (validate), the labels
    (batch_predict), or the expected feature values (feature); empty otherwise.
    """
    base: dict[str, Any] = {"command_id": command.command_id, "command": command.command, "pipeline": pipeline}
    if reply is None or reply_ns is None:
        return Judgement(**base, status=CommandStatus.DEADLINE_EXCEEDED, message="no reply")
    latency_ms = round((reply_ns - sent_ns) / 1e6, 3)
    if reply_ns > command.deadline_ns:
        late = (reply_ns - command.deadline_ns) / 1e6
        return Judgement(**base, status=CommandStatus.DEADLINE_EXCEEDED, latency_ms=latency_ms,
                         message=f"replied {late:.1f} ms after the deadline")
    if reply.status == "error":
        return Judgement(**base, status=CommandStatus.INCORRECT, latency_ms=latency_ms,
                         message=f"the pipeline reported an error: {str(reply.result)[:200]}")
    name = command.command
    if name in ("ping", "retrain"):
        return Judgement(**base, status=CommandStatus.CORRECT, latency_ms=latency_ms,
                         message="valid reply in time")
    value_key = {"validate": "features", "batch_predict": "prediction", "feature": "value"}[name]
    got = _by_id(reply.result, value_key)
    if got is None:
        return Judgement(**base, status=CommandStatus.SYNTAX_ERROR, latency_ms=latency_ms,
                         message=f"result is not {{id: {value_key}}} nor [{{id, {value_key}}}]")
    if name == "validate":
        def same(a: Any, b: Any) -> bool:
            return _rows_match(a, b, rtol=rtol, atol=atol)
    elif name == "batch_predict" and task == "classification":
        def same(a: Any, b: Any) -> bool:
            return a == b
    else:
        def same(a: Any, b: Any) -> bool:
            return values_match(a, b, rtol=rtol, atol=atol)
    status, counts, message = _compare(expected, got, same)
    if name == "batch_predict":  # scored like events: answered = compliance, matched = accuracy
        answered = counts["matched"] + counts["mismatched"]
        status = (CommandStatus.CORRECT if answered == len(expected) and not counts["extra"]
                  else CommandStatus.PARTIAL_CORRECT if answered else CommandStatus.INCORRECT)
        accuracy = counts["matched"] / len(expected) if expected else 0.0
        message = f"{answered}/{len(expected)} rows answered, accuracy {accuracy:.3f}; " + message
    return Judgement(**base, status=status, latency_ms=latency_ms, message=message, **counts)
