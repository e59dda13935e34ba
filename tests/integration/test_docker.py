"""Pipelines in Docker containers, for real: the sandbox holds against a hostile
pipeline, limits and OOM kills are reported, replicas share a group, and
nothing the run created is left behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ppipe_stream.run.orchestration import run_scenario
from ppipe_stream.scenario import LoadedScenario
from tests.conftest import answer_dataset
from tests.integration.sandbox_checks import HostListener, leftovers, probes
from tests.helpers import (ROOT, Dataset, Fault, Kafka, Labels, Load, Pipeline, Scenario, Scoring,
                           ppipe, start_ppipe, summary_of, wait_for_events)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# the run's own broker with docker pipelines: tansu in a container on the sandbox
# network, or Apache Kafka on the host listening on the network's gateway
KINDS = {"tansu": "embedded-tansu", "kafka": "kafka"}


def scenario(tmp_path: Path, pipeline: Pipeline, *, count: int = 300, rate: int = 100,
             faults: list[Fault] | None = None, embedded: str | None = None) -> LoadedScenario:
    """Iris to one docker pipeline; its ``build`` is relative to scenarios/."""
    return Scenario(name="docker-test", seed=1, load=Load(rate=rate, count=count, drain="5s"),
                    labels=Labels(delay="500ms"), pipelines=[pipeline],
                    scoring=Scoring(deadline="2s"), kafka=Kafka(embedded=embedded),
                    faults=faults).loaded(tmp_path, filename="s.toml", base_dir=ROOT / "scenarios")


def run_file(tmp_path: Path, path: Path, *, timeout: float = 400) -> dict:
    """``ppipe run path`` as a user runs it; its summary (a traceback fails the test)."""
    result = ppipe("run", str(path), "--plain", "--out", str(tmp_path / "run"), cwd=tmp_path,
                   timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode in (0, 3), result.stdout[-3000:] + result.stderr[-3000:]
    return summary_of(tmp_path / "run")


@pytest.mark.asyncio
@pytest.mark.parametrize("embedded", list(KINDS))
async def test_hostile_pipeline_is_contained(docker_engine, tmp_path, embedded):
    """On each broker kind: the host's other ports (on the gateway, the default
    bridge and loopback) stay shut; only the broker's listener is reachable."""
    listener = HostListener()
    try:
        loaded = scenario(tmp_path, Pipeline(
            name="hostile", runtime="docker", build="../examples/hostile", pids=64, memory="256m",
            cpus=0.5, env={"PPIPE_HOSTILE": "probe", "PPIPE_HOSTILE_PORT": f"{listener.port}",
                           "PPIPE_HOSTILE_TARGETS": f"172.17.0.1:{listener.port},"
                                                    f"127.0.0.1:{listener.port}"}),
            count=100, embedded=embedded)
        outcome = await run_scenario(loaded, out=tmp_path / "run")
    finally:
        listener.close()
    assert outcome.complete
    assert outcome.summary["broker"]["kind"] == KINDS[embedded]
    by_kind = probes(tmp_path / "run" / "pipeline-hostile.log")
    assert by_kind["uid"][0]["uid"] == 10001 and by_kind["uid"][0]["blocked"]
    assert len(by_kind["write"]) == 3 and all(p["blocked"] for p in by_kind["write"])
    assert by_kind["scratch"][0]["blocked"] is False  # the tmpfs is there for scratch
    assert by_kind["capabilities"][0]["blocked"] and by_kind["no_new_privileges"][0]["blocked"]
    assert by_kind["docker_socket"][0]["blocked"]
    assert len(by_kind["connect"]) == 4 and all(p["blocked"] for p in by_kind["connect"]), by_kind["connect"]
    assert listener.accepted == 0
    quota, period = by_kind["cpu_limit"][0]["cpu_max"].split()
    assert int(quota) / int(period) == 0.5  # cpus = 0.5 is what the kernel enforces
    fork = by_kind["fork"][0]
    assert fork["blocked"] and fork["started"] < 64
    figures = outcome.summary["pipelines"]["hostile"]
    assert figures["status"]["missing"] == 0  # it still answered: contained, not broken
    assert leftovers(docker_engine, outcome.summary["run_id"]) == []


