"""The report of a run that went badly still draws: every chart, no warning
(the test session turns warnings into errors)."""

from __future__ import annotations

import json

from ppipe_stream.report import write_report


def test_report_of_a_pipeline_that_answered_nothing(tmp_path):
    """Found with a crashing pipeline: an empty spectrum chart asked for a legend."""
    summary = {
        "run_id": "empty", "scenario": "empty", "complete": True, "duration_s": 3.0,
        "dispatch": {"events_sent": 300, "target_rate": 100.0, "achieved_rate": 100.0, "lag_ms": {}},
        "pipelines": {"p": {"predictions": 0, "metrics": {"accuracy": None}, "latency_ms": {},
                            "status": {"correct": 0, "incorrect": 0, "deadline_exceeded": 0,
                                       "missing": 300, "syntax_error": 0, "duplicate": 0, "unknown": 0},
                            "container": {"restarts": 0, "oom_killed": False, "exit_code": 1}}},
        "incidents": [{"t_s": 0.2, "kind": "pipeline_exit", "target": "p", "detail": "exit 1",
                       "detected_after_s": 0.0}],
        "broker": {"kind": "kafka", "outages": [{"node": "h:1", "start_s": 1.0, "end_s": 2.0,
                                                 "duration_s": 1.0, "ended": True}]},
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "timeline.csv").write_text(
        "time_s,pipeline,sent,answered,throughput_eps,latency_p50_ms,latency_p99_ms,accuracy\n"
        "0.0,p,100,0,0.0,,,\n1.0,p,100,0,0.0,,,\n")
    page = write_report([tmp_path]).read_text()
    assert "Incidents" in page and "pipeline_exit" in page and "Broker outages" in page
    assert len(list((tmp_path / "charts").glob("*.png"))) >= 5


def test_report_leads_with_the_verdict_in_words(tmp_path):
    """The headline (outcome, thresholds, validity with reasons, leaderboard) comes
    before the charts; no Python reprs; nearly empty windows are not plotted as a
    perfect metric; the split and the deadline/threshold lines are drawn."""
    from ppipe_stream.report.charts import load_run

    summary = {
        "run_id": "r", "scenario": "s", "complete": True, "outcome": "complete", "duration_s": 4.0,
        "passed": False,
        "validity": {"valid": False, "judged": True, "reasons": ["dispatch lag p99 30 ms is over 20 ms"],
                     "recommendations": ["lower the rate"]},
        "dispatch": {"events_sent": 400, "target_rate": 100.0, "achieved_rate": 100.0, "lag_ms": {}},
        "thresholds": [{"expr": "latency.p99 < 50ms", "pipeline": "p", "value": 61.0, "ok": False}],
        "pipelines": {"p": {"metrics": {"accuracy": 0.8}, "latency_ms": {"p50": 10.0, "p99": 61.0},
                            "latency_split_ms": {"broker_in": {"p50": 2.0, "p99": 9.0},
                                                 "compute": {"p50": 6.0, "p99": 40.0},
                                                 "broker_out": {"p50": 2.0, "p99": 12.0}},
                            "status": {"correct": 300, "incorrect": 100},
                            "container": {"restarts": 0, "oom_killed": False, "exit_code": None}}},
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "scenario.toml").write_text(
        '[scoring]\ndeadline = "500ms"\n[thresholds]\n"latency.p99" = "< 50ms"\n')
    (tmp_path / "timeline.csv").write_text(
        "time_s,pipeline,sent,answered,throughput_eps,latency_p50_ms,latency_p99_ms,accuracy,sent_warmup\n"
        "0.0,p,0,0,0.0,,,,100\n1.0,p,100,100,100.0,10,60,0.8,0\n2.0,p,100,100,100.0,10,61,0.7,0\n"
        "3.0,p,2,2,2.0,10,11,1.0,0\n")
    page = write_report([tmp_path]).read_text()
    assert page.index("INVALID") < page.index("Leaderboard") < page.index("Charts")
    assert page.index("Thresholds") < page.index("Charts")
    assert "dispatch lag p99 30 ms" in page and "running to the end" in page
    for repr_ in ("None", "True", "False", "oom "):
        assert repr_ not in page.split("Scenario as run")[0], repr_
    assert (tmp_path / "charts" / "latency_split.png").exists()
    run = load_run(tmp_path)
    xs, ys, floor = run.metric_series("p", "accuracy")
    assert xs == [1.0, 2.0] and floor == 10  # a tenth of the typical window; the 2-answer window's "1.0" is left out
    assert run.sent_series("p") == ([0.0, 1.0, 2.0, 3.0], [100.0, 100.0, 100.0, 2.0])
    assert run.latency_lines() == [("deadline", 500.0), ("latency.p99 < 50ms", 50.0)]
