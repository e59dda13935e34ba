"""[kafka] idempotent: the input producer's idempotence, and its one rule (acks = "all")."""

from __future__ import annotations

import pytest

from ppipe_stream.errors import ScenarioError
from ppipe_stream.scenario import loads_scenario

BASE = """
name = "k"
[dataset]
source = "synth"
generator = "blobs"
[load]
profile = "constant"
rate = 10
count = 10
[[pipelines]]
name = "p"
runtime = "external"
[kafka]
"""


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
