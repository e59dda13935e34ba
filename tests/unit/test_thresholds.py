"""Thresholds: parsing with units, evaluation per pipeline, clear errors."""

import pytest

from ppipe_stream.scoring import evaluate, parse_threshold

SUMMARY = {
    "dispatch": {"achieved_rate": 199.0, "lag_ms": {"p50": 0.1, "p99": 2.0, "max": 9.0}},
    "pipelines": {
        "a": {"latency_ms": {"p99": 12.5}, "metrics": {"accuracy": 0.9}, "events": 100,
              "missing_ratio": 0.0, "status": {"missing": 0, "syntax_error": 3},
              "throughput_eps": 199.0},
        "b": {"latency_ms": {"p99": 300.0}, "metrics": {"accuracy": 0.5}, "events": 100,
              "missing_ratio": 0.2, "status": {"missing": 20, "syntax_error": 0},
              "throughput_eps": 150.0},
    },
}


@pytest.mark.parametrize("key,expr,value", [
    ("latency.p99", "< 100ms", 100.0), ("latency.p99", "<= 0.1s", 100.0),
    ("latency.p50", "< 500us", 0.5), ("accuracy", "> 80%", 0.8), ("missing_ratio", "< 0.01", 0.01),
])
def test_parse_units(key, expr, value):
    assert parse_threshold(key, expr).value == pytest.approx(value)


@pytest.mark.parametrize("key,expr,match", [
    ("latency.p98", "< 1ms", "unknown latency figure"), ("accuracy", "big", "not a comparison"),
    ("accuracy", "> 5ms", "not a time"), ("acuracy", "> 0.5", "did you mean 'accuracy'"),
    ("status.lost", "< 1", "unknown status"),
])
def test_parse_errors(key, expr, match):
    with pytest.raises(ValueError, match=match):
        parse_threshold(key, expr)


def test_evaluate_per_pipeline_and_dispatch_once():
    results = evaluate({"latency.p99": "< 100ms", "accuracy": "> 0.8", "status.syntax_error": "== 0",
                        "dispatch.lag.p99": "< 5ms", "missing_ratio": "< 0.01"}, SUMMARY)
    got = {(r["expr"], r["pipeline"]): (r["value"], r["ok"]) for r in results}
    assert got[("latency.p99 < 100ms", "a")] == (12.5, True)
    assert got[("latency.p99 < 100ms", "b")] == (300.0, False)
    assert got[("accuracy > 0.8", "b")] == (0.5, False)
    assert got[("status.syntax_error == 0", "a")] == (3, False)
    assert got[("dispatch.lag.p99 < 5ms", None)] == (2.0, True)
    assert got[("missing_ratio < 0.01", "b")] == (0.2, False)
    assert len(results) == 9


def test_unmeasured_figure_fails():
    results = evaluate({"f1": "> 0.5"}, SUMMARY)
    assert all(r["value"] is None and r["ok"] is False for r in results)
