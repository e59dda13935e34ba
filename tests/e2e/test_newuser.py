"""A new user's first hour, through the ``ppipe`` command in a subprocess: ``--out`` never
overwrites silently, ``--set`` / ``-e`` / ``--tag`` reach the run and are recorded with
its metadata, ``ppipe runs`` filters and finds ``--out`` runs, run names work where paths
do, an overlay report leaves A's own report alone, and a docker pipeline without an
engine is named in the error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli import _write
from tests.helpers import ROOT, CliResult, Pipeline, ppipe, summary_of


def _one_line_error(result: CliResult) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- 1. --out refuses a folder that holds anything ------------------------------------

def test_out_refuses_an_earlier_run_folder(tmp_path):
    earlier = tmp_path / "runs" / "base-20261201T184825"
    earlier.mkdir(parents=True)
    (earlier / "summary.json").write_text('{"run_id": "base-20261201T184825"}')
    path = _write(tmp_path, {"missing_ratio": "< 0.01"})
    line = _one_line_error(ppipe("run", str(path), "--out", str(earlier), cwd=tmp_path))
    assert str(earlier) in line and "--force" in line
    assert json.loads((earlier / "summary.json").read_text()) == {"run_id": "base-20261201T184825"}
    assert [p.name for p in earlier.iterdir()] == ["summary.json"], "nothing was written into it"


def test_out_refuses_an_unrelated_folder_and_a_file(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    path = _write(tmp_path, {"missing_ratio": "< 0.01"})
    line = _one_line_error(ppipe("run", str(path), "--out", str(mine), cwd=tmp_path))
    assert "not empty" in line and str(mine) in line
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    line = _one_line_error(ppipe("run", str(path), "--out", str(mine / "notes.txt"), cwd=tmp_path))
    assert "a file" in line


# -- 9. --set / -e errors --------------------------------------------------------------

@pytest.mark.parametrize(("args", "expected"), [
    (["--set", "load.rate=fast"], ["--set load.rate=fast", "$.load.rate"]),
    (["--set", "load.rat=5"], ["--set load.rat=5", "unknown key `rat`", "did you mean `rate`"]),
    (["--set", "load.rate.x=5"], ["--set load.rate.x=5", "$.load.rate", "not a table"]),
    (["--set", "pipelines.nosuch.env.A=1"], ["no table named 'nosuch'", "echo"]),
    (["--set", "pipelines[3].name=x"], ["[3] is not one of them"]),
    (["--set", "load.rate"], ["KEY.PATH=VALUE"]),
    (["-e", "1BAD=x"], ["-e '1BAD=x'", "NAME=VALUE"]),
    (["--tag", "=x"], ["--tag '=x'", "KEY=VALUE"]),
])
def test_bad_overrides_are_one_line_naming_the_path(tmp_path, args, expected):
    path = _write(tmp_path, {"missing_ratio": "< 0.01"})
    line = _one_line_error(ppipe("run", str(path), *args, cwd=tmp_path))
    for text in expected:
        assert text in line, line
    assert not (tmp_path / "runs").exists(), "a bad override starts nothing"


# -- 9, 10, 1 (--force), 3 and 4 (names), on one real run ------------------------------

@pytest.fixture(scope="module")
def tagged_run(tmp_path_factory):
    """``ppipe run`` with --set, -e and --tag, written with --out outside the runs dir."""
    where = tmp_path_factory.mktemp("newuser")
    path = _write(where, {"missing_ratio": "< 0.01"})
    out = where / "elsewhere" / "tagged"
    result = ppipe("run", str(path), "--plain", "--out", str(out),
                   "--set", "load.rate=50", "--set", 'load.duration=2s', "--set", "name=renamed",
                   "-e", "PPIPE_ECHO_ANSWER=setosa", "--tag", "team=ml", "--tag", "ticket=18",
                   cwd=where, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return where, out, summary_of(out)


@pytest.mark.kafka
@pytest.mark.slow
def test_overrides_reach_the_run_and_are_recorded(tagged_run):
    where, out, summary = tagged_run
    assert summary["scenario"] == "renamed" and summary["run_id"].startswith("renamed-")
    sent = summary["dispatch"]["events_sent"]
    assert 80 <= sent <= 130, f"--set load.rate=50 for 2s (+0.5 s warm-up) sent {sent}"
    status = summary["pipelines"]["echo"]["status"]
    assert status["correct"] > 0, "-e PPIPE_ECHO_ANSWER=setosa reached the pipeline"
    scenario = (out / "scenario.toml").read_text()
    assert "rate = 50" in scenario and 'PPIPE_ECHO_ANSWER = "setosa"' in scenario
    meta = summary["meta"]
    assert meta["overrides"] == ["load.rate=50", "load.duration=2s", "name=renamed"]
    assert meta["env_names"] == ["PPIPE_ECHO_ANSWER"]
    assert meta["tags"] == {"team": "ml", "ticket": "18"}


@pytest.mark.kafka
@pytest.mark.slow
def test_summary_carries_the_run_metadata(tagged_run):
    _, out, summary = tagged_run
    meta = summary["meta"]
    from ppipe_stream import __version__

    assert meta["ppipe_version"] == __version__
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert meta["git_commit"].startswith(head.stdout.strip())
    assert meta["python"] == ".".join(map(str, sys.version_info[:3]))
    import aiokafka

    assert meta["aiokafka"] == aiokafka.__version__
    assert meta["broker"].startswith("Apache Kafka ")  # the embedded default, and its Java
    assert meta["host"]["cores"] == os.cpu_count() and meta["host"]["memory_gib"] > 0
    assert meta["command_line"][:3] == ["ppipe", "run", str(out.parents[1] / "scenario.toml")]
    assert "--tag" in meta["command_line"] and "team=ml" in meta["command_line"]


@pytest.mark.kafka
@pytest.mark.slow
def test_runs_lists_out_runs_and_filters(tagged_run):
    where, out, summary = tagged_run
    name = summary["run_id"]
    listed = ppipe("runs", cwd=where)
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout, "an --out run is in the index"
    last_column = "".join(line.rsplit("│", 2)[1].strip() for line in listed.stdout.splitlines()
                          if line.startswith("│"))
    assert str(out) in last_column, "its folder is shown in full (it may wrap)"
    assert name in ppipe("runs", "--tag", "team=ml", cwd=where).stdout
    assert name not in ppipe("runs", "--tag", "team=web", cwd=where).stdout
    assert name in ppipe("runs", "--name", "renamed", cwd=where).stdout
    assert name not in ppipe("runs", "--name", "nothing-like-it", cwd=where).stdout
    assert _one_line_error(ppipe("runs", "--limit", "0", cwd=where))


@pytest.mark.kafka
@pytest.mark.slow
def test_report_and_tail_take_a_run_name(tagged_run):
    where, out, summary = tagged_run
    name = summary["run_id"]
    report = ppipe("report", name, cwd=where)
    assert report.returncode == 0, report.stderr
    assert report.stdout.strip() == str(out / "report.html")
    tail = ppipe("tail", name, cwd=where, timeout=60)
    assert tail.returncode == 0, tail.stderr
    assert name in tail.stdout and "echo" in tail.stdout
    line = _one_line_error(ppipe("report", "no-such-run", cwd=where))
    assert "no-such-run" in line and "ppipe runs" in line


@pytest.mark.kafka
@pytest.mark.slow
def test_overlay_report_leaves_a_own_report(tagged_run, tmp_path):
    _, out, summary = tagged_run
    other = tmp_path / "other"
    shutil.copytree(out, other)
    data = json.loads((other / "summary.json").read_text())
    data["run_id"] = "the-other-run"
    (other / "summary.json").write_text(json.dumps(data))
    own = (out / "report.html").read_bytes()
    own_charts = {p.name: p.read_bytes() for p in (out / "charts").glob("*.png")}
    result = ppipe("report", str(out), str(other), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = Path(result.stdout.strip().splitlines()[-1])
    assert page == out / "report-vs-other.html"
    assert "the-other-run" in page.read_text() and "(dashed)" in page.read_text()
    assert (out / "report.html").read_bytes() == own, "A's own report is untouched"
    assert {p.name: p.read_bytes() for p in (out / "charts").glob("*.png")} == own_charts


@pytest.mark.kafka
@pytest.mark.slow
def test_force_writes_over_an_earlier_run(tagged_run, tmp_path):
    where, out, summary = tagged_run
    earlier = tmp_path / "earlier"
    shutil.copytree(out, earlier)
    path = _write(tmp_path, {"missing_ratio": "< 0.01"})
    result = ppipe("run", str(path), "--plain", "--out", str(earlier), "--force",
                   "--set", "load.duration=1s", cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    replaced = summary_of(earlier)
    assert replaced["run_id"] != summary["run_id"] and replaced["scenario"] == "echo-e2e"


# -- 7. a docker pipeline without an engine is named ------------------------------------

def test_no_docker_engine_names_the_pipeline(tmp_path):
    path = _write(tmp_path, {"missing_ratio": "< 0.01"},
                  pipeline=Pipeline(name="my-model", runtime="docker", build="."))
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = ppipe("run", str(path), "--plain", "--out", str(tmp_path / "run"), cwd=tmp_path,
                   timeout=120, env={"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if "error" in line]
    assert error and "pipeline 'my-model'" in error[0] and "no Docker engine" in error[0], result.stderr
    assert "pipeline 'docker'" not in result.stderr
