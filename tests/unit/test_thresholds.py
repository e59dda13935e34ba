"""Thresholds: parsing with units, evaluation per pipeline, clear errors, and rules
that are settled mid-run."""

import pytest

from ppipe_stream.scoring import evaluate, parse_threshold
from ppipe_stream.scoring.thresholds import figure_names, settled_failures

SUMMARY = {
    "dispatch": {"achieved_rate": 199.0, "events_sent": 200,
                 "lag_ms": {"p50": 0.1, "p99": 2.0, "max": 9.0}},
    "pipelines": {
        "a": {"latency_ms": {"p99": 12.5, "max": 40.0}, "metrics": {"accuracy": 0.9},
              "events": 100, "missing_ratio": 0.0, "predictions": 100, "late_after_drain": 0,
              "status": {"missing": 0, "syntax_error": 3, "deadline_exceeded": 5},
              "throughput_eps": 199.0,
              "latency_split_ms": {"compute": {"p50": 0.4, "p99": 1.5}}},
        "b": {"latency_ms": {"p99": 300.0, "max": 900.0}, "metrics": {"Accuracy": 0.5},
              "events": 100, "missing_ratio": 0.2, "predictions": 80, "late_after_drain": 2,
              "status": {"missing": 20, "syntax_error": 0, "deadline_exceeded": 0},
              "throughput_eps": 150.0, "latency_split_ms": {}},
    },
}


@pytest.mark.parametrize("key,expr,value", [
    ("latency.p99", "< 100ms", 100.0), ("latency.p99", "<= 0.1s", 100.0),
    ("latency.p50", "< 500us", 0.5), ("latency.p50", "<500µs", 0.5), ("latency.max", "< 2", 2.0),
    ("accuracy", "> 80%", 0.8), ("missing_ratio", "< 0.01", 0.01), ("f1", ">= .5", 0.5),
    ("deadline_exceeded_ratio", "<= 1%", 0.01), ("dispatch.lag.p99", "< 1e1ms", 10.0),
    ("status.syntax_error", "== 0", 0.0), ("throughput", ">= 150", 150.0),
    ("latency_split.compute.p99", "< 2ms", 2.0), ("MacroF1", "!= 0", 0.0),
])
def test_parse_units(key, expr, value):
    rule = parse_threshold(key, expr)
    assert rule.value == pytest.approx(value) and rule.text == f"{key} {expr.strip()}"


@pytest.mark.parametrize("key,expr,match", [
    ("latency.p98", "< 1ms", "unknown latency figure 'latency.p98'; did you mean 'latency.p99'"),
    ("latncy.p99", "< 1ms", "did you mean 'latency.p99'"),
    ("accuracy", "big", "not a comparison"), ("accuracy", "=> 0.5", "not a comparison"),
    ("accuracy", "> 5ms", "not a time"), ("acuracy", "> 0.5", "did you mean 'accuracy'"),
    ("status.lost", "< 1", "unknown status 'status.lost'"),
    ("latency.p99", "< 5%", "not a ratio"), ("status.missing", "< 5%", "not a ratio"),
    ("throughput", "> 10s", "not a time"), ("logloss", "< 0.5", "needs probabilities"),
    ("dispatch.lag.p90", "< 1ms", "unknown dispatch figure"),
    ("accuracy", 0.8, "as a string"), ("accuracy", "> 1e999", "finite"),
])
def test_parse_errors(key, expr, match):
    with pytest.raises(ValueError, match=match):
        parse_threshold(key, expr)


def test_evaluate_per_pipeline_and_dispatch_once():
    results = evaluate({"latency.p99": "< 100ms", "accuracy": "> 0.8",
                        "status.syntax_error": "== 0", "dispatch.lag.p99": "< 5ms",
                        "missing_ratio": "< 0.01"}, SUMMARY)
    got = {(r["expr"], r["pipeline"]): (r["value"], r["ok"]) for r in results}
    assert got[("latency.p99 < 100ms", "a")] == (12.5, True)
    assert got[("latency.p99 < 100ms", "b")] == (300.0, False)
    assert got[("accuracy > 0.8", "b")] == (0.5, False)  # "Accuracy" in b's metrics
    assert got[("status.syntax_error == 0", "a")] == (3, False)
    assert got[("dispatch.lag.p99 < 5ms", None)] == (2.0, True)
    assert got[("missing_ratio < 0.01", "b")] == (0.2, False)
    assert len(results) == 9


def test_every_kind_of_figure_is_found():
    rules = {"deadline_exceeded_ratio": "< 4%", "late_after_drain": "== 0", "predictions": "> 90",
             "throughput": "> 160", "latency_split.compute.p50": "< 1ms",
             "dispatch.achieved_rate": "> 190", "dispatch.events_sent": ">= 200"}
    got = {(r["expr"].split()[0], r["pipeline"]): (r["value"], r["ok"])
           for r in evaluate(rules, SUMMARY)}
    assert got[("deadline_exceeded_ratio", "a")] == (0.05, False)
    assert got[("deadline_exceeded_ratio", "b")] == (0.0, True)
    assert got[("late_after_drain", "b")] == (2, False)
    assert got[("predictions", "b")] == (80, False) and got[("throughput", "a")] == (199.0, True)
    assert got[("latency_split.compute.p50", "a")] == (0.4, True)
    assert got[("latency_split.compute.p50", "b")] == (None, False)
    assert got[("dispatch.achieved_rate", None)] == (199.0, True)
    assert got[("dispatch.events_sent", None)] == (200, True)


def test_unmeasured_figure_fails():
    results = evaluate({"f1": "> 0.5"}, SUMMARY)
    assert all(r["value"] is None and r["ok"] is False for r in results)


def test_no_pipelines_means_no_pipeline_results_but_dispatch_still_counts():
    results = evaluate({"accuracy": "> 0.5", "dispatch.lag.max": "< 1ms"},
                       {"dispatch": {"lag_ms": {"max": 9.0}}, "pipelines": {}})
    assert results == [{"expr": "dispatch.lag.max < 1ms", "pipeline": None, "value": 9.0,
                        "ok": False}]


def test_settled_failures_are_only_figures_that_can_only_grow():
    rules = {"status.syntax_error": "== 0", "latency.max": "< 500ms", "latency.p99": "< 100ms",
             "accuracy": "> 0.8", "status.missing": "> 5"}
    settled = settled_failures(rules, SUMMARY)
    assert [(r["expr"], r["pipeline"]) for r in settled] == [
        ("status.syntax_error == 0", "a"), ("latency.max < 500ms", "b")]


def test_figure_names_cover_the_documented_ones():
    names = figure_names()
    for name in ("latency.p99", "latency.mean", "missing_ratio", "throughput", "status.unknown",
                 "dispatch.lag.p99", "accuracy", "f1", "mae"):
        assert name in names