@pytest.mark.asyncio
async def test_oom_kill_is_reported(docker_engine, tmp_path):
    loaded = scenario(tmp_path, Pipeline(name="hog", runtime="docker", build="../examples/hostile",
                                         memory="128m", env={"PPIPE_HOSTILE": "oom"}),
                      count=600, rate=100)
    outcome = await run_scenario(loaded, out=tmp_path / "run")
    container = outcome.summary["pipelines"]["hog"]["container"]
    assert container["oom_killed"] is True and container["exit_code"] == 137
    assert outcome.summary["pipelines"]["hog"]["status"]["missing"] > 0
    log = (tmp_path / "run" / "log.jsonl").read_text()
    assert '"pipeline.exited_early"' in log
    assert leftovers(docker_engine, outcome.summary["run_id"]) == []


@pytest.mark.asyncio
async def test_replicas_share_the_group_and_stats_reach_the_timeline(docker_engine, tmp_path):
    loaded = scenario(tmp_path, Pipeline(name="echo", runtime="docker", build="../examples/echo",
                                         replicas=2, cpus=0.5), count=400)
    outcome = await run_scenario(loaded, out=tmp_path / "run")
    figures = outcome.summary["pipelines"]["echo"]
    assert figures["status"]["duplicate"] == 0 and figures["status"]["missing"] == 0
    logs = sorted(p.name for p in (tmp_path / "run").glob("pipeline-echo-*.log"))
    assert logs == ["pipeline-echo-0.log", "pipeline-echo-1.log"]
    timeline = (tmp_path / "run" / "timeline.csv").read_text().splitlines()
    header = timeline[0].split(",")
    memory = [row.split(",")[header.index("memory_mib")] for row in timeline[1:]]
    assert any(value and float(value) > 1 for value in memory)


