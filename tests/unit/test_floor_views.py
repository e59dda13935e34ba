"""The run's floor where a user reads it: the summary table, the live view (from a live
frame and from a summary.json), summary.md and the report's Floor table. The floor is
shown under the pipelines and never ranked; without calibration nothing of it shows."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from ppipe_stream.report.charts import RunData
from ppipe_stream.report.html import _floor
from ppipe_stream.report.summary_md import summary_markdown
from ppipe_stream.results.model import Summary, to_builtins
from ppipe_stream.view.display import summary_table
from ppipe_stream.view.live import Frame, frame_from_summary, render


def _summary(calibrated: bool = True) -> Summary:
    status = {"correct": 90, "incorrect": 10, "missing": 0}
    data: dict[str, Any] = {"scenario": "s", "complete": True, "outcome": "complete", "passed": True,
            "dispatch": {"events_sent": 100, "achieved_rate": 10.0},
            "pipelines": {"fast": {"predictions": 100, "status": status, "metrics": {"accuracy": 0.9},
                                   "latency_ms": {"p50": 4.25, "p99": 9.5, "max": 11.0}},
                          "slow": {"predictions": 100, "status": status, "metrics": {"accuracy": 0.5},
                                   "latency_ms": {"p50": 40.0, "p99": 80.0, "max": 90.0}}}}
    if calibrated:
        data["floor"] = {"pipeline": "ppipe-floor", "count": 97, "events": 100,
                         "status": {"incorrect": 97, "missing": 3},
                         "latency_ms": {"p50": 1.75, "p90": 2.5, "p99": 3.125, "max": 4.0},
                         "latency_split_ms": {"broker_in": {"p50": 0.5}, "compute": {"p50": 0.01},
                                              "broker_out": {"p50": 0.75}}}
        data["pipelines"]["fast"]["latency_over_floor_ms"] = {"p50": 2.5, "p99": 6.375}
        data["pipelines"]["slow"]["latency_over_floor_ms"] = {"p50": 38.25, "p99": 76.875}
    return msgspec.convert(data, Summary)


def _text(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=250, color_system=None).print(renderable)
    return out.getvalue()


def test_the_summary_table_has_the_floor_row_last_and_each_pipelines_over_floor() -> None:
    lines = _text(summary_table(_summary())).splitlines()
    rows = [line for line in lines if "fast" in line or "slow" in line or "ppipe-floor" in line]
    assert ["fast" in rows[0], "slow" in rows[1], "ppipe-floor (floor)" in rows[2]] == [True] * 3
    assert "+2.5 ms / +6.4 ms" in rows[0] and "1.8 ms" in rows[2] and "97 answered" in rows[2]
    assert "over floor" not in _text(summary_table(_summary(calibrated=False)))


def test_the_live_view_shows_the_floor_line_under_the_leaderboard_unranked() -> None:
    snap = {"answered": 50, "status": {"missing": 2}, "latency_p50_ms": 1.25, "latency_p99_ms": 2.5}
    frame = Frame(run_id="r", pipelines={"model": {"answered": 50, "latency_p50_ms": 9.0},
                                         "ppipe-floor": snap}, floor="ppipe-floor")
    text = _text(render(frame))
    floor_line = next(line for line in text.splitlines() if line.startswith("floor"))
    assert "ppipe-floor" in floor_line and "p50 1.2 ms" in floor_line and "p99 2.5 ms" in floor_line
    assert "missing 2" in floor_line
    assert not any(line.startswith("│ 2 ") for line in text.splitlines())  # one ranked row
    from_summary = frame_from_summary(to_builtins(_summary()))
    assert from_summary.floor == "ppipe-floor"
    assert from_summary.pipelines["ppipe-floor"]["latency_p99_ms"] == 3.125
    assert "floor (ppipe-floor, echo)  p50 1.8 ms  p99 3.1 ms  answered 97" in _text(render(from_summary))
    plain = frame_from_summary(to_builtins(_summary(calibrated=False)))
    assert plain.floor is None and "floor" not in _text(render(plain))


def test_summary_md_has_the_floor_row_and_the_over_floor_column() -> None:
    text = summary_markdown(_summary())
    header = next(line for line in text.splitlines() if line.startswith("| pipeline"))
    assert "p50/p99 over floor ms" in header
    fast = next(line for line in text.splitlines() if line.startswith("| fast"))
    assert "+2.5 / +6.4" in fast
    floor = text.splitlines().index(next(line for line in text.splitlines() if "ppipe-floor" in line))
    assert text.splitlines()[floor - 1].startswith("| slow")  # after every pipeline
    assert "| 1.8 | 3.1 | 4.0 |" in text.splitlines()[floor]
    assert "floor" not in summary_markdown(_summary(calibrated=False))


def test_the_report_floor_table_puts_the_floor_beside_every_pipeline() -> None:
    html = "".join(_floor(_summary()))
    assert html.startswith("<h3>Floor</h3>") and "broker in 0.5 ms" in html and "3 answer(s)" in html
    rows = html.split("<tr>")[2:]
    assert "ppipe-floor (floor)" in rows[0] and "1.75" in rows[0]
    assert "fast" in rows[1] and "<td>2.5</td><td>6.375</td>" in rows[1]
    assert "slow" in rows[2] and "38.25" in rows[2]
    assert _floor(_summary(calibrated=False)) == []


def test_the_latency_chart_draws_the_floor_as_lines(tmp_path: Path) -> None:
    (tmp_path / "scenario.toml").write_text('[scoring]\ndeadline = "500ms"\ncalibrate = true\n')
    assert RunData(tmp_path, _summary(), []).latency_lines() == [
        ("deadline", 500.0), ("floor p50", 1.75), ("floor p99", 3.125)]
    assert RunData(tmp_path, _summary(calibrated=False), []).latency_lines() == [("deadline", 500.0)]
