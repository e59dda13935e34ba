"""Validity verdicts and ``ppipe compare``."""

from __future__ import annotations

import json
import subprocess
import sys

from ppipe_stream.report.compare import compare_rows
from ppipe_stream.scenario.model import Validity
from ppipe_stream.units import Duration
from ppipe_stream.results.validity import judge_validity


def summary(rate=200.0, achieved=199.5, lag=1.0, events=4000, duration=20.0):
    return {"run_id": "r", "duration_s": duration,
            "dispatch": {"events_sent": events, "target_rate": rate, "achieved_rate": achieved,
                         "lag_ms": {"p50": 0.1, "p99": lag, "max": lag}},
            "pipelines": {"p": {"events": events, "status": {"correct": events, "missing": 0},
                                "latency_ms": {"p99": 10.0}, "throughput_eps": achieved,
                                "metrics": {"accuracy": 0.9}}}}


def test_a_good_run_is_valid():
    assert judge_validity(Validity(), summary()) == {"valid": True, "reasons": [], "recommendations": []}


def test_each_reason_with_a_recommendation():
    rules = Validity(min_duration=Duration("60s"), min_events=10_000)
    verdict = judge_validity(rules, summary(achieved=150.0, lag=80.0))
    assert not verdict["valid"]
    text = " ".join(verdict["reasons"])
    assert "min_duration" in text and "min_events" in text and "150.0 events/s" in text and "80.0 ms" in text
    assert len(verdict["recommendations"]) == 4
    assert any("lower the rate" in r for r in verdict["recommendations"])


def test_compare_rows_and_cli(tmp_path):
    a, b = summary(), summary(lag=2.0)
    b["pipelines"]["p"]["latency_ms"]["p99"] = 15.0
    rows = {key: (va, vb, diff, rel) for key, va, vb, diff, rel in compare_rows(a, b)}
    assert rows["p.latency_ms.p99"] == (10.0, 15.0, 5.0, 0.5)
    assert rows["dispatch.lag_ms.p99"][2] == 1.0
    for name, s in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(s))
    result = subprocess.run([sys.executable, "-m", "ppipe_stream", "compare", str(tmp_path / "a"),
                             str(tmp_path / "b")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "p.latency_ms.p99" in result.stdout and "+50.0%" in result.stdout
    missing = subprocess.run([sys.executable, "-m", "ppipe_stream", "compare", str(tmp_path / "a"),
                              str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no summary.json" in missing.stderr
