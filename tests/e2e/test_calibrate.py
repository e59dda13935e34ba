"""``[scoring] calibrate = true`` as a user runs it: ``ppipe run`` in a subprocess on the
embedded broker scores the echo floor beside the user's pipeline, reports it as the run's
``floor`` (never a competitor), and the report and summary.md show the floor row."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Labels, Load, Pipeline, Scenario, Scoring, example, ppipe, summary_of


@pytest.mark.kafka
@pytest.mark.slow
def test_a_calibrated_run_reports_its_floor_beside_the_pipeline(tmp_path: Path) -> None:
    path = Scenario(name="calib-e2e", seed=5,
                    load=Load(rate=100, duration="3s", warmup="0s", drain="3s"),
                    labels=Labels(delay="200ms"),
                    pipelines=[Pipeline(name="river", command=example("river_online"))],
                    scoring=Scoring(task="classification", deadline="1s", calibrate=True),
                    # the echo answers "echo": every answer wrong, a rule it would fail
                    thresholds={"correct_ratio": "> 0", "missing_ratio": "< 0.01"}).write(tmp_path)
    result = ppipe("run", str(path), "--plain", "--out", str(tmp_path / "out"), cwd=tmp_path,
                   timeout=240)
    assert result.returncode == 0, result.output
    folder = tmp_path / "out"
    summary = summary_of(folder)
    sent = summary["dispatch"]["events_sent"]
    assert sent > 200

    assert list(summary["pipelines"]) == ["river"]  # the floor is no competitor
    floor = summary["floor"]
    assert floor["pipeline"] == "ppipe-floor"
    assert floor["count"] == sent and floor["events"] == sent and floor["status"]["missing"] == 0
    assert floor["status"]["incorrect"] == sent
    latency = floor["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert latency["p50"] < 1000  # the deadline: a floor, not a stall
    assert floor["latency_split_ms"]["broker_in"]["p50"] is not None  # the SDK stamps its answers

    river = summary["pipelines"]["river"]
    over = river["latency_over_floor_ms"]
    assert over["p50"] == round(river["latency_ms"]["p50"] - latency["p50"], 3)
    assert over["p99"] == round(river["latency_ms"]["p99"] - latency["p99"], 3)
    assert summary["passed"] is True
    assert {t["pipeline"] for t in summary["thresholds"]} == {"river"}
    print("floor p50/p99", latency["p50"], latency["p99"], "river p50/p99",
          river["latency_ms"]["p50"], river["latency_ms"]["p99"], "over", over)

    copy = (folder / "scenario.toml").read_text()  # runs again as it is: the floor added again
    assert "calibrate = true" in copy and "ppipe-floor" not in copy
    assert "ppipe-floor" in (folder / "timeline.csv").read_text()

    page = (folder / "report.html").read_text()
    assert "<h3>Floor</h3>" in page and "ppipe-floor" in page
    shown_p50 = f"{latency['p50']:.3f}".rstrip("0").rstrip(".")  # as the report writes a figure
    assert f"<td>ppipe-floor (floor)</td><td>{sent}</td><td>0</td><td>{shown_p50}</td>" \
        in page.split("<h3>Floor</h3>", 1)[1]
    markdown = (folder / "summary.md").read_text()
    floor_row = next(line for line in markdown.splitlines() if "ppipe-floor" in line)
    assert "floor" in floor_row and f"{latency['p50']:.1f}" in floor_row
    assert "ppipe-floor (floor)" in result.stdout  # the summary table's floor row
    assert "floor ppipe-floor: answered" in result.stderr  # the plain live view names it
    again = ppipe("validate", str(folder / "scenario.toml"), cwd=tmp_path)
    assert again.returncode == 0 and "ppipe-floor" in again.stdout, again.output
