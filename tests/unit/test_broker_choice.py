"""Which broker a run starts (``broker_choice``), and the Kafka node's listener
address surviving a restart (``plaintext_listener``): no broker, no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from ppipe_stream.brokers.kafka import plaintext_listener, server_properties
from ppipe_stream.errors import BrokerError
from ppipe_stream.run.broker_start import BrokerChoice, broker_choice, sandboxed
from ppipe_stream.scenario import loads_scenario
from tests.helpers import Dataset, Kafka, Load, Pipeline, Scenario


def choice(*, runtime: str, embedded: str | None = None, bootstrap: str | None = None):
    pipeline = (Pipeline(name="p", runtime="docker", image="ppipe/x:local") if runtime == "docker"
                else Pipeline(name="p"))
    text = Scenario(name="c", dataset=Dataset(source="synth", generator="blobs"),
                    load=Load(rate=10, count=10), pipelines=[pipeline],
                    kafka=Kafka(embedded=embedded, bootstrap=bootstrap)).text()
    scenario = loads_scenario(text, file="s.toml").scenario
    return broker_choice(scenario), sandboxed(scenario), broker_choice(scenario).kind.value


@pytest.mark.parametrize("runtime, embedded, expected", [
    # the embedded default is Apache Kafka for docker pipelines too (it once was
    # tansu in the sandbox whatever `embedded` said, and the summary said so)
    ("docker", None, (BrokerChoice.EMBEDDED_KAFKA, True, "kafka")),
    ("docker", "kafka", (BrokerChoice.EMBEDDED_KAFKA, True, "kafka")),
    ("docker", "tansu", (BrokerChoice.SANDBOX, True, "embedded-tansu")),
    ("process", None, (BrokerChoice.EMBEDDED_KAFKA, False, "kafka")),
    ("process", "tansu", (BrokerChoice.EMBEDDED_TANSU, False, "embedded-tansu")),
])
def test_the_broker_is_the_one_embedded_names(runtime, embedded, expected):
    assert choice(runtime=runtime, embedded=embedded) == expected


def test_a_cluster_is_a_cluster():
    assert choice(runtime="process", bootstrap="kafka:9092")[0] is BrokerChoice.CLUSTER


def test_the_listener_address_is_read_back_for_a_restart(tmp_path: Path):
    """A node on a sandbox's gateway comes back on the same address and port."""
    text = server_properties(node_id=1, port=40123, controller_port=40124, log_dir=tmp_path,
                             host="172.18.0.1")
    assert plaintext_listener(text) == ("172.18.0.1", 40123)
    assert "CONTROLLER://127.0.0.1:40124" in text  # the controller stays on loopback
    assert "advertised.listeners=PLAINTEXT://172.18.0.1:40123" in text
    assert plaintext_listener(server_properties(node_id=1, port=1, controller_port=2,
                                                log_dir=tmp_path)) == ("127.0.0.1", 1)
    with pytest.raises(BrokerError):
        plaintext_listener("listeners=CONTROLLER://127.0.0.1:2\n")
