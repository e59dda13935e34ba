"""Thresholds: pass/fail rules on a run's figures (``[thresholds]`` in a scenario).

Owns parsing ``"latency.p99" = "< 100ms"`` into a :class:`Threshold` and
evaluating it against ``summary.json`` for every pipeline (dispatch figures
once). Figures: ``latency.<mean|p50|p90|p99|p999|max>`` (ms; a value may carry
``us``, ``ms`` or ``s``), any metric name (``accuracy``, ``f1``...),
``missing_ratio``, ``throughput`` (events/s), ``status.<name>`` (a count),
``<status>_ratio`` for any status, ``dispatch.lag.<p50|p99|max>`` (ms),
``dispatch.achieved_rate``. A value may end in ``%`` (divided by 100).
"""

from __future__ import annotations

import operator
import re
from typing import Any

import msgspec

__all__ = ["Threshold", "parse_threshold", "evaluate"]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}
_EXPR = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(us|ms|s|%)?\s*$")
_LATENCY = ("mean", "p50", "p90", "p99", "p999", "max")
_STATUSES = ("correct", "incorrect", "deadline_exceeded", "missing", "syntax_error", "duplicate",
             "unknown")


class Threshold(msgspec.Struct, frozen=True):
    """One rule: ``figure op value`` (value already in the figure's unit)."""

    figure: str
    op: str
    value: float
    text: str

    @property
    def dispatch(self) -> bool:
        return self.figure.startswith("dispatch.")

    def holds(self, actual: float) -> bool:
        return _OPS[self.op](actual, self.value)


def parse_threshold(key: str, expr: str) -> Threshold:
    """``key`` names a figure, ``expr`` is ``"<op> <number>[unit]"``; ValueError otherwise."""
    match = _EXPR.match(expr)
    if not match:
        raise ValueError(f"{expr!r} is not a comparison; write e.g. \"< 100ms\" or \"> 0.8\"")
    op, number, unit = match.groups()
    value = float(number)
    timed = key.startswith("latency.") or key.startswith("dispatch.lag.")
    if key.startswith("latency."):
        if key.split(".", 1)[1] not in _LATENCY:
            raise ValueError(f"unknown latency figure {key!r}; use latency.{'|'.join(_LATENCY)}")
    elif key.startswith("dispatch."):
        rest = key.split(".", 1)[1]
        if rest not in ("achieved_rate", "lag.p50", "lag.p99", "lag.max", "events_sent"):
            raise ValueError(f"unknown dispatch figure {key!r}; use dispatch.achieved_rate, "
                             "dispatch.events_sent or dispatch.lag.p50|p99|max")
    elif key.startswith("status."):
        if key.split(".", 1)[1] not in _STATUSES:
            raise ValueError(f"unknown status {key!r}; use status.{'|'.join(_STATUSES)}")
    elif key.endswith("_ratio"):
        if key[: -len("_ratio")] not in _STATUSES:
            raise ValueError(f"unknown ratio {key!r}; use <status>_ratio with a status of "
                             f"{', '.join(_STATUSES)}")
    elif key != "throughput":
        from .metrics import check_metric_names

        try:
            check_metric_names([key], "classification")
        except ValueError:
            check_metric_names([key], "regression")
    if unit in ("us", "ms", "s"):
        if not timed:
            raise ValueError(f"{key!r} is not a time; drop the unit {unit!r}")
        value *= {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    elif unit == "%":
        value /= 100
    return Threshold(key, op, value, f"{key} {expr.strip()}")


def _figure(threshold: Threshold, figures: dict[str, Any], summary: dict[str, Any]) -> float | None:
    key = threshold.figure
    if key.startswith("dispatch."):
        dispatch = summary.get("dispatch", {})
        if key.startswith("dispatch.lag."):
            return (dispatch.get("lag_ms") or {}).get(key.rsplit(".", 1)[1])
        return dispatch.get(key.split(".", 1)[1])
    if key.startswith("latency."):
        return (figures.get("latency_ms") or {}).get(key.split(".", 1)[1])
    if key.startswith("status."):
        return (figures.get("status") or {}).get(key.split(".", 1)[1])
    if key.endswith("_ratio"):
        if key in figures:
            return figures[key]
        events = figures.get("events") or 0
        count = (figures.get("status") or {}).get(key[: -len("_ratio")], 0)
        return count / events if events else None
    if key == "throughput":
        return figures.get("throughput_eps")
    return (figures.get("metrics") or {}).get(key)


def evaluate(thresholds: dict[str, str], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One result per rule per pipeline (dispatch rules once); a figure that
    could not be measured fails its rule."""
    results = []
    for key, expr in thresholds.items():
        rule = parse_threshold(key, expr)
        targets = [(None, {})] if rule.dispatch else list((summary.get("pipelines") or {}).items())
        for pipeline, figures in targets:
            value = _figure(rule, figures, summary)
            ok = value is not None and rule.holds(float(value))
            results.append({"expr": rule.text, "pipeline": pipeline, "value": value, "ok": ok})
    return results
