"""``ppipe init`` as a new user meets it: it says up front that the scaffold needs Docker and
offers ``--runtime process``; the image installs what ``requirements.txt`` lists, though the
build has no network (a package added to requirements.txt and imported in main.py used to end
the run with ModuleNotFoundError)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import require_infra
from tests.helpers import ppipe, summary_of


def test_init_says_it_needs_docker_and_offers_process(tmp_path):
    created = ppipe("init", "mypipe", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "Docker engine" in created.stdout and "--runtime process" in created.stdout
    assert "wheels/" in created.stdout
    process = ppipe("init", "local", "--runtime", "process", cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    assert 'runtime = "process"' in (tmp_path / "local" / "scenario.toml").read_text()
    valid = ppipe("validate", "local/scenario.toml", cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr


@pytest.fixture
def docker_host() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///run/ppipe-docker.sock")
    if not Path(host.removeprefix("unix://")).exists():
        require_infra(f"no Docker engine at {host}")
    return host


@pytest.mark.docker
@pytest.mark.kafka
@pytest.mark.slow
def test_scaffold_installs_what_requirements_lists(tmp_path, docker_host):
    assert ppipe("init", "mypipe", cwd=tmp_path).returncode == 0
    folder = tmp_path / "mypipe"
    with open(folder / "requirements.txt", "a") as fh:
        fh.write("cachetools\n")
    main = (folder / "main.py").read_text()
    main = main.replace("from ppipe_stream.sdk import Pipeline",
                        "import cachetools\nfrom ppipe_stream.sdk import Pipeline\n\n"
                        "seen = cachetools.LRUCache(maxsize=8)")
    (folder / "main.py").write_text(main)
    scenario = (folder / "scenario.toml").read_text().replace('duration = "10s"', 'duration = "4s"')
    (folder / "scenario.toml").write_text(scenario)
    result = ppipe("run", "mypipe/scenario.toml", "--plain", "--out", str(tmp_path / "run"),
                   cwd=tmp_path, env={"DOCKER_HOST": docker_host}, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert any(p.name.startswith("cachetools-") for p in (folder / "wheels").iterdir()), \
        "the harness put the listed package into wheels/"
    summary = summary_of(tmp_path / "run")
    figures = summary["pipelines"]["mypipe"]
    assert figures["status"]["missing"] == 0 and figures["metrics"]["accuracy"] > 0.5
