"""The [load] keys for a harness that cannot keep up (max_lag, on_overload) and the
[validity] bound on its loop lateness: defaults, and one-line errors naming the key."""

from __future__ import annotations

import math

import pytest

from ppipe_stream.errors import ScenarioError
from ppipe_stream.scenario import dump_scenario, loads_scenario
from ppipe_stream.scenario.model import ReleasesLoad
from ppipe_stream.units import Duration
from tests.helpers import ppipe

BASE = """
name = "t"
[dataset]
source = "synth"
generator = "sea"
[load]
profile = "{profile}"
{keys}
[[pipelines]]
name = "p"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.echo"]
"""


def load(profile: str = "constant", keys: str = 'rate = 10\nduration = "2s"'):
    return loads_scenario(BASE.format(profile=profile, keys=keys), file="s.toml").scenario


def test_defaults_drop_after_one_second_and_releases_never():
    scenario = load()
    assert scenario.load.max_lag is None and scenario.load.max_lag_s == 1.0
    assert scenario.load.on_overload == "drop"
    assert float(scenario.validity.max_loop_lateness_p99) == pytest.approx(0.005)
    releases = ReleasesLoad(proportions=[0.5, 0.5], interval=Duration("1s"))
    assert math.isinf(releases.max_lag_s)


def test_given_keys_are_kept_and_dumped():
    scenario = load(keys='rate = 10\nduration = "2s"\nmax_lag = "250ms"\non_overload = "stop"')
    assert scenario.load.max_lag_s == 0.25 and scenario.load.on_overload == "stop"
    text = dump_scenario(scenario)
    assert 'max_lag = "250ms"' in text and 'on_overload = "stop"' in text
    assert math.isinf(load(keys='rate = 10\nduration = "2s"\nmax_lag = "never"').load.max_lag_s)


@pytest.mark.parametrize("keys, key", [('max_lag = "0s"', "max_lag"),
                                       ('on_overload = "wait"', "on_overload")])
def test_bad_values_name_the_key(keys, key):
    with pytest.raises(ScenarioError) as info:
        load(keys=f'rate = 10\nduration = "2s"\n{keys}')
    assert key in str(info.value) and "s.toml" in str(info.value)


def test_validate_cli_one_line_for_a_bad_on_overload(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BASE.format(profile="constant", keys='rate = 10\nduration = "2s"\non_overload = "x"'))
    result = ppipe("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "on_overload" in lines[0] and "bad.toml" in lines[0], result.stderr
