"""Real brokers for the integration tests: Apache Kafka (the reference; its jars fetched
and its Java found by the package itself) and tansu, each started once per session as a
process (never as a task held across fixtures)."""

from __future__ import annotations

import shutil

import pytest

from ppipe_stream.brokers import start_kafka, start_tansu
from ppipe_stream.errors import BrokerError, PpipeError
from tests.conftest import require_infra


@pytest.fixture(scope="session")
def kafka_broker():
    try:
        broker = start_kafka()
    except BrokerError as exc:
        require_infra(f"Apache Kafka did not start: {exc}")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def tansu_broker():
    try:
        broker = start_tansu()
    except BrokerError as exc:
        require_infra(f"tansu did not start: {exc}")
    yield broker
    broker.stop()


@pytest.fixture(params=["kafka", "tansu"])
def broker(request):
    """Each test using this runs on both brokers."""
    return request.getfixturevalue(f"{request.param}_broker")


@pytest.fixture(scope="session")
def kafka_cluster():
    """Three Apache Kafka nodes on loopback (RF 3, min.insync.replicas 2), once per
    session. A test that kills or stops a node restarts it before it ends."""
    from ppipe_stream.brokers.cluster import start_kafka_cluster

    try:
        cluster = start_kafka_cluster(3)
    except BrokerError as exc:
        require_infra(f"the Apache Kafka cluster did not start: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def secure_kafka():
    """Apache Kafka with only a SASL_SSL listener (PLAIN, SCRAM-SHA-256/512) signed by
    a throwaway CA; ``.users`` holds one user with a random password, ``.ca_file`` the CA."""
    import secrets

    from ppipe_stream.brokers.secure import start_secure_kafka

    if shutil.which("openssl") is None:
        require_infra("a SASL_SSL Apache Kafka needs openssl")
    try:
        broker = start_secure_kafka({"alice": f"pw-{secrets.token_hex(12)}"})
    except BrokerError as exc:
        require_infra(f"the SASL_SSL Apache Kafka did not start: {exc}")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def docker_engine():
    try:
        from ppipe_stream.runtime.docker import docker_client

        client = docker_client()
    except PpipeError as exc:
        require_infra(f"no Docker engine: {exc}")
    yield client
    client.close()
