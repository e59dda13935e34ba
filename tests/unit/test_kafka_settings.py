"""[kafka] idempotent: the input producer's idempotence, and its one rule (acks = "all")."""

from __future__ import annotations

import pytest

from ppipe_stream.errors import ScenarioError
from ppipe_stream.scenario import loads_scenario
from tests.helpers import Dataset, Kafka, Load, Pipeline, Scenario

# ends in an empty [kafka] table: each test appends the keys it checks
BASE = Scenario(name="k", dataset=Dataset(source="synth", generator="blobs"),
                load=Load(rate=10, count=10), pipelines=[Pipeline(name="p", runtime="external")],
                kafka=Kafka()).text()


def test_idempotent_defaults_off():
    assert loads_scenario(BASE, file="s.toml").scenario.kafka.idempotent is False


def test_idempotent_with_acks_all():
    kafka = loads_scenario(BASE + 'idempotent = true\nacks = "all"\n', file="s.toml").scenario.kafka
    assert kafka.idempotent is True and kafka.acks == "all"


@pytest.mark.parametrize("acks", ["1", "0", None])
def test_idempotent_needs_acks_all(acks):
    body = BASE + "idempotent = true\n" + (f'acks = "{acks}"\n' if acks else "")
    with pytest.raises(ScenarioError) as info:
        loads_scenario(body, file="s.toml")
    assert "$.kafka.idempotent" in str(info.value)
    assert 'acks = "all"' in str(info.value)


@pytest.mark.parametrize("body, kwargs", [
    ("", {"acks": 1, "enable_idempotence": False}),
    ('acks = "0"\n', {"acks": 0, "enable_idempotence": False}),
    ('acks = "all"\n', {"acks": "all", "enable_idempotence": False}),
    ('idempotent = true\nacks = "all"\n', {"acks": "all", "enable_idempotence": True}),
])
def test_acks_and_idempotence_reach_the_sdks_output_producer(body, kwargs):
    from ppipe_stream import protocol
    from ppipe_stream.sdk import PipelineConfig

    kafka = loads_scenario(BASE + body, file="s.toml").scenario.kafka
    env = protocol.pipeline_env(bootstrap="b:9092", topics=protocol.Topics("p"), pipeline="p",
                                run_id="r", task="classification", acks=kafka.acks,
                                idempotent=kafka.idempotent)
    assert env["PPIPE_ACKS"] == kafka.acks
    assert env["PPIPE_IDEMPOTENT"] == ("true" if kafka.idempotent else "false")
    assert PipelineConfig.from_env(env).producer_kwargs() == kwargs


def test_without_the_variables_the_sdk_keeps_acks_1():
    from ppipe_stream import protocol
    from ppipe_stream.sdk import PipelineConfig

    env = protocol.pipeline_env(bootstrap="b:9092", topics=protocol.Topics("p"), pipeline="p",
                                run_id="r", task="classification")
    assert "PPIPE_ACKS" not in env and "PPIPE_IDEMPOTENT" not in env
    assert PipelineConfig.from_env(env).producer_kwargs() == {"acks": 1, "enable_idempotence": False}
