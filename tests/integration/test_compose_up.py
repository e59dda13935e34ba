"""compose/*.yml brought up for real, used through the ``ppipe`` command, and brought
down with ``down -v``: the quickstart on compose/kafka.yml, a broker of
compose/kafka-cluster.yml stopped mid-run, and compose/harness.yml running the
harness and the echo pipeline as containers.

No registry is reachable here, so the images are the offline equivalents
``ppipe images build`` makes (once per session; cached by the engine after). Each
test's compose project has its own name and host ports, and ends with nothing of
the project left: no container, network or volume with its label."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ppipe_stream.brokers import free_port
from tests.conftest import compose_tool, require_infra

pytestmark = [pytest.mark.kafka, pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
PROJECT_LABEL = "com.docker.compose.project"


def _ppipe(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ppipe_stream", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="session")
def compose_images(docker_engine) -> dict[str, str]:
    """The variables `ppipe images build` prints, as a user gets them."""
    for tool in ("debootstrap", "mvn"):
        if shutil.which(tool) is None:
            require_infra(f"the offline compose images need {tool}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    built = _ppipe("images", "build", env=env, timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    variables = {}
    for line in built.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        variables[name] = value.strip("'")
    assert set(variables) == {"PPIPE_KAFKA_IMAGE", "PPIPE_BASE_IMAGE", "PPIPE_PIP_ARGS"}, built.stdout
    return variables


class Project:
    """One compose project under a name of its own; ``down -v`` and the check that
    nothing with its label is left run in :meth:`close`."""

    def __init__(self, engine, file: str, env: dict[str, str]) -> None:
        self.engine, self.file = engine, COMPOSE / file
        self.name = f"ppipe-test-{uuid.uuid4().hex[:10]}"
        self.env = {**os.environ, **env, "COMPOSE_PROJECT_NAME": self.name}
        self.tool = compose_tool()

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.tool, "-p", self.name, "-f", str(self.file), *args],
                              capture_output=True, text=True, env=self.env, timeout=timeout, cwd=ROOT)
        if check:
            assert done.returncode == 0, f"compose {' '.join(args)}: {done.stderr[-3000:]}"
        return done

    def containers(self, **filters):
        return self.engine.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.name}",
                                                              **filters})

    def wait_healthy(self, services: set[str], timeout_s: float = 300) -> None:
        start = time.monotonic()
        deadline = start + timeout_s
        while True:
            health = {}
            for container in self.containers():
                state = container.attrs["State"]
                health[container.labels["com.docker.compose.service"]] = state.get("Health", {}).get(
                    "Status", state["Status"])
            if all(health.get(service) == "healthy" for service in services):
                print(f"\n{self.file.name}: healthy {time.monotonic() - start:.1f}s after up")
                return
            assert time.monotonic() < deadline, f"not healthy after {timeout_s}s: {health}"
            time.sleep(1)

    def close(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10")
        label = {"label": f"{PROJECT_LABEL}={self.name}"}
        left = {
            "containers": [c.name for c in self.engine.containers.list(all=True, filters=label)],
            "networks": [n.name for n in self.engine.networks.list(filters=label)],
            "volumes": [v.name for v in self.engine.volumes.list(filters=label)],
        }
        assert left == {"containers": [], "networks": [], "volumes": []}, left


@pytest.fixture
def project(docker_engine, compose_images):
    """``project(file, **variables)`` starts nothing itself; every project made is
    brought down at the end, even when the test failed."""
    made: list[Project] = []

    def make(file: str, **variables: str) -> Project:
        made.append(Project(docker_engine, file, {**compose_images, **variables}))
        return made[-1]

    yield make
    for each in made:
        each.close()


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


# The quickstart's thresholds (latency p99, and accuracy, which late answers lower) hold
# on an idle machine only; this 2-core one is shared with other tests, so these runs set
# `thresholds={}` and are judged by their counts.
NO_THRESHOLDS = ("--set", "thresholds={}")


def test_quickstart_runs_on_kafka_yml(project, tmp_path):
    port = free_port()
    kafka = project("kafka.yml", PPIPE_KAFKA_PORT=str(port))
    kafka.compose("up", "-d")
    kafka.wait_healthy({"kafka"})
    out = tmp_path / "run"
    run = _ppipe("run", "scenarios/quickstart.toml", "--set", f"kafka.bootstrap=127.0.0.1:{port}",
                 "--set", "load.duration=5s", "--set", "load.warmup=0s", *NO_THRESHOLDS,
                 "--out", str(out), "--plain",
                 env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-3000:]
    summary = _summary(out)
    assert summary["complete"], summary["outcome"]
    assert summary["broker"]["bootstrap"] == f"127.0.0.1:{port}"
    assert summary["dispatch"]["events_sent"] == 200 * 5
    status = summary["pipelines"]["river-logreg"]["status"]
    assert status["correct"] + status["incorrect"] + status["deadline_exceeded"] == 200 * 5, status
    assert (status["missing"], status["syntax_error"], status["duplicate"], status["unknown"]) == (0, 0, 0, 0)


def test_cluster_broker_stopped_mid_run_loses_nothing(project, tmp_path):
    ports = {n: free_port() for n in (1, 2, 3)}
    cluster = project("kafka-cluster.yml", **{f"PPIPE_KAFKA_{n}_PORT": str(p) for n, p in ports.items()})
    cluster.compose("up", "-d")
    cluster.wait_healthy({"kafka-1", "kafka-2", "kafka-3"})
    bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports.values())
    rate, seconds = 200, 30  # the stop lands mid-stream even on a loaded machine (13 s at load 29)
    out = tmp_path / "run"
    run = subprocess.Popen(
        [sys.executable, "-m", "ppipe_stream", "run", "scenarios/quickstart.toml", "--out", str(out),
         "--plain", "--set", f"kafka.bootstrap={bootstrap}", "--set", "kafka.partitions=3",
         "--set", "kafka.replication_factor=3", "--set", 'kafka.acks="all"',
         "--set", "kafka.idempotent=true", "--set", f"load.duration={seconds}s", "--set", "load.warmup=0s",
         "--set", "load.drain=20s", *NO_THRESHOLDS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        log = out / "log.jsonl"
        deadline = time.monotonic() + 120
        while not (log.exists() and '"dispatch.started"' in log.read_text()):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the run did not start dispatching"
            time.sleep(0.2)
        # a clean stop, as the file's header shows; the broker goes a few seconds later
        # (the compose tool's start-up, then Kafka's controlled shutdown), mid-stream
        cluster.compose("stop", "kafka-2")
        stdout, stderr = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    states = {c.labels["com.docker.compose.service"]: c.status for c in cluster.containers()}
    assert states == {"kafka-1": "running", "kafka-2": "exited", "kafka-3": "running"}, states
    assert run.returncode == 0, stderr[-3000:]
    summary = _summary(out)
    assert summary["complete"], summary["outcome"]
    # the run saw kafka-2 go while it was sending, and not come back
    # (a loaded machine may also show short outages of any node, before or during the run)
    outages = [o for o in summary["broker"]["outages"] if o["node"] == f"127.0.0.1:{ports[2]}"]
    assert outages and not outages[-1]["ended"], summary["broker"]
    outage = outages[-1]
    assert 0 < outage["start_s"] < seconds, summary["broker"]
    assert summary["dispatch"]["events_sent"] == rate * seconds
    assert summary["dispatch"]["labels_sent"] == rate * seconds
    status = summary["pipelines"]["river-logreg"]["status"]
    print(f"\nkafka-2 stopped at {outage['start_s']} s of {seconds}: {status}")
    assert status["correct"] + status["incorrect"] + status["deadline_exceeded"] == rate * seconds, status
    assert (status["missing"], status["syntax_error"], status["duplicate"], status["unknown"]) == (0, 0, 0, 0)


def test_harness_yml_runs_harness_and_pipeline_as_containers(project, docker_engine, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    image = f"ppipe-harness:test-{uuid.uuid4().hex[:10]}"
    harness = project("harness.yml", PPIPE_KAFKA_PORT=str(free_port()), PPIPE_RUNS_DIR=str(runs),
                      PPIPE_HARNESS_IMAGE=image, PPIPE_RUN_ARGS="--set load.duration=6s")
    try:
        up = harness.compose("up", "--build", "--exit-code-from", "harness", timeout=600, check=False)
        exits = {c.labels["com.docker.compose.service"]: c.attrs["State"]["ExitCode"]
                 for c in harness.containers(status="exited")}
    finally:
        import docker.errors

        harness.close()
        try:
            docker_engine.images.remove(image, force=True)
        except docker.errors.ImageNotFound:
            pass
    assert up.returncode == 0, (up.stdout + up.stderr)[-4000:]
    assert exits.get("harness") == 0 and "echo" in exits, exits  # both ran as containers, and ended
    summary = _summary(runs / "compose")
    assert summary["complete"] and summary["passed"], summary["outcome"]
    assert summary["broker"]["bootstrap"] == "kafka:19092"
    assert summary["dispatch"]["events_sent"] == 100 * 6
    status = summary["pipelines"]["echo"]["status"]
    assert status["correct"] + status["incorrect"] + status["deadline_exceeded"] == 100 * 6, status
    assert (status["missing"], status["syntax_error"], status["duplicate"], status["unknown"]) == (0, 0, 0, 0)
