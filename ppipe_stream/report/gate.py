"""``ppipe compare BASE NEW --fail-if EXPR``: the regression gate.

Owns parsing a bound on the change from BASE to NEW and judging it. A bound is
``[PIPELINE.]FIGURE OP [+|-]NUMBER[%|unit]``:

- ``FIGURE`` is any figure a threshold may name (``latency.p99``, ``accuracy``,
  ``missing_ratio``, ``throughput``, ``dispatch.lag.p99``...: see
  :func:`~ppipe_stream.scoring.thresholds.figure_names`), read from each run
  the way thresholds read it;
- a per-pipeline figure is judged for every pipeline present in both runs, or
  for one when prefixed with its name (``river.latency.p99``); a dispatch figure once;
- ``OP`` is ``>``, ``>=``, ``<`` or ``<=``, and the bound is on NEW - BASE:
  ``latency.p99 > +10%`` fails when NEW's p99 is more than 10 % above BASE's
  (``%``: relative to BASE), ``accuracy < -0.01`` when NEW's accuracy is more
  than 0.01 below (absolute, in the figure's unit; times may carry ``us``, ``ms``, ``s``).

A figure measured in one run and not the other fails its bound (a regression
cannot be ruled out), as an unmeasured figure fails a threshold. A bad bound is
``ValueError`` with one line naming it. Reads two
:class:`~ppipe_stream.results.model.Summary`; prints nothing.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from typing import NoReturn

import msgspec

from ..results.model import Summary
from ..scoring.thresholds import evaluate, figure_unit, parse_threshold

__all__ = ["Bound", "BoundResult", "judge_bounds", "parse_bound"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_BOUND = re.compile(r"^\s*(?P<key>[^\s<>=!]+)\s*(?P<op><=|>=|==|!=|<|>)\s*"
                    r"(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>%|us|µs|ms|s)?\s*$")


class Bound(msgspec.Struct, frozen=True, kw_only=True):
    """One ``--fail-if``: fail when the change of ``figure`` (NEW - BASE, or relative to
    BASE) compares to ``value`` by ``op``."""

    text: str
    figure: str
    pipeline: str | None  # None: every pipeline in both runs (or a dispatch figure)
    op: str
    value: float  # in the figure's unit; a fraction of BASE when relative
    relative: bool


class BoundResult(msgspec.Struct, frozen=True, kw_only=True):
    """One bound on one pipeline (None: a dispatch figure): both values and the verdict."""

    bound: Bound
    pipeline: str | None
    base: float | None
    new: float | None
    failed: bool

    @property
    def change(self) -> float | None:
        """NEW - BASE (None when either is unmeasured)."""
        return None if self.base is None or self.new is None else self.new - self.base

    @property
    def relative_change(self) -> float | None:
        """(NEW - BASE) / |BASE|; infinite when BASE is 0 and NEW is not."""
        change = self.change
        if change is None or self.base is None:
            return None
        if self.base == 0:
            return 0.0 if change == 0 else math.copysign(math.inf, change)
        return change / abs(self.base)

    def line(self) -> str:
        """One line saying what failed, with both values and the change."""
        bound = self.bound
        who = f" [{self.pipeline}]" if self.pipeline is not None else ""
        unit = figure_unit(bound.figure)
        if self.base is None or self.new is None:
            missing = " and ".join(name for name, v in (("BASE", self.base), ("NEW", self.new))
                                   if v is None)
            return f"FAILED --fail-if {bound.text!r}{who}: {bound.figure} not measured in {missing}"
        change, rel = self.change, self.relative_change
        assert change is not None and rel is not None
        return (f"FAILED --fail-if {bound.text!r}{who}: {bound.figure} {_num(self.base)} -> "
                f"{_num(self.new)}{' ' + unit if unit else ''} ({_num(change, signed=True)}, "
                f"{rel:+.1%})")


def _num(value: float, signed: bool = False) -> str:
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _is_figure(key: str) -> bool:
    try:
        parse_threshold(key, "> 0")
    except ValueError:
        return False
    return True


def _unknown(text: str, key: str, pipelines: Iterable[str]) -> NoReturn:
    """ValueError for a key that is neither a figure nor a known pipeline's figure."""
    for at, char in enumerate(key):
        if char == "." and _is_figure(key[at + 1:]):
            known = ", ".join(sorted(set(pipelines))) or "none"
            raise ValueError(f"--fail-if {text!r}: no pipeline {key[:at]!r} in either run "
                             f"(pipelines: {known})")
    try:
        parse_threshold(key, "> 0")
    except ValueError as exc:
        raise ValueError(f"--fail-if {text!r}: {exc}") from None
    raise AssertionError(key)  # not reached: a key that parses is a figure


