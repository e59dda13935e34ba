"""Every run folder says what happened (``ppipe run`` in a subprocess): a run that
failed or was interrupted is never listed valid or passed, its thresholds are
shown as not judged, and it still gets a report saying why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PPIPE = [sys.executable, "-m", "ppipe_stream"]

SCENARIO = """
name = "outcome"
seed = 3
[dataset]
source = "csv"
path = "{iris}"
target = "variety"
loop = true
[load]
profile = "constant"
rate = 100
duration = "{duration}"
drain = "2s"
[[pipelines]]
name = "{name}"
runtime = "{runtime}"
{command}
[scoring]
task = "classification"
deadline = "1s"
[thresholds]
"missing_ratio" = "< 0.5"
"""
ECHO = 'command = ["python", "-m", "ppipe_stream.examples.echo"]'


def write(tmp_path: Path, *, name: str = "echo", runtime: str = "process", command: str = ECHO,
          duration: str = "3s") -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO.format(iris=ROOT / "scenarios" / "data" / "iris.csv", name=name,
                                    runtime=runtime, command=command, duration=duration))
    return path


def runs_row(tmp_path: Path, folder: Path) -> str:
    result = subprocess.run([*PPIPE, "runs", "--runs-dir", str(folder.parent)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    run_id = json.loads((folder / "summary.json").read_text())["run_id"]  # the name runs lists
    rows = [line for line in result.stdout.splitlines() if run_id in line]
    assert rows, result.stdout
    return rows[0]


def check_failed_folder(tmp_path: Path, folder: Path, why: str) -> dict:
    summary = json.loads((folder / "summary.json").read_text())
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
    path = write(tmp_path, command='command = ["python", "-c", "import sys; sys.exit(3)"]')
    out = tmp_path / "runs" / "exits"
    result = subprocess.run([*PPIPE, "run", str(path), "--plain", "--out", str(out)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    check_failed_folder(tmp_path, out, "exited before it was ready")
    assert "report.failed" not in (out / "log.jsonl").read_text()


@pytest.mark.docker
def test_no_docker_engine(tmp_path):
    """A docker pipeline with no engine: failed, and the broker named is the one it
    would have used (tansu in the sandbox), marked as never started."""
    path = write(tmp_path, name="boxed", runtime="docker", command='image = "ppipe/nothing:local"')
    out = tmp_path / "runs" / "nodocker"
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    result = subprocess.run([*PPIPE, "run", str(path), "--plain", "--out", str(out)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr
    summary = check_failed_folder(tmp_path, out, "Docker")
    assert summary["broker"]["kind"] == "embedded-tansu" and summary["broker"]["started"] is False


def test_ctrl_c_shows_thresholds_not_judged(tmp_path):
    path = write(tmp_path, duration="60s")
    out = tmp_path / "runs" / "interrupted"
    proc = subprocess.Popen([*PPIPE, "run", str(path), "--plain", "--out", str(out)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "250"})
    summary_path = out / "summary.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if summary_path.exists() and json.loads(summary_path.read_text())["dispatch"].get("events_sent", 0) > 50:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "ok:" not in stdout and "not judged: missing_ratio" in stdout, stdout
    summary = json.loads(summary_path.read_text())
    assert summary["outcome"] == "interrupted" and summary["passed"] is False
    assert summary["validity"] == {**summary["validity"], "valid": False, "judged": False}
    assert all(t["judged"] is False for t in summary["thresholds"])
    assert "interrupted" in (out / "report.html").read_text()
    row = runs_row(tmp_path, out)
    assert "interrupted" in row and "not judged" in row, row
