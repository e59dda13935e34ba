"""``--set`` / ``-e`` overrides: values read as TOML (else text), paths by index or by
pipeline name, tables created, and errors naming the override."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppipe_stream.errors import ScenarioError, UsageError
from ppipe_stream.scenario import loads_scenario
from ppipe_stream.scenario.overrides import Override, Overrides

TEXT = """
name = "o"
[dataset]
source = "sklearn"
name = "iris"
target = "variety"
[load]
profile = "constant"
rate = 100
duration = "5s"
[[pipelines]]
name = "a"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.echo"]
[[pipelines]]
name = "b"
runtime = "external"
"""


@pytest.mark.parametrize(("raw", "value"), [("500", 500), ("0.5", 0.5), ("true", True), ("30s", "30s"),
                                            ('["x", "y"]', ["x", "y"]), ('"quoted"', "quoted"), ("", "")])
def test_values_read_as_toml_else_text(raw, value):
    assert Override.parse(f"load.rate={raw}").value == value


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30))
def test_any_value_parses_without_raising(raw):
    Override.parse(f"a.b={raw}")


def test_overrides_apply_and_validate():
    loaded = loads_scenario(TEXT, overrides=Overrides(
        ["load.rate=500", "load.duration=30s", "pipelines.a.replicas=2", "kafka.partitions=3"],
        ["MODEL=v2"]))
    scenario = loaded.scenario
    assert scenario.load.rate == 500 and float(scenario.load.duration) == 30
    assert scenario.pipelines[0].replicas == 2 and scenario.pipelines[0].env == {"MODEL": "v2"}
    assert scenario.kafka.partitions == 3


@pytest.mark.parametrize(("sets", "words"), [
    (["load.rate=fast"], ["--set load.rate=fast", "$.load.rate"]),
    (["pipelines[1].replicas=2"], ["--set pipelines[1].replicas=2", "replicas"]),
    (["pipelines.zzz.replicas=2"], ["no table named 'zzz'", "a, b"]),
    (["pipelines[5].name=x"], ["has 2 table(s)"]),
    (["name.x=1"], ["is a value, not a table"]),
])
def test_errors_name_the_override(sets, words):
    with pytest.raises(ScenarioError) as caught:
        loads_scenario(TEXT, file="f.toml", overrides=Overrides(sets))
    for word in words:
        assert word in str(caught.value)


def test_an_error_in_the_file_still_names_the_file():
    with pytest.raises(ScenarioError) as caught:
        loads_scenario(TEXT.replace("rate = 100", "rate = -1"), file="f.toml",
                       overrides=Overrides(["load.duration=3s"]))
    assert str(caught.value).startswith("f.toml:")


@pytest.mark.parametrize("bad", ["noequals", "=1", "a..b=1", "a b=1"])
def test_bad_set_syntax_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        Overrides([bad])


def test_env_needs_a_pipeline_that_takes_one():
    with pytest.raises(UsageError):
        loads_scenario(TEXT.split("[[pipelines]]")[0] + '[[pipelines]]\nname = "b"\nruntime = "external"\n',
                       overrides=Overrides(env=["X=1"]))