def parse_bound(text: str, pipelines: Iterable[str] = ()) -> Bound:
    """A ``--fail-if`` expression; ``pipelines`` are the names a prefix may give.
    ValueError with one line naming what is wrong."""
    names = list(pipelines)
    match = _BOUND.match(text)
    if not match:
        raise ValueError(f"--fail-if {text!r}: write FIGURE OP CHANGE, e.g. \"latency.p99 > +10%\" "
                         "or \"accuracy < -0.01\"")
    key, op, number, unit = match.group("key", "op", "number", "unit")
    if op not in _OPS:
        raise ValueError(f"--fail-if {text!r}: {op!r} bounds nothing; use > >= < <=")
    figure, pipeline = key, None
    if not _is_figure(key):
        for name in sorted(names, key=len, reverse=True):  # the longest name first: dots allowed
            if key.startswith(name + ".") and _is_figure(key[len(name) + 1:]):
                figure, pipeline = key[len(name) + 1:], name
                break
        else:
            _unknown(text, key, names)
    if pipeline is not None and figure.startswith("dispatch."):
        raise ValueError(f"--fail-if {text!r}: {figure} is the dispatcher's, not a pipeline's")
    if unit == "%":
        value, relative = float(number) / 100, True
    else:
        try:
            value = parse_threshold(figure, f"{op} {number}{unit or ''}").value
        except ValueError as exc:
            raise ValueError(f"--fail-if {text!r}: {exc}") from None
        relative = False
    if not math.isfinite(value):
        raise ValueError(f"--fail-if {text!r}: the bound must be a finite number")
    return Bound(text=text.strip(), figure=figure, pipeline=pipeline, op=op, value=value,
                 relative=relative)


def _values(figure: str, summary: Summary) -> dict[str | None, float | None]:
    """The figure per pipeline (None: the dispatch figure), as a threshold reads it."""
    values: dict[str | None, float | None] = {}
    for result in evaluate({figure: "> 0"}, summary):
        value = result["value"]
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        values[result["pipeline"]] = number
    return values


def judge_bounds(bounds: list[Bound], base: Summary, new: Summary) -> list[BoundResult]:
    """One result per bound per pipeline judged; ValueError when a bound names a pipeline
    that is not in both runs, or when no pipeline is in both."""
    results: list[BoundResult] = []
    common = [name for name in base.pipelines if name in new.pipelines]
    for bound in bounds:
        dispatch = bound.figure.startswith("dispatch.")
        if bound.pipeline is not None and bound.pipeline not in common:
            where = " and ".join(w for w, s in (("BASE", base), ("NEW", new))
                                 if bound.pipeline not in s.pipelines)
            raise ValueError(f"--fail-if {bound.text!r}: no pipeline {bound.pipeline!r} in {where}")
        if not dispatch and not common:
            raise ValueError(f"--fail-if {bound.text!r}: no pipeline is in both runs (BASE: "
                             f"{', '.join(base.pipelines) or 'none'}; NEW: "
                             f"{', '.join(new.pipelines) or 'none'})")
        base_values, new_values = _values(bound.figure, base), _values(bound.figure, new)
        targets: list[str | None] = [None] if dispatch else [bound.pipeline] if bound.pipeline \
            else list(common)
        for pipeline in targets:
            a, b = base_values.get(pipeline), new_values.get(pipeline)
            result = BoundResult(bound=bound, pipeline=pipeline, base=a, new=b, failed=True)
            change = result.relative_change if bound.relative else result.change
            failed = change is None or _OPS[bound.op](change, bound.value)
            results.append(msgspec.structs.replace(result, failed=failed))
    return results
