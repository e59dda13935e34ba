"""River metrics by name: what ``[scoring] metrics`` may list.

Owns the names (river class names, case-insensitive, plus short aliases),
the defaults per task, and making fresh metric objects. ``f1``, ``precision``
and ``recall`` are macro-averaged so multiclass labels work.
"""

from __future__ import annotations

import difflib
import functools

__all__ = ["ALIASES", "DEFAULT_METRICS", "check_metric_names", "make_metrics", "river_metric_names"]

ALIASES = {
    "accuracy": "Accuracy", "f1": "MacroF1", "precision": "MacroPrecision",
    "recall": "MacroRecall", "mae": "MAE", "mse": "MSE", "rmse": "RMSE", "r2": "R2",
    "mape": "MAPE", "smape": "SMAPE", "logloss": "LogLoss", "kappa": "CohenKappa",
    "mcc": "MCC", "balanced_accuracy": "BalancedAccuracy",
}
DEFAULT_METRICS = {"classification": ["accuracy"], "regression": ["mae"]}


@functools.lru_cache(maxsize=1)
def river_metric_names() -> dict[str, str]:
    """lower-case name -> river class name, for every usable river metric."""
    import river.metrics as rm
    from river.metrics.base import Metric

    names = {}
    for attr in dir(rm):
        cls = getattr(rm, attr)
        if isinstance(cls, type) and issubclass(cls, Metric) and attr[0].isupper():
            try:
                cls()
            except TypeError:  # needs arguments: not usable by name
                continue
            names[attr.lower()] = attr
    return names


def _resolve(name: str, known: dict[str, str]) -> str | None:
    lowered = name.lower()
    if lowered in ALIASES:
        return ALIASES[lowered]
    return known.get(lowered)


def check_metric_names(names: list[str], task: str) -> None:
    """ValueError naming the first unknown metric (with the closest known name),
    or one that does not fit the task."""
    import river.metrics as rm
    from river.metrics.base import ClassificationMetric, RegressionMetric

    known = river_metric_names()
    for name in names:
        cls_name = _resolve(name, known)
        if cls_name is None:
            choices = sorted(set(ALIASES) | set(known))
            close = difflib.get_close_matches(name.lower(), choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown metric {name!r}{hint}")
        cls = getattr(rm, cls_name)
        family = ClassificationMetric if task == "classification" else RegressionMetric
        if not issubclass(cls, family):
            raise ValueError(f"metric {name!r} ({cls_name}) is not a {task} metric")


def make_metrics(names: list[str], task: str) -> dict[str, object]:
    """Fresh river metric objects keyed by the names the user wrote."""
    import river.metrics as rm

    names = names or DEFAULT_METRICS[task]
    known = river_metric_names()
    return {name: getattr(rm, _resolve(name, known) or name)() for name in names}
