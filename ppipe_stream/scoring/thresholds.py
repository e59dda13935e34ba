"""Thresholds: pass/fail rules on a run's figures (``[thresholds]`` in a scenario).

Owns parsing ``"latency.p99" = "< 100ms"`` into a :class:`Threshold` and
evaluating rules against a run's summary (:class:`~ppipe_stream.results.model.Summary`): each pipeline rule once per
pipeline, each dispatch rule once (pipeline ``null``). A figure that could not
be measured (no answers, a metric not computed) fails its rule.

Figures (the key) and their units:

- ``latency.mean|p50|p90|p99|p999|max``: milliseconds; the value may carry
  ``us``, ``ms`` or ``s`` (bare numbers are ms);
- ``dispatch.lag.p50|p99|max``: milliseconds, the same units;
  ``dispatch.achieved_rate`` (events/s), ``dispatch.events_sent``;
- ``latency_split.<broker_in|compute|broker_out>.<p50|p90|p99|max>``: ms;
- a metric name (``accuracy``, ``f1``, ``MacroF1``, ``mae``... as in
  ``[scoring] metrics``, matched through its river class);
- ``missing_ratio`` and ``<status>_ratio`` (a fraction of the scored events;
  ``%`` allowed), ``status.<status>`` (a count), ``throughput`` (events/s),
  ``predictions``, ``late_after_drain``.

Operators: ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``. A value ending in ``%``
is divided by 100 (ratios and metrics only). Bad keys or expressions raise
``ValueError`` with a clear message; the scenario loader adds the key path.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from typing import Any

import msgspec

from ..results.model import UNSET, LatencySplit, PipelineFigures, SplitPart, Summary, to_summary
from .metrics import ALIASES, resolve_metric, river_metric_names

__all__ = ["Threshold", "evaluate", "figure_names", "figure_unit", "parse_threshold"]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}
_EXPR = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
                   r"\s*(us|µs|ms|s|%)?\s*$")
_TO_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_STATUSES = ("correct", "incorrect", "deadline_exceeded", "missing", "syntax_error", "duplicate",
             "unknown")
_LATENCY = ("mean", "p50", "p90", "p99", "p999", "max")
_SPLIT = ("broker_in", "compute", "broker_out")
_TIMES = {f"latency.{q}" for q in _LATENCY} | {f"dispatch.lag.{q}" for q in ("p50", "p99", "max")} \
    | {f"latency_split.{s}.{q}" for s in _SPLIT for q in ("p50", "p90", "p99", "max")}
_RATIOS = {f"{s}_ratio" for s in _STATUSES}
_COUNTS = {f"status.{s}" for s in _STATUSES} | {"predictions", "late_after_drain",
                                                  "dispatch.events_sent"}
_RATES = {"throughput", "dispatch.achieved_rate"}


def figure_names() -> list[str]:
    """Every figure a threshold may name, metrics by their aliases."""
    return sorted(_TIMES | _RATIOS | _COUNTS | _RATES | set(ALIASES))


def figure_unit(figure: str) -> str:
    """The unit a figure's value is in: ``"ms"`` (times), ``"events/s"`` (rates), else ``""``."""
    if figure in _TIMES:
        return "ms"
    if figure in _RATES:
        return "events/s"
    return ""


class Threshold(msgspec.Struct, frozen=True):
    """One rule: ``figure op value``, the value in the figure's own unit."""

    figure: str
    op: str
    value: float
    text: str

    @property
    def dispatch(self) -> bool:
        """A rule on the dispatcher's figures (evaluated once, not per pipeline)."""
        return self.figure.startswith("dispatch.")

    def holds(self, actual: float) -> bool:
        return _OPS[self.op](actual, self.value)


def parse_threshold(key: str, expr: str) -> Threshold:
    """``key`` names a figure, ``expr`` is ``"<op> <number>[unit]"``; ValueError otherwise."""
    if not isinstance(expr, str):
        raise ValueError(f"write the rule for {key!r} as a string, e.g. \"< 100ms\" or \"> 0.8\"")
    kind = _kind(key)
    match = _EXPR.match(expr)
    if not match:
        raise ValueError(f"{expr!r} is not a comparison; write an operator (< <= > >= == !=) "
                         "and a number, e.g. \"< 100ms\" or \"> 0.8\"")
    op, number, unit = match.groups()
    value = float(number)
    if unit in _TO_MS:
        if kind != "time":
            raise ValueError(f"{key!r} is not a time; drop the unit {unit!r}")
        value *= _TO_MS[unit]
    elif unit == "%":
        if kind not in ("ratio", "metric"):
            raise ValueError(f"{key!r} is not a ratio; '%' is for ratios and metrics")
        value /= 100
    if not math.isfinite(value):
        raise ValueError(f"{expr!r}: the value must be a finite number")
    return Threshold(key, op, value, f"{key} {expr.strip()}")