@pytest.mark.parametrize("name", ["docker-quickstart", "leaderboard"])
def test_shipped_docker_scenarios_run_green(docker_engine, tmp_path, name):
    result = ppipe("run", str(ROOT / "scenarios" / f"{name}.toml"), "--plain", "--out",
                   str(tmp_path / "run"), cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = summary_of(tmp_path / "run")
    assert summary["complete"] and summary["passed"]
    assert len(summary["pipelines"]) == (1 if name == "docker-quickstart" else 4)
    assert summary["broker"]["kind"] == "kafka"  # the embedded default, docker pipelines or not
    for figures in summary["pipelines"].values():
        assert figures["status"]["missing"] == 0 and figures["container"]["exit_code"] is None
    assert leftovers(docker_engine, summary["run_id"]) == []


def test_init_scaffold_runs_as_generated(docker_engine, tmp_path):
    created = ppipe("init", "mypipe", cwd=tmp_path, timeout=400)
    assert created.returncode == 0, created.stderr
    assert sorted(p.name for p in (tmp_path / "mypipe").iterdir()) == [
        "Dockerfile", "main.py", "requirements.txt", "scenario.toml", "wheels"]
    again = ppipe("init", "mypipe", cwd=tmp_path, timeout=400)
    assert again.returncode == 2 and "already exists" in again.stderr
    result = ppipe("run", "mypipe/scenario.toml", "--plain", "--out", str(tmp_path / "run"),
                   cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = summary_of(tmp_path / "run")
    figures = summary["pipelines"]["mypipe"]
    assert figures["status"]["missing"] == 0 and figures["metrics"]["accuracy"] > 0.6


def test_clean_removes_leftovers(docker_engine, tmp_path):
    from ppipe_stream.runtime.sandbox import TANSU_IMAGE, ensure_tansu_image

    ensure_tansu_image(docker_engine)
    labels = {"ppipe.run": "leftover-test"}
    network = docker_engine.networks.create("ppipe-leftover-test", internal=True, labels=labels)
    container = docker_engine.containers.create(TANSU_IMAGE, command=["/tansu", "--help"],
                                                labels=labels, network="ppipe-leftover-test")
    rule = ["INPUT", "-i", "ppb999999999", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]
    subprocess.run(["iptables", "-I", *rule], check=True)
    # a cluster's sandbox writes in the engine's forwarding chain too
    subprocess.run(["iptables", "-I", "DOCKER-USER", "-i", "ppb999999999", "-j", "DROP"], check=True)
    result = ppipe("clean", cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr
    assert leftovers(docker_engine, "leftover-test") == []
    assert "ppb999999999" not in subprocess.run(["iptables", "-S"], capture_output=True,
                                                text=True).stdout
    del network, container


@pytest.mark.asyncio
async def test_restart_policy_restarts_and_is_reported(docker_engine, tmp_path):
    loaded = scenario(tmp_path, Pipeline(name="hog", runtime="docker", build="../examples/hostile",
                                         memory="128m", restart="on-failure", max_restarts=2,
                                         env={"PPIPE_HOSTILE": "oom"}), count=800, rate=100)
    outcome = await run_scenario(loaded, out=tmp_path / "run")
    container = outcome.summary["pipelines"]["hog"]["container"]
    assert container["restarts"] >= 1 and container["oom_killed"] is True
    assert '"pipeline.restarted"' in (tmp_path / "run" / "log.jsonl").read_text()
    assert leftovers(docker_engine, outcome.summary["run_id"]) == []


def test_sandbox_network_has_no_way_out(docker_engine):
    """The pipelines' network is internal (Docker installs no route out of it) and the
    host drops new connections from its bridge; the hostile test proves the host side."""
    from ppipe_stream.runtime.sandbox import SandboxNetwork

    sandbox = SandboxNetwork(docker_engine, "no-way-out-test")
    try:
        sandbox.create()
        sandbox.network.reload()
        assert sandbox.network.attrs["Internal"] is True
        rules = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True).stdout
        assert f"-A INPUT -i {sandbox.bridge} -m conntrack --ctstate NEW -j DROP" in rules
        members = sandbox.network.attrs["Containers"]
        assert len(members) == 1  # the broker, nothing else, before pipelines join
    finally:
        sandbox.remove()
    assert leftovers(docker_engine, "no-way-out-test") == []


@pytest.mark.asyncio
async def test_faults_on_a_docker_pipeline_are_injected_detected_and_reported(docker_engine, tmp_path):
    """Packet loss inside the container's network namespace, a freeze (docker pause) seen
    as a hang within 2 s, and a kill brought back by the engine's restart policy. On
    tansu, whose first second is as fast as the rest: the loss-free baseline is the
    run's first second, which a cold Apache Kafka node (its JIT) slows."""
    loaded = scenario(tmp_path, Pipeline(name="echo", runtime="docker", build="../examples/echo",
                                         restart="on-failure"),
                      faults=[Fault(at="1s", action="network", pipeline="echo", loss=0.4,
                                    duration="3s"),
                              Fault(at="8s", action="pause", pipeline="echo", duration="2s"),
                              Fault(at="12s", action="kill", pipeline="echo")],
                      count=800, rate=50, embedded="tansu")
    outcome = await run_scenario(loaded, out=tmp_path / "run")
    summary = outcome.summary
    kinds = [(i["kind"], i["target"]) for i in summary["incidents"]]
    assert kinds.count(("fault", "echo")) == 3 and kinds.count(("fault_end", "echo")) == 2, kinds
    # the frozen pipeline is hung within 2 s of the freeze, or was hung already: 40% loss
    # silences it too, and its TCP connections may still be backing off when the freeze comes
    incidents = summary["incidents"]
    fresh = [i for i in incidents if i["kind"] == "pipeline_hang" and 8.0 < i["t_s"] < 10.5
             and i["detected_after_s"] <= 2.0]
    before = [i for i in incidents if i["t_s"] <= 8.0 and i["kind"] in ("pipeline_hang", "pipeline_recovered")]
    still_hung = bool(before) and before[-1]["kind"] == "pipeline_hang"
    assert fresh or still_hung, incidents
    exits = [i for i in summary["incidents"] if i["kind"] == "pipeline_exit"]
    assert exits and exits[0]["detected_after_s"] < 2.0 and exits[0]["t_s"] >= 11.5, exits
    assert summary["pipelines"]["echo"]["container"]["restarts"] >= 1
    import csv

    with open(outcome.folder / "timeline.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    def p99(lo: float, hi: float) -> float:
        values = [float(r["latency_p99_ms"]) for r in rows
                  if lo <= float(r["time_s"]) < hi and r["latency_p99_ms"]]
        return max(values, default=0.0)
    # 40% of packets dropped both ways: TCP retransmits (200 ms+) show in the tail. A
    # window holds the answers read in it: those held up arrive before the next fault (8 s)
    assert p99(1.5, 8.0) > 150 > p99(0.0, 1.0), (p99(0.0, 1.0), p99(1.5, 8.0))
    assert leftovers(docker_engine, summary["run_id"]) == []


@pytest.mark.parametrize("hard", [False, True], ids=["ctrl-c", "ctrl-c-twice"])
def test_interrupt_leaves_no_container_network_or_broker(docker_engine, tmp_path, hard):
    """Ctrl+C (once: a clean stop; twice: at once) in the middle of a docker run: a
    readable partial result, and nothing the run created is left running."""
    import signal
    import time

    scenario_path = ROOT / "scenarios" / "docker-quickstart.toml"
    proc = start_ppipe("run", str(scenario_path), "--plain", "--out", str(tmp_path / "run"),
                       cwd=tmp_path)
    summary_path = tmp_path / "run" / "summary.json"
    wait_for_events(summary_path, more_than=50, timeout=120)
    proc.send_signal(signal.SIGINT)
    if hard:
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    summary = summary_of(tmp_path / "run")
    assert summary["complete"] is False and summary["dispatch"]["events_sent"] > 50
    assert leftovers(docker_engine, summary["run_id"]) == []


@pytest.mark.parametrize("embedded", list(KINDS))
def test_faulty_container_every_count_exact(docker_engine, tmp_path, embedded):
    """The faulty example in a container, on each broker kind the run owns: every
    count is known from its rules (as for the process pipeline in test_run.py)."""
    answer_dataset(tmp_path / "answers.csv", 200)
    faulty = Pipeline(name="faulty", runtime="docker", build=str(ROOT / "examples" / "echo"),
                      command=["python3", "-m", "ppipe_stream.examples.faulty"])
    path = Scenario(name="faulty-docker", seed=1, dataset=Dataset(path="answers.csv", target="label"),
                    load=Load(rate=100, count=200, drain="4s"), labels=Labels(delay="never"),
                    pipelines=[faulty], scoring=Scoring(task="classification", deadline="500ms"),
                    kafka=Kafka(embedded=embedded, partitions=2)).write(tmp_path)
    summary = run_file(tmp_path, path)
    assert summary["complete"] and summary["broker"]["kind"] == KINDS[embedded]
    assert summary["dispatch"]["events_sent"] == 200
    assert summary["pipelines"]["faulty"]["status"] == {
        "correct": 140, "incorrect": 20, "deadline_exceeded": 20, "missing": 20,
        "syntax_error": 40, "duplicate": 20, "unknown": 20,
    }
    assert leftovers(docker_engine, summary["run_id"]) == []


def test_broker_faults_with_a_docker_pipeline(docker_engine, tmp_path):
    """broker_restart and broker_stop on the run's own Apache Kafka while a container
    pipeline consumes from it: both outages reported, every event answered."""
    echo = Pipeline(name="echo", runtime="docker", build=str(ROOT / "examples" / "echo"))
    path = Scenario(name="docker-broker-faults", seed=5,
                    load=Load(rate=100, duration="14s", drain="15s"), labels=Labels(delay="never"),
                    pipelines=[echo], scoring=Scoring(task="classification", deadline="30s"),
                    kafka=Kafka(embedded="kafka", partitions=2),
                    faults=[Fault(at="2s", action="broker_restart"),
                            Fault(at="7s", action="broker_stop", duration="2s")]).write(tmp_path)
    summary = run_file(tmp_path, path)
    assert summary["complete"], summary.get("error")
    assert summary["broker"]["kind"] == "kafka"
    outages = summary["broker"]["outages"]
    assert len(outages) == 2 and all(o["ended"] for o in outages), outages
    assert [f["action"] for f in summary["faults"]] == ["broker_restart", "broker_stop"]
    figures = summary["pipelines"]["echo"]
    assert figures["status"]["missing"] == 0, figures["status"]
    assert figures["predictions"] == summary["dispatch"]["events_sent"]
    assert leftovers(docker_engine, summary["run_id"]) == []
