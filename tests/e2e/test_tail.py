"""``ppipe tail`` as a new user meets it: a run that is not there is one line and exit 2
(it used to wait, silently, forever), ``--wait`` waits for it, and a remote tail starts at
the run's latest frame, not at the oldest one on the topic."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import CliResult, Kafka, Load, Scenario, ppipe, start_ppipe, summary_of


def _scenario(folder: Path, duration: str, bootstrap: str = "embedded") -> Path:
    return Scenario(name="tailme", seed=2,
                    load=Load(rate=100, duration=duration, warmup="500ms", drain="2s"),
                    kafka=Kafka(bootstrap=bootstrap)).write(folder, "tailme.toml")


def _one_line_exit_2(result: CliResult) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_tail_of_a_missing_folder_is_one_line(tmp_path):
    started = time.monotonic()
    line = _one_line_exit_2(ppipe("tail", "runs/nope", cwd=tmp_path, timeout=30))
    assert time.monotonic() - started < 20
    assert "runs/nope" in line and "--wait" in line
    (tmp_path / "plain").mkdir()
    line = _one_line_exit_2(ppipe("tail", "plain", cwd=tmp_path, timeout=30))
    assert "not a run folder" in line


@pytest.mark.kafka
@pytest.mark.slow
def test_tail_of_a_missing_run_id_is_one_line(tansu_broker, tmp_path):
    started = time.monotonic()
    result = ppipe("tail", "--bootstrap", tansu_broker.bootstrap, "--run-id", "nosuchrun",
                   cwd=tmp_path, timeout=60)
    line = _one_line_exit_2(result)
    assert time.monotonic() - started < 30
    assert "nosuchrun" in line and "ppipe.nosuchrun.scores" in line and "--wait" in line
    assert "not found in cluster metadata" not in result.stderr + result.stdout


@pytest.mark.kafka
@pytest.mark.slow
def test_tail_wait_waits_for_the_run_to_appear(tmp_path):
    tail = start_ppipe("tail", "--wait", str(tmp_path / "later"), cwd=tmp_path)
    try:
        time.sleep(3)
        assert tail.poll() is None, "--wait waits for a run that has not started"
        run = ppipe("run", str(_scenario(tmp_path, "2s")), "--plain", "--out",
                    str(tmp_path / "later"), cwd=tmp_path, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        out, err = tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0, err
    assert "done" in out and "echo" in out


@pytest.mark.kafka
@pytest.mark.slow
def test_remote_tail_starts_at_the_latest_frame(tansu_broker, tmp_path):
    run = ppipe("run", str(_scenario(tmp_path, "4s", tansu_broker.bootstrap)),
                "--plain", "--out", str(tmp_path / "run"), cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    run_id = summary_of(tmp_path / "run")["run_id"]
    tail = ppipe("tail", "--bootstrap", tansu_broker.bootstrap, "--run-id", run_id, cwd=tmp_path,
                 timeout=60)
    assert tail.returncode == 0, tail.stderr
    first = tail.stdout.splitlines()[0]
    assert first.startswith(f"{run_id} done"), f"the first line is the latest frame, not the first: {first}"
