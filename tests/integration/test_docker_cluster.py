"""Docker pipelines on an existing cluster (``[kafka] bootstrap = "host:port"``), for
real: an Apache Kafka node the test starts on a host address the containers can
route to (the engine's default bridge, 172.17.0.1 on a stock engine), a
non-internal sandbox network whose forwarding and host ports are shut except
for that broker, exact counts, and a metadata change let through."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest

from ppipe_stream.brokers import start_kafka
from ppipe_stream.runtime.egress import BrokerAddress, EgressWatch
from tests.conftest import answer_dataset
from tests.helpers import (ROOT, Dataset, Kafka, Labels, Load, Pipeline, Scenario, Scoring, Security,
                           ppipe, summary_of)
from tests.integration.sandbox_checks import HostListener, leftovers, probes

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def routed_kafka(docker_engine, tmp_path_factory):
    """A single Apache Kafka node listening on the default bridge's gateway: an
    address of this host that is not loopback, as a cluster's would be."""
    ipam = docker_engine.networks.get("bridge").attrs["IPAM"]["Config"][0]
    broker = start_kafka(host=ipam["Gateway"], log_dir=tmp_path_factory.mktemp("routed-kafka"))
    yield broker
    broker.stop()


def run(tmp_path: Path, pipeline: Pipeline, bootstrap: str, **scenario) -> dict:
    path = Scenario(name="docker-cluster", seed=1, labels=Labels(delay="never"), pipelines=[pipeline],
                    kafka=Kafka(bootstrap=bootstrap, partitions=2), **scenario).write(tmp_path)
    result = ppipe("run", str(path), "--plain", "--out", str(tmp_path / "run"), cwd=tmp_path,
                   timeout=400)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode in (0, 3), result.stdout[-3000:] + result.stderr[-3000:]
    return summary_of(tmp_path / "run")


def test_faulty_container_on_a_cluster_every_count_exact(docker_engine, routed_kafka, tmp_path):
    answer_dataset(tmp_path / "answers.csv", 200)
    faulty = Pipeline(name="faulty", runtime="docker", build=str(ROOT / "examples" / "echo"),
                      command=["python3", "-m", "ppipe_stream.examples.faulty"])
    summary = run(tmp_path, faulty, routed_kafka.bootstrap,
                  dataset=Dataset(path="answers.csv", target="label"),
                  load=Load(rate=100, count=200, drain="4s"),
                  scoring=Scoring(task="classification", deadline="500ms"))
    assert summary["complete"] and summary["broker"]["kind"] == "kafka"
    assert summary["broker"]["bootstrap"] == routed_kafka.bootstrap
    assert summary["pipelines"]["faulty"]["status"] == {
        "correct": 140, "incorrect": 20, "deadline_exceeded": 20, "missing": 20,
        "syntax_error": 40, "duplicate": 20, "unknown": 20,
    }
    assert leftovers(docker_engine, summary["run_id"]) == []


def test_hostile_container_on_a_cluster_reaches_the_broker_alone(docker_engine, routed_kafka, tmp_path):
    """The broker's host on another port, loopback, the sandbox's gateway and the
    default bridge: all refused; the pipeline still answers through the broker."""
    listener = HostListener()
    host = routed_kafka.host
    try:
        hostile = Pipeline(name="hostile", runtime="docker", build=str(ROOT / "examples" / "hostile"),
                           pids=64, memory="256m", cpus=0.5,
                           env={"PPIPE_HOSTILE": "probe", "PPIPE_HOSTILE_PORT": f"{listener.port}",
                                "PPIPE_HOSTILE_TARGETS": f"{host}:{listener.port},"
                                                         f"127.0.0.1:{listener.port}"})
        summary = run(tmp_path, hostile, routed_kafka.bootstrap, load=Load(rate=100, count=100,
                                                                           drain="5s"),
                      scoring=Scoring(deadline="2s"))
    finally:
        listener.close()
    assert summary["complete"]
    by_kind = probes(tmp_path / "run" / "pipeline-hostile.log")
    # the listener's port on the broker's host and on the sandbox's gateway, loopback,
    # and port 22 on the broker's host
    assert len(by_kind["connect"]) == 4 and all(p["blocked"] for p in by_kind["connect"]), by_kind
    assert listener.accepted == 0
    assert by_kind["uid"][0]["uid"] == 10001 and by_kind["capabilities"][0]["blocked"]
    assert by_kind["docker_socket"][0]["blocked"]
    assert summary["pipelines"]["hostile"]["status"]["missing"] == 0
    assert leftovers(docker_engine, summary["run_id"]) == []


