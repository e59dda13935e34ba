"""compose/harness.yml's flow without containers (no image registry here): the
harness runs compose/echo-external.toml against an existing cluster, writes the
external pipeline's environment file, and the `echo` service's own command (read
from harness.yml) sources it and runs the pipeline, which is then scored."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, start_ppipe, summary_of

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _echo_command(runs: Path) -> str:
    """The echo service's shell command in compose/harness.yml, pointed at ``runs``."""
    text = (ROOT / "compose" / "harness.yml").read_text()
    line = next(line for line in text.splitlines() if "pipeline-echo.env && exec" in line)
    command = line.strip().removeprefix("- ").strip()
    command = command.replace("/runs/", f"{runs}/")
    return re.sub(r"\bexec python ", f"exec {sys.executable} ", command)


def test_harness_and_external_echo_as_compose_runs_them(kafka_cluster, tmp_path):
    source = (ROOT / "compose" / "echo-external.toml").read_text()
    source = source.replace('"../scenarios/data/iris.csv"', json.dumps(str(ROOT / "scenarios/data/iris.csv")))
    source = source.replace('bootstrap = "kafka:19092"', f'bootstrap = "{kafka_cluster.bootstrap}"')
    source = source.replace('duration = "30s"', 'duration = "6s"')
    source += 'replication_factor = 3\nacks = "all"\nidempotent = true\n'
    scenario = tmp_path / "echo-external.toml"
    scenario.write_text(source)
    runs = tmp_path / "runs"
    out = runs / "compose"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    harness = start_ppipe("run", str(scenario), "--out", str(out), "--plain",
                          env={"PYTHONPATH": str(ROOT)})
    echo = None
    try:
        env_file = out / "pipeline-echo.env"   # what the harness's healthcheck waits for
        deadline = time.monotonic() + 120
        while not env_file.exists():
            assert harness.poll() is None, harness.communicate()
            assert time.monotonic() < deadline, "the harness wrote no environment file"
            time.sleep(0.2)
        echo = subprocess.Popen(["sh", "-c", _echo_command(runs)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stdout, stderr = harness.communicate(timeout=180)
    finally:
        for proc in (harness, echo):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=30)
    assert harness.returncode == 0, stderr[-3000:]
    assert "export PPIPE_INPUT_TOPIC=" in stderr  # the environment is printed too
    summary = summary_of(out)
    assert summary["complete"] and summary["passed"], summary
    status = summary["pipelines"]["echo"]["status"]
    assert summary["dispatch"]["events_sent"] >= 500
    assert status["missing"] == 0 and status["syntax_error"] == 0
