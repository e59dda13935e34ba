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