def _kind(key: str) -> str:
    """What sort of figure ``key`` is; ValueError naming the closest figure if none."""
    if key in _TIMES:
        return "time"
    if key in _RATIOS or key == "missing_ratio":
        return "ratio"
    if key in _COUNTS:
        return "count"
    if key in _RATES:
        return "rate"
    cls_name = resolve_metric(key)
    if cls_name is not None:
        import river.metrics as rm

        if not getattr(getattr(rm, cls_name)(), "requires_labels", True):
            raise ValueError(f"metric {key!r} ({cls_name}) needs probabilities; "
                             "predictions are labels")
        return "metric"
    choices = figure_names() + sorted(river_metric_names())
    close = difflib.get_close_matches(key.lower(), choices, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else \
        "; see the figures in docs (latency.p99, accuracy, missing_ratio, throughput, ...)"
    prefix = key.split(".", 1)[0]
    what = "latency figure" if prefix == "latency" else "status" if prefix == "status" \
        else "dispatch figure" if prefix == "dispatch" else "figure"
    raise ValueError(f"unknown {what} {key!r}{hint}")


def _figure(rule: Threshold, figures: PipelineFigures, summary: Summary) -> Any:
    key = rule.figure
    if key.startswith("dispatch."):
        dispatch = summary.dispatch
        if key.startswith("dispatch.lag."):
            return getattr(dispatch.lag_ms, key.rsplit(".", 1)[1])
        value = getattr(dispatch, key.split(".", 1)[1])
        return None if value is UNSET else value
    if key.startswith("latency."):
        return getattr(figures.latency_ms, key.split(".", 1)[1])
    if key.startswith("latency_split."):
        _, part, q = key.split(".")
        split = figures.latency_split_ms if isinstance(figures.latency_split_ms, LatencySplit) else None
        return getattr(getattr(split, part) if split is not None else SplitPart(), q)
    if key.startswith("status."):
        return getattr(figures.status, key.split(".", 1)[1])
    if key in _RATIOS or key == "missing_ratio":
        if key == "missing_ratio" and figures.missing_ratio is not UNSET:
            return figures.missing_ratio
        events = figures.events or 0
        count = getattr(figures.status, key[: -len("_ratio")])
        return count / events if events and count is not None else None
    if key == "throughput":
        return figures.throughput_eps
    if key in _COUNTS:
        return getattr(figures, key)
    metrics = figures.metrics
    if key in metrics:
        return metrics[key]
    wanted = resolve_metric(key)
    for name, value in metrics.items():  # "Accuracy" in the scenario, "accuracy" here
        if resolve_metric(name) == wanted:
            return value
    return None


def settled_failures(thresholds: dict[str, str],
                     summary: Summary | dict[str, Any]) -> list[dict[str, Any]]:
    """Rules already failed for good mid-run: counts (``status.*``) and ``latency.max``
    only grow, so once over an upper bound they can no longer pass."""
    summary = to_summary(summary)
    final = []
    for result, key in zip(evaluate(thresholds, summary), _keys_per_result(thresholds, summary)):
        rule = parse_threshold(key, thresholds[key])
        grows = rule.figure.startswith("status.") or rule.figure == "latency.max"
        if grows and rule.op in ("<", "<=", "==") and result["value"] is not None and not result["ok"]:
            final.append(result)
    return final


def _keys_per_result(thresholds: dict[str, str], summary: Summary) -> list[str]:
    keys = []
    for key in thresholds:
        count = 1 if key.startswith("dispatch.") else len(summary.pipelines)
        keys += [key] * count
    return keys


def evaluate(thresholds: dict[str, str], summary: Summary | dict[str, Any]) -> list[dict[str, Any]]:
    """One result ``{"expr", "pipeline", "value", "ok"}`` per rule per pipeline
    (dispatch rules once, pipeline None); an unmeasured figure fails its rule.
    ``summary``: a :class:`~ppipe_stream.results.model.Summary` (plain data is converted)."""
    summary = to_summary(summary)
    results: list[dict[str, Any]] = []
    for key, expr in thresholds.items():
        rule = parse_threshold(key, expr)
        targets: list[tuple[str | None, PipelineFigures]] = (
            [(None, PipelineFigures())] if rule.dispatch else list(summary.pipelines.items()))
        for pipeline, figures in targets:
            value = _figure(rule, figures, summary)
            ok = isinstance(value, int | float) and not isinstance(value, bool) \
                and rule.holds(float(value))
            results.append({"expr": rule.text, "pipeline": pipeline, "value": value, "ok": ok})
    return results
