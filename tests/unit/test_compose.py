"""compose/*.yml: valid for the compose tool, documented, and consistent with the
scenario the harness service runs. No image registry is reachable here, so the
services are not started: ``config`` validates them as compose would."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ppipe_stream.scenario import ExternalPipeline, load_scenario
from tests.conftest import compose_tool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
FILES = {
    "kafka.yml": {"kafka"},
    "kafka-cluster.yml": {"kafka-1", "kafka-2", "kafka-3"},
    "harness.yml": {"kafka", "harness", "echo"},
}



@pytest.mark.parametrize("name", sorted(FILES))
def test_compose_file_is_valid(name, tmp_path):
    compose = compose_tool()
    path = COMPOSE / name
    check = subprocess.run([*compose, "-f", str(path), "config", "-q"], capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    services = subprocess.run([*compose, "-f", str(path), "config", "--services"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) == FILES[name]


@pytest.mark.parametrize("name", sorted(FILES))
def test_compose_file_says_how_to_use_it(name):
    header = []
    for line in (COMPOSE / name).read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert f"docker compose -f compose/{name} up" in text
    assert "down" in text


def test_harness_scenario_matches_the_services():
    loaded = load_scenario(COMPOSE / "echo-external.toml")  # the dataset path resolves too
    scenario = loaded.scenario
    externals = [p for p in scenario.pipelines if isinstance(p, ExternalPipeline)]
    assert [p.name for p in externals] == ["echo"]
    assert scenario.kafka.bootstrap == "kafka:19092"
    harness = (COMPOSE / "harness.yml").read_text()
    assert "compose/echo-external.toml" in harness
    assert "/runs/compose/pipeline-echo.env" in harness  # the file ExternalRunner writes
    assert "INTERNAL://kafka:19092" in (COMPOSE / "kafka.yml").read_text()


def test_harness_dockerfile_copies_what_exists():
    for line in (COMPOSE / "Dockerfile.harness").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
