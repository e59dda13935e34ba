"""River metrics by name, and feeding them answers in batches.

Owns what ``[scoring] metrics`` may list: any river metric class that takes
no argument, by class name case-insensitively (``Accuracy``, ``MacroF1``,
``MAE``, ``R2``...), plus short aliases (``accuracy``, ``f1``, ``precision``,
``recall``, ``mae``, ``mse``, ``rmse``, ``r2``...); ``f1``, ``precision`` and
``recall`` are macro-averaged so multiclass labels work. Metrics that need
probabilities (``LogLoss``, ``ROCAUC``...) are refused: a prediction is a label.

:class:`MetricSet` holds one fresh metric per name; :func:`feed` updates
several sets (a window's and the run's) with the same answers at once, in a
way that gives the values one ``update`` per answer would, for less work:
confusion-matrix metrics get one weighted update per distinct (label,
prediction) pair, running means (MAE, MSE, RMSE, MAPE...) one ``update_many``
of the per-answer terms; any other metric is updated answer by answer.
An answer a metric cannot take (text for MAE) is left out of that metric.
"""

from __future__ import annotations

import collections
import difflib
import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "ALIASES",
    "DEFAULT_METRICS",
    "MetricSet",
    "check_metric_names",
    "feed",
    "make_metrics",
    "resolve_metric",
    "river_metric_names",
]

ALIASES = {
    "accuracy": "Accuracy", "f1": "MacroF1", "precision": "MacroPrecision",
    "recall": "MacroRecall", "mae": "MAE", "mse": "MSE", "rmse": "RMSE", "r2": "R2",
    "mape": "MAPE", "smape": "SMAPE", "kappa": "CohenKappa", "mcc": "MCC",
    "balanced_accuracy": "BalancedAccuracy",
}
DEFAULT_METRICS = {"classification": ["accuracy"], "regression": ["mae"]}
_NOT_A_FIGURE = {"ConfusionMatrix", "ClassificationReport"}  # get() is not one number
_METRIC_ERRORS = (TypeError, ValueError, KeyError, ZeroDivisionError, OverflowError)


@functools.lru_cache(maxsize=1)
def river_metric_names() -> dict[str, str]:
    """lower-case name -> river class name, for every river metric usable by name."""
    import river.metrics as rm
    from river.metrics.base import ClassificationMetric, RegressionMetric

    names = {}
    for attr in dir(rm):
        cls = getattr(rm, attr)
        if (isinstance(cls, type) and issubclass(cls, ClassificationMetric | RegressionMetric)
                and attr[0].isupper() and attr not in _NOT_A_FIGURE):
            try:
                cls()
            except TypeError:  # needs arguments (FBeta's beta...): not usable by name
                continue
            names[attr.lower()] = attr
    return names


def resolve_metric(name: str) -> str | None:
    """The river class name ``name`` stands for, or None."""
    lowered = name.lower()
    return ALIASES.get(lowered) or river_metric_names().get(lowered)