def test_a_broker_the_metadata_comes_to_advertise_is_let_through(docker_engine, routed_kafka):
    """The watch re-reads the cluster's metadata and opens a real sandbox network
    (not internal: its forwarding sealed) to a broker it did not know."""
    from ppipe_stream.runtime.sandbox import SandboxNetwork

    sandbox = SandboxNetwork(docker_engine, "egress-watch-test")
    try:
        sandbox.create_network(internal=False)
        forward = subprocess.run(["iptables", "-S", "DOCKER-USER"], capture_output=True, text=True).stdout
        assert f"-A DOCKER-USER -i {sandbox.bridge} -j DROP" in forward
        sandbox.allow([BrokerAddress("192.0.2.1", 9092)])  # known before the watch starts
        watch = EgressWatch(routed_kafka.bootstrap, sandbox, interval=0.1)
        opened = anyio.run(watch.check)
        assert opened == {BrokerAddress(routed_kafka.host, routed_kafka.port)}
        assert anyio.run(watch.check) == set()  # known now: nothing opened twice
        rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
        match = f"-d {routed_kafka.host}/32 -i {sandbox.bridge} -p tcp -m tcp --dport {routed_kafka.port}"
        assert f"-A DOCKER-USER {match} -j RETURN" in rules
        assert f"-A INPUT {match} -m conntrack --ctstate NEW -j ACCEPT" in rules
    finally:
        sandbox.remove()
    assert leftovers(docker_engine, "egress-watch-test") == []


@pytest.fixture(scope="module")
def routed_secure_kafka(docker_engine):
    """The SASL_SSL test broker, listening on the default bridge's gateway."""
    import secrets

    from ppipe_stream.brokers.secure import start_secure_kafka

    ipam = docker_engine.networks.get("bridge").attrs["IPAM"]["Config"][0]
    broker = start_secure_kafka({"alice": f"pw-{secrets.token_hex(12)}"}, host=ipam["Gateway"])
    yield broker
    broker.stop()


def test_faulty_container_on_a_sasl_ssl_cluster_every_count_exact(docker_engine, routed_secure_kafka,
                                                                  tmp_path):
    """[kafka.security] reaches the container: the CA mounted read-only, the login in its
    environment; the counts are as exact as on plaintext, and the password is written nowhere."""
    import shutil

    answer_dataset(tmp_path / "answers.csv", 200)
    (tmp_path / "tls").mkdir()
    shutil.copy(routed_secure_kafka.ca_file, tmp_path / "tls" / "ca.pem")
    (tmp_path / "tls" / "ca.pem").chmod(0o644)
    password = routed_secure_kafka.users["alice"]
    faulty = Pipeline(name="faulty", runtime="docker", build=str(ROOT / "examples" / "echo"),
                      command=["python3", "-m", "ppipe_stream.examples.faulty"])
    security = Security(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", username="alice",
                        ca_file="tls/ca.pem", password_env="TEST_KAFKA_PASSWORD")
    path = Scenario(name="docker-secure", seed=1, dataset=Dataset(path="answers.csv", target="label"),
                    load=Load(rate=100, count=200, drain="4s"), labels=Labels(delay="never"),
                    pipelines=[faulty], scoring=Scoring(task="classification", deadline="500ms"),
                    kafka=Kafka(bootstrap=routed_secure_kafka.bootstrap, partitions=2,
                                security=security)).write(tmp_path)
    result = ppipe("run", str(path), "--plain", "--out", str(tmp_path / "run"), cwd=tmp_path,
                   timeout=400, env={"TEST_KAFKA_PASSWORD": password})
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    summary = summary_of(tmp_path / "run")
    assert summary["complete"], result.stdout[-3000:] + result.stderr[-3000:]
    assert summary["pipelines"]["faulty"]["status"] == {
        "correct": 140, "incorrect": 20, "deadline_exceeded": 20, "missing": 20,
        "syntax_error": 40, "duplicate": 20, "unknown": 20,
    }
    for written in (tmp_path / "run").rglob("*"):
        if written.is_file():
            assert password not in written.read_text(errors="replace"), written
    assert leftovers(docker_engine, summary["run_id"]) == []


def test_a_cluster_on_loopback_is_refused_in_one_line(docker_engine, kafka_broker, tmp_path):
    """A container's loopback is its own: a cluster on 127.0.0.1 is named in one line
    (exit 2), not left to a pipeline that cannot connect."""
    echo = Pipeline(name="echo", runtime="docker", build=str(ROOT / "examples" / "echo"))
    path = Scenario(name="docker-loopback", load=Load(rate=10, count=10), pipelines=[echo],
                    kafka=Kafka(bootstrap=kafka_broker.bootstrap)).write(tmp_path)
    result = ppipe("run", str(path), "--plain", "--out", str(tmp_path / "run"), cwd=tmp_path,
                   timeout=400)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if "loopback" in line]
    assert len(error) == 1 and kafka_broker.bootstrap in error[0], result.stderr[-2000:]
    summary = summary_of(tmp_path / "run")
    assert summary["complete"] is False
    assert leftovers(docker_engine, summary["run_id"]) == []
