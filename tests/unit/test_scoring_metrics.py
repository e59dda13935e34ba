"""Metric names: river classes case-insensitively, aliases, defaults, clear refusals."""

from __future__ import annotations

import pytest
import river.metrics as rm

from ppipe_stream.scoring import MetricSet, check_metric_names, make_metrics
from ppipe_stream.scoring.metrics import feed


@pytest.mark.parametrize("name,cls", [
    ("accuracy", rm.Accuracy), ("Accuracy", rm.Accuracy), ("ACCURACY", rm.Accuracy),
    ("f1", rm.MacroF1), ("MacroF1", rm.MacroF1), ("macrof1", rm.MacroF1),
    ("precision", rm.MacroPrecision), ("recall", rm.MacroRecall), ("F1", rm.MacroF1),
    ("CohenKappa", rm.CohenKappa), ("BalancedAccuracy", rm.BalancedAccuracy),
])
def test_classification_names(name, cls):
    check_metric_names([name], "classification")
    assert type(make_metrics([name], "classification")[name]) is cls


@pytest.mark.parametrize("name,cls", [
    ("mae", rm.MAE), ("MAE", rm.MAE), ("mse", rm.MSE), ("rmse", rm.RMSE), ("r2", rm.R2),
    ("R2", rm.R2), ("smape", rm.SMAPE), ("RMSLE", rm.RMSLE),
])
def test_regression_names(name, cls):
    check_metric_names([name], "regression")
    assert type(make_metrics([name], "regression")[name]) is cls


@pytest.mark.parametrize("names,task,match", [
    (["acuracy"], "classification", "unknown metric 'acuracy'; did you mean 'accuracy'"),
    (["accuracy", "maccro_f1"], "classification", "unknown metric 'maccro_f1'; did you mean"),
    (["nonsense-metric-xyz"], "classification", r"^unknown metric 'nonsense-metric-xyz'$"),
    (["mae"], "classification", "'mae' \\(MAE\\) is not a classification metric"),
    (["accuracy"], "regression", "not a regression metric"),
    (["LogLoss"], "classification", "needs probabilities"),
    (["ROCAUC"], "classification", "needs probabilities"),
    (["ConfusionMatrix"], "classification", "unknown metric"),
])
def test_refusals_name_the_metric(names, task, match):
    with pytest.raises(ValueError, match=match):
        check_metric_names(names, task)


def test_defaults_per_task():
    assert list(MetricSet([], "classification").metrics) == ["accuracy"]
    assert list(MetricSet([], "regression").metrics) == ["mae"]


def test_a_set_is_empty_until_fed_and_keeps_unhashable_answers_wrong():
    metrics = MetricSet(["accuracy", "f1"], "classification")
    assert metrics.get() == {"accuracy": None, "f1": None}
    feed(["a", "b", "a", "a"], ["a", ["b"], {"x": 1}, "a"], [metrics])
    assert metrics.get()["accuracy"] == 0.5 and metrics.count == 4


def test_regression_sets_skip_what_is_not_a_number():
    metrics = MetricSet(["mae", "r2"], "regression")
    feed([1.0, 2.0, 3.0, 4.0], [1.5, "2", None, True], [metrics])
    assert metrics.count == 1 and metrics.get()["mae"] == 0.5
