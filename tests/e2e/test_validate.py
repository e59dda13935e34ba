"""``ppipe validate`` checks a scenario against its data and this machine, as a user
runs it: a target or timestamp column the dataset does not have, a built-in dataset
that does not exist, a pipeline command that is not found. Each is one line naming
the file, the line and the key, with the closest real name, and exit 2; ``ppipe run``
says the same before it starts anything. A run folder's ``scenario.toml`` validates
and runs again from anywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT, ppipe, summary_of

SCENARIO = """
name = "checked"
[dataset]
{dataset}
[load]
profile = "constant"
rate = 50
duration = "2s"
drain = "3s"
[labels]
delay = "200ms"
[[pipelines]]
name = "echo"
runtime = "process"
command = {command}
[scoring]
deadline = "1s"
"""

IRIS = 'source = "csv"\npath = "data/iris.csv"\ntarget = "variety"\nloop = true'
ECHO = '["python", "-m", "ppipe_stream.examples.echo"]'


def scenario(folder: Path, dataset: str = IRIS, command: str = ECHO) -> Path:
    """``folder/scenario.toml`` beside ``folder/data/iris.csv``."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "scenarios" / "data" / "iris.csv", folder / "data" / "iris.csv")
    path = folder / "scenario.toml"
    path.write_text(SCENARIO.format(dataset=dataset, command=command))
    return path


def one_line(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("target, closest", [("varity", "variety"), ("nope", None)])
def test_a_target_column_the_csv_lacks(tmp_path, target, closest):
    path = scenario(tmp_path, dataset=IRIS.replace('"variety"', f'"{target}"'))
    line = one_line(ppipe("validate", "scenario.toml", cwd=tmp_path))
    assert f"scenario.toml:{line_of(path, 'target =')}:" in line
    assert f"{tmp_path / 'data' / 'iris.csv'}:1" in line  # the dataset file and its line
    assert f"`{target}`" in line and "$.dataset.target" in line
    assert "did you mean `" in line
    if closest:
        assert f"did you mean `{closest}`?" in line
    else:  # no close name: the closest still, and the real columns
        assert "variety" in line


def test_a_timestamp_column_the_csv_lacks(tmp_path):
    path = scenario(tmp_path, dataset=IRIS + '\ntimestamp = "sepal_lenght"')
    line = one_line(ppipe("validate", str(path), cwd=tmp_path))
    assert f":{line_of(path, 'timestamp =')}:" in line and "$.dataset.timestamp" in line
    assert "`sepal_lenght`" in line and "did you mean `sepal_length`?" in line
    assert "iris.csv:1" in line


def test_a_jsonl_first_record_names_its_line(tmp_path):
    data = tmp_path / "data" / "rows.jsonl"
    data.parent.mkdir(parents=True)
    data.write_text('\n\n{"x": 1, "label": "a"}\n{"x": 2, "label": "b"}\n')
    path = scenario(tmp_path, dataset='source = "jsonl"\npath = "data/rows.jsonl"\ntarget = "lable"')
    line = one_line(ppipe("validate", str(path), cwd=tmp_path))
    assert f"{data}:3" in line and "`lable`" in line and "did you mean `label`?" in line


@pytest.mark.parametrize("dataset, key, expected", [
    ('source = "sklearn"\nname = "irsi"', "name", "did you mean 'iris'?"),
    ('source = "river"\nname = "Phishingg"', "name", "did you mean 'phishing'?"),
    ('source = "synth"\ngenerator = "seaa"', "generator", "did you mean 'sea'?"),
])
def test_a_builtin_dataset_that_does_not_exist(tmp_path, dataset, key, expected):
    path = scenario(tmp_path, dataset=dataset)
    line = one_line(ppipe("validate", str(path), cwd=tmp_path))
    assert f":{line_of(path, dataset.splitlines()[1])}:" in line and f"$.dataset.{key}" in line
    assert expected in line


@pytest.mark.parametrize("command, shown", [
    ('["no-such-pipeline-program", "--fast"]', "'no-such-pipeline-program'"),
    ('["./bin/missing.sh"]', "bin/missing.sh"),
])
def test_a_process_command_that_is_not_found(tmp_path, command, shown):
    path = scenario(tmp_path, command=command)
    line = one_line(ppipe("validate", str(path), cwd=tmp_path))
    assert f":{line_of(path, 'command =')}:" in line and "$.pipelines[0].command" in line
    assert shown in line and "'echo'" in line and "not found" in line


def test_a_command_given_as_a_file_beside_the_scenario_is_found(tmp_path):
    script = tmp_path / "bin" / "pipeline.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexec python -m ppipe_stream.examples.echo\n")
    script.chmod(0o755)
    path = scenario(tmp_path, command='["./bin/pipeline.sh"]')
    result = ppipe("validate", str(path), cwd=tmp_path.parent)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_run_checks_the_data_before_it_starts_anything(tmp_path):
    scenario(tmp_path, dataset=IRIS.replace('"variety"', '"nope"'))
    line = one_line(ppipe("run", "scenario.toml", "--plain", cwd=tmp_path))
    assert "`nope`" in line and "iris.csv:1" in line and "$.dataset.target" in line
    assert not (tmp_path / "runs").exists()  # no run folder: no broker, no pipeline was started


@pytest.mark.slow
def test_a_run_folders_scenario_validates_and_runs_again_from_anywhere(tmp_path):
    project = tmp_path / "project"
    script = project / "echo_pipeline.py"  # a pipeline file beside the scenario, run by a relative path
    project.mkdir()
    script.write_text("import runpy\nrunpy.run_module('ppipe_stream.examples.echo', run_name='__main__')\n")
    scenario(project, command='["python", "echo_pipeline.py"]')
    first = ppipe("run", "project/scenario.toml", "--plain", "--out", "runs/first", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    copy = tmp_path / "runs" / "first" / "scenario.toml"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for where, name in ((elsewhere, str(copy)), (tmp_path / "runs", "first/scenario.toml")):
        checked = ppipe("validate", name, cwd=where)
        assert checked.returncode == 0, checked.stderr
        assert "ok" in checked.stdout
    again = ppipe("run", str(copy), "--plain", "--out", "second", cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    summary = summary_of(elsewhere / "second")
    assert summary["complete"] and summary["dispatch"]["events_sent"] >= 90, summary["dispatch"]
    # the copy of the copy reads the same files
    assert (elsewhere / "second" / "scenario.toml").read_text() == copy.read_text()
