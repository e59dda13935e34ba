"""Pipelines in Docker containers, for real: the sandbox holds against a hostile
pipeline, limits and OOM kills are reported, replicas share a group, and
nothing the run created is left behind."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from ppipe_stream.errors import PipelineError
from ppipe_stream.run import run_scenario
from ppipe_stream.scenario import loads_scenario
from tests.conftest import require_infra

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def docker_engine():
    try:
        from ppipe_stream.runtime.docker import docker_client

        client = docker_client()
    except PipelineError as exc:
        require_infra(f"no Docker engine: {exc}")
    yield client
    client.close()


def scenario(tmp_path: Path, pipelines: str, *, count: int = 300, rate: int = 100,
             thresholds: str = "") -> object:
    text = f"""
name = "docker-test"
seed = 1
[dataset]
source = "csv"
path = "{ROOT / 'scenarios' / 'data' / 'iris.csv'}"
target = "variety"
loop = true
[load]
profile = "constant"
rate = {rate}
count = {count}
drain = "5s"
[labels]
delay = "500ms"
{pipelines}
[scoring]
deadline = "2s"
[thresholds]
{thresholds}
"""
    return loads_scenario(text, file=str(tmp_path / "s.toml"), base_dir=ROOT / "scenarios")


def leftovers(client, run_id: str) -> list[str]:
    label = f"ppipe.run={run_id}"
    found = [c.name for c in client.containers.list(all=True, filters={"label": label})]
    found += [n.name for n in client.networks.list(filters={"label": label})]
    rules = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True).stdout
    found += [line for line in rules.splitlines() if "ppb" in line]
    return found


class HostListener:
    """A TCP listener on every host address: a pipeline must never reach it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.mark.asyncio
async def test_hostile_pipeline_is_contained(docker_engine, tmp_path):
    listener = HostListener()
    try:
        loaded = scenario(tmp_path, f"""
[[pipelines]]
name = "hostile"
runtime = "docker"
build = "../examples/hostile"
pids = 64
memory = "256m"
env = {{PPIPE_HOSTILE = "probe", PPIPE_HOSTILE_PORT = "{listener.port}", PPIPE_HOSTILE_TARGETS = "172.17.0.1:{listener.port}"}}
""", count=100)
        outcome = await run_scenario(loaded, out=tmp_path / "run")
    finally:
        listener.close()
    assert outcome.complete
    probes = [json.loads(line) for line in (tmp_path / "run" / "pipeline-hostile.log").read_text().splitlines()
              if line.startswith('{"probe"')]
    by_kind: dict[str, list[dict]] = {}
    for probe in probes:
        by_kind.setdefault(probe["probe"], []).append(probe)
    assert by_kind["uid"][0]["uid"] == 10001 and by_kind["uid"][0]["blocked"]
    assert len(by_kind["write"]) == 3 and all(p["blocked"] for p in by_kind["write"])
    assert by_kind["scratch"][0]["blocked"] is False  # the tmpfs is there for scratch
    assert by_kind["capabilities"][0]["blocked"] and by_kind["no_new_privileges"][0]["blocked"]
    assert by_kind["docker_socket"][0]["blocked"]
    assert len(by_kind["connect"]) == 3 and all(p["blocked"] for p in by_kind["connect"])
    assert listener.accepted == 0
    fork = by_kind["fork"][0]
    assert fork["blocked"] and fork["started"] < 64
    figures = outcome.summary["pipelines"]["hostile"]
    assert figures["status"]["missing"] == 0  # it still answered: contained, not broken
    assert leftovers(docker_engine, outcome.summary["run_id"]) == []


@pytest.mark.asyncio
async def test_oom_kill_is_reported(docker_engine, tmp_path):
    loaded = scenario(tmp_path, """
[[pipelines]]
name = "hog"
runtime = "docker"
build = "../examples/hostile"
memory = "128m"
env = {PPIPE_HOSTILE = "oom"}
""", count=600, rate=100)
    outcome = await run_scenario(loaded, out=tmp_path / "run")
    container = outcome.summary["pipelines"]["hog"]["container"]
    assert container["oom_killed"] is True and container["exit_code"] == 137
    assert outcome.summary["pipelines"]["hog"]["status"]["missing"] > 0
    log = (tmp_path / "run" / "log.jsonl").read_text()
    assert '"pipeline.exited_early"' in log
    assert leftovers(docker_engine, outcome.summary["run_id"]) == []


@pytest.mark.asyncio
async def test_replicas_share_the_group_and_stats_reach_the_timeline(docker_engine, tmp_path):
    loaded = scenario(tmp_path, """
[[pipelines]]
name = "echo"
runtime = "docker"
build = "../examples/echo"
replicas = 2
cpus = 0.5
""", count=400)
    outcome = await run_scenario(loaded, out=tmp_path / "run")
    figures = outcome.summary["pipelines"]["echo"]
    assert figures["status"]["duplicate"] == 0 and figures["status"]["missing"] == 0
    logs = sorted(p.name for p in (tmp_path / "run").glob("pipeline-echo-*.log"))
    assert logs == ["pipeline-echo-0.log", "pipeline-echo-1.log"]
    timeline = (tmp_path / "run" / "timeline.csv").read_text().splitlines()
    header = timeline[0].split(",")
    memory = [row.split(",")[header.index("memory_mib")] for row in timeline[1:]]
    assert any(value and float(value) > 1 for value in memory)
