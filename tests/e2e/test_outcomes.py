"""Every run folder says what happened (``ppipe run`` in a subprocess): a run that
failed or was interrupted is never listed valid or passed, its thresholds are
shown as not judged, and it still gets a report saying why."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (Load, Pipeline, Scenario, Scoring, ppipe, start_ppipe, summary_of,
                           wait_for_events)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def write(tmp_path: Path, pipeline: Pipeline | None = None, *, duration: str = "3s") -> Path:
    """``tmp_path/scenario.toml``: iris at 100/s to one pipeline (echo unless told)."""
    return Scenario(name="outcome", seed=3, load=Load(rate=100, duration=duration, drain="2s"),
                    pipelines=[pipeline or Pipeline(name="echo")],
                    scoring=Scoring(task="classification", deadline="1s"),
                    thresholds={"missing_ratio": "< 0.5"}).write(tmp_path)


def runs_row(tmp_path: Path, folder: Path) -> str:
    result = ppipe("runs", "--runs-dir", str(folder.parent), cwd=tmp_path, timeout=60,
                   env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    run_id = summary_of(folder)["run_id"]  # the name runs lists
    rows = [line for line in result.stdout.splitlines() if run_id in line]
    assert rows, result.stdout
    return rows[0]


def check_failed_folder(tmp_path: Path, folder: Path, why: str) -> dict[str, Any]:
    summary = summary_of(folder)
    assert summary["outcome"] == "failed" and summary["complete"] is False
    assert summary["passed"] is False
    assert summary["validity"]["valid"] is False and summary["validity"]["judged"] is False
    assert why in summary["validity"]["reasons"][0]
    assert all(t["judged"] is False and t["ok"] is None for t in summary["thresholds"])
    report = (folder / "report.html").read_text()
    assert "failed" in report and why in report
    row = runs_row(tmp_path, folder)
    assert "failed" in row and "not judged" in row and " yes " not in row, row
    return summary


def test_a_pipeline_that_exits_before_it_is_ready(tmp_path):
    path = write(tmp_path, Pipeline(name="echo", command=["python", "-c", "import sys; sys.exit(3)"]))
    out = tmp_path / "runs" / "exits"
    result = ppipe("run", str(path), "--plain", "--out", str(out), cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    check_failed_folder(tmp_path, out, "exited before it was ready")
    assert "report.failed" not in (out / "log.jsonl").read_text()


@pytest.mark.docker
def test_no_docker_engine(tmp_path):
    """A docker pipeline with no engine: failed, and the broker named is the one it
    would have used (the embedded default, Apache Kafka on the sandbox's gateway),
    marked as never started."""
    path = write(tmp_path, Pipeline(name="boxed", runtime="docker", image="ppipe/nothing:local"))
    out = tmp_path / "runs" / "nodocker"
    result = ppipe("run", str(path), "--plain", "--out", str(out), cwd=tmp_path, timeout=120,
                   env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr
    summary = check_failed_folder(tmp_path, out, "Docker")
    assert summary["broker"]["kind"] == "kafka" and summary["broker"]["started"] is False


def test_ctrl_c_shows_thresholds_not_judged(tmp_path):
    path = write(tmp_path, duration="60s")
    out = tmp_path / "runs" / "interrupted"
    proc = start_ppipe("run", str(path), "--plain", "--out", str(out), cwd=tmp_path,
                       env={"COLUMNS": "250"})
    summary_path = out / "summary.json"
    wait_for_events(summary_path, more_than=50, timeout=60)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "ok:" not in stdout and "not judged: missing_ratio" in stdout, stdout
    summary = summary_of(out)
    assert summary["outcome"] == "interrupted" and summary["passed"] is False
    assert summary["validity"] == {**summary["validity"], "valid": False, "judged": False}
    assert all(t["judged"] is False for t in summary["thresholds"])
    assert "interrupted" in (out / "report.html").read_text()
    row = runs_row(tmp_path, out)
    assert "interrupted" in row and "not judged" in row, row
