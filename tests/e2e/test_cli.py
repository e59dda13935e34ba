"""The ``ppipe`` command in a subprocess, as a user runs it: exit codes 0, 2, 3 and 130,
the run folder's path as the last line, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import (ROOT, Labels, Load, Pipeline, Scenario, Scoring, ppipe, start_ppipe,
                           summary_of, wait_for_events)


def _write(tmp_path: Path, thresholds: dict[str, str], *, duration: str = "3s",
           pipeline: Pipeline | None = None) -> Path:
    """``tmp_path/scenario.toml``: iris at 100/s to one echo pipeline, judged by ``thresholds``."""
    return Scenario(name="echo-e2e", seed=3,
                    load=Load(rate=100, duration=duration, warmup="500ms", drain="3s"),
                    labels=Labels(delay="200ms"), pipelines=[pipeline or Pipeline(name="echo")],
                    scoring=Scoring(task="classification", deadline="1s"),
                    thresholds=thresholds).write(tmp_path)


def test_validate_ok(tmp_path):
    result = ppipe("validate", str(ROOT / "scenarios" / "quickstart.toml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_bad_scenario_exits_2_with_one_line(tmp_path):
    path = _write(tmp_path, {"missing_ratio": "< 0.01"}).read_text().replace("rate = 100", "rat = 100")
    (tmp_path / "bad.toml").write_text(path)
    result = ppipe("run", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "bad.toml:" in lines[0] and "rat" in lines[0] and "rate" in lines[0]
    assert "Traceback" not in result.stderr


def test_usage_error_exits_2(tmp_path):
    result = ppipe("frobnicate", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    result = ppipe("run", "no-such-file.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "no-such-file.toml" in result.stderr


@pytest.mark.kafka
@pytest.mark.slow
def test_run_passes_exit_0_and_prints_folder_last(tmp_path):
    path = _write(tmp_path, {"missing_ratio": "< 0.01", "latency.p99": "< 900ms"})
    result = ppipe("run", str(path), "--plain", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    if not folder.is_absolute():
        folder = tmp_path / folder
    assert folder.parent.name == "runs" and folder.name.startswith("echo-e2e-")
    summary = summary_of(folder)
    assert summary["complete"] is True and summary["passed"] is True
    assert summary["broker"]["kind"] == "kafka"  # the embedded default: the run's own Apache Kafka
    assert summary["pipelines"]["echo"]["status"]["missing"] == 0
    assert [t["ok"] for t in summary["thresholds"]] == [True, True]


@pytest.mark.kafka
@pytest.mark.slow
def test_run_threshold_fails_exit_3(tmp_path):
    path = _write(tmp_path, {"accuracy": "> 0.99"})
    result = ppipe("run", str(path), "--plain", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "out")
    summary = summary_of(tmp_path / "out")
    assert summary["passed"] is False
    assert summary["thresholds"][0]["ok"] is False


def _start_long_run(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """A 60 s run in a subprocess, returned once its events are flowing."""
    path = _write(tmp_path, {"missing_ratio": "< 0.01"}, duration="60s")
    proc = start_ppipe("run", str(path), "--plain", "--out", str(tmp_path / "out"), cwd=tmp_path)
    summary_path = tmp_path / "out" / "summary.json"
    wait_for_events(summary_path, more_than=50, timeout=60)
    return proc, summary_path


def _assert_nothing_left(folder: Path) -> None:
    """The pipelines' processes and the embedded broker are gone."""
    lines = (folder / "log.jsonl").read_text().splitlines()
    pids = [json.loads(line)["pid"] for line in lines if '"pipeline.started"' in line]
    assert pids, "the log names the pipeline's pid"
    broker = [json.loads(line)["bootstrap"] for line in lines if '"broker.started"' in line]
    assert broker, "the log names the embedded broker"
    import socket

    with pytest.raises(OSError):  # the embedded broker is gone too
        socket.create_connection(("127.0.0.1", int(broker[0].rsplit(":", 1)[1])), timeout=1).close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # nothing left running


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_signal_leaves_partial_result_and_exits_130(tmp_path, sig):
    """Ctrl+C, a kill, or a closed terminal (SIGHUP once orphaned the broker and pipelines):
    within 5 s the folder holds the partial result marked interrupted."""
    proc, summary_path = _start_long_run(tmp_path)
    proc.send_signal(sig)
    stopped_at = time.monotonic()
    while time.monotonic() - stopped_at < 5:
        summary = json.loads(summary_path.read_text())
        if summary.get("interrupted"):
            break
        time.sleep(0.05)
    assert summary.get("interrupted") and summary["complete"] is False, "no partial result within 5 s"
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - stopped_at < 15
    assert proc.returncode == 130, out + err
    summary = json.loads(summary_path.read_text())
    assert summary["complete"] is False
    assert summary["dispatch"]["events_sent"] > 50
    _assert_nothing_left(tmp_path / "out")


@pytest.mark.kafka
@pytest.mark.slow
def test_second_ctrl_c_stops_at_once_and_leaves_nothing(tmp_path):
    proc, summary_path = _start_long_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stopped_at = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - stopped_at < 3.0, "a second Ctrl+C must not wait for a clean stop"
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    summary = json.loads(summary_path.read_text())
    assert summary["complete"] is False and summary["dispatch"]["events_sent"] > 50
    _assert_nothing_left(tmp_path / "out")