def check_metric_names(names: Sequence[str], task: str) -> None:
    """Raise ValueError naming the first metric that is unknown (with the closest
    known name), needs probabilities, or does not fit ``task``."""
    import river.metrics as rm
    from river.metrics.base import ClassificationMetric, RegressionMetric

    for name in names:
        cls_name = resolve_metric(name)
        if cls_name is None:
            choices = sorted(set(ALIASES) | set(river_metric_names()))
            close = difflib.get_close_matches(name.lower(), choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown metric {name!r}{hint}")
        cls = getattr(rm, cls_name)
        family = ClassificationMetric if task == "classification" else RegressionMetric
        if not issubclass(cls, family):
            raise ValueError(f"metric {name!r} ({cls_name}) is not a {task} metric")
        if not getattr(cls(), "requires_labels", True):
            raise ValueError(f"metric {name!r} ({cls_name}) needs probabilities; "
                             "predictions are labels")


def make_metrics(names: Sequence[str], task: str) -> dict[str, Any]:
    """Fresh river metric objects keyed by the names written (task defaults if none)."""
    import river.metrics as rm

    names = list(names) or DEFAULT_METRICS[task]
    return {name: getattr(rm, resolve_metric(name) or name)() for name in names}


def _kind(metric: Any) -> str:
    """How a metric may be fed: ``cm`` (weighted confusion matrix), ``mean``, ``pair``."""
    from river.metrics.base import BinaryMetric, ClassificationMetric, MeanMetric

    update = type(metric).update
    if update in (ClassificationMetric.update, BinaryMetric.update) and hasattr(metric, "cm"):
        return "cm"
    if update is MeanMetric.update and hasattr(metric, "_mean"):
        return "mean"
    return "pair"


class MetricSet:
    """One fresh river metric per name; fed with :func:`feed`, read with :meth:`get`."""

    def __init__(self, names: Sequence[str], task: str) -> None:
        self.task = task
        self.metrics = make_metrics(names, task)
        self.objects = list(self.metrics.values())
        self.kinds = [_kind(m) for m in self.objects]
        self.count = 0  # answers fed

    def get(self) -> dict[str, float | None]:
        """Each metric's value; None before any answer, or when it has no value."""
        if not self.count:
            return dict.fromkeys(self.metrics)
        return {name: _value(metric) for name, metric in self.metrics.items()}


def feed(y_true: Sequence[Any], y_pred: Sequence[Any], sets: Sequence[MetricSet]) -> None:
    """Update every set in ``sets`` (same names, same task) with these answers."""
    if not y_true or not sets:
        return
    first = sets[0]
    if first.task == "regression":
        y_true, y_pred = _numeric_pairs(y_true, y_pred)
        if not y_true:
            return
    for metric_set in sets:
        metric_set.count += len(y_true)
    pairs: list[tuple[tuple[Any, Any], int]] | None = None
    for position, kind in enumerate(first.kinds):
        column = [s.objects[position] for s in sets]
        if kind == "cm":
            if pairs is None:
                pairs = _count_pairs(y_true, y_pred)
            for metric in column:
                for (truth, guess), count in pairs:
                    metric.update(truth, guess, w=count)
                    metric.cm.n_samples += count - 1  # as ``count`` single updates
        elif kind == "mean":
            terms = _terms(column[0], y_true, y_pred)
            if terms.size:
                for metric in column:
                    metric._mean.update_many(terms)  # noqa: SLF001 - river's running mean has no public batch update
        else:
            for metric in column:
                for truth, guess in zip(y_true, y_pred, strict=True):
                    try:
                        metric.update(truth, guess)
                    except _METRIC_ERRORS:
                        continue


def _count_pairs(y_true: Sequence[Any], y_pred: Sequence[Any]) -> list[tuple[tuple[Any, Any], int]]:
    try:
        return list(collections.Counter(zip(y_true, y_pred, strict=True)).items())
    except TypeError:  # an unhashable prediction (a list, an object): wrong, keep it wrong
        guesses = [_hashable(g) for g in y_pred]
        truths = [_hashable(t) for t in y_true]
        return list(collections.Counter(zip(truths, guesses, strict=True)).items())


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return f"<unhashable {type(value).__name__}: {value!r:.40}>"
    return value


def _numeric_pairs(y_true: Sequence[Any], y_pred: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Only the answers where both sides are numbers (bools are not)."""
    ok = (int, float)
    if all(type(g) in ok for g in y_pred) and all(type(t) in ok for t in y_true):
        return list(y_true), list(y_pred)
    kept = [(t, g) for t, g in zip(y_true, y_pred, strict=True)
            if isinstance(t, ok) and isinstance(g, ok) and not isinstance(g, bool)
            and not isinstance(t, bool)]
    return [t for t, _ in kept], [g for _, g in kept]


def _terms(metric: Any, y_true: Sequence[Any], y_pred: Sequence[Any]) -> np.ndarray:
    """The per-answer terms of a running-mean metric (those it can compute)."""
    evaluate = metric._eval  # noqa: SLF001 - river's per-answer term of a mean metric, not public
    try:
        values = [evaluate(t, g) for t, g in zip(y_true, y_pred, strict=True)]
    except _METRIC_ERRORS:
        values = []
        for t, g in zip(y_true, y_pred, strict=True):
            try:
                values.append(evaluate(t, g))
            except _METRIC_ERRORS:
                continue
    try:
        return np.asarray(values, dtype=np.float64)
    except _METRIC_ERRORS:
        return np.asarray([v for v in values if isinstance(v, int | float)], dtype=np.float64)


def _value(metric: Any) -> float | None:
    try:
        value = float(metric.get())
    except _METRIC_ERRORS:
        return None
    return None if math.isnan(value) or math.isinf(value) else float(f"{value:.9g}")
