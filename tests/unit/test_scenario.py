"""Scenario files: every kind of error is one line with file, line, key path and hint;
valid files load and round-trip."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppipe_stream.run.preflight import scenario_checks
from ppipe_stream.errors import ScenarioError
from ppipe_stream.scenario import dump_scenario, load_scenario, loads_scenario

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
TEXT = QUICKSTART.read_text()


def error_of(text: str, **kw) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        loads_scenario(text, file="s.toml", base_dir=QUICKSTART.parent, **kw)
    message = str(info.value)
    assert "\n" not in message and message.startswith("s.toml")
    return info.value


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_quickstart_loads_and_round_trips():
    loaded = load_scenario(QUICKSTART, extra_checks=scenario_checks)
    again = loads_scenario(dump_scenario(loaded.scenario), base_dir=QUICKSTART.parent)
    assert again.scenario == loaded.scenario
    assert loaded.resolve("data/iris.csv") == (ROOT / "scenarios" / "data" / "iris.csv")


def test_unknown_key_suggests_the_closest():
    text = TEXT.replace("rate = 200", "rat = 200")
    err = error_of(text)
    assert err.path == "$.load.rat" and err.hint == "did you mean `rate`?"
    assert err.line == line_of(text, "rat = 200")
    assert str(err).startswith(f"s.toml:{err.line}: unknown key `rat`")


def test_unknown_key_in_array_of_tables():
    text = TEXT.replace('command = ["python"', 'comand = ["python"')
    err = error_of(text)
    assert err.path == "$.pipelines[0].comand" and "command" in err.hint
    assert err.line == line_of(text, "comand =")


def test_bad_type_names_the_key():
    text = TEXT.replace('target = "variety"', "target = 3")
    err = error_of(text)
    assert err.path == "$.dataset.target" and "Expected `str | null`, got `int`" in err.message
    assert err.line == line_of(text, "target = 3")


def test_missing_key():
    text = TEXT.replace("rate = 200                    # events/s\n", "")
    err = error_of(text)
    assert err.path == "$.load.rate" and "missing required key `rate`" in err.message
    assert err.line == line_of(text, "[load]")


def test_bad_duration():
    text = TEXT.replace('duration = "20s"', 'duration = "20 parsecs"')
    err = error_of(text)
    assert err.path == "$.load.duration" and "not a duration" in err.message
    assert err.line == line_of(text, "20 parsecs")


def test_bad_dataset_path():
    text = TEXT.replace("data/iris.csv", "data/nope.csv")
    err = error_of(text)
    assert err.path == "$.dataset.path" and "nope.csv" in err.message and "not found" in err.message
    assert err.line == line_of(text, "data/nope.csv")


def test_unknown_profile_lists_the_allowed_and_suggests():
    text = TEXT.replace('profile = "constant"', 'profile = "constnt"')
    err = error_of(text)
    assert err.path == "$.load.profile" and "poisson" in err.message and "constant" in err.hint


def test_cross_field_check():
    text = TEXT.replace('duration = "20s"', "")
    err = error_of(text)
    assert err.path == "$.load" and "duration" in err.message


def test_toml_syntax_error_has_its_line():
    text = TEXT.replace("seed = 7", "seed = [7")
    err = error_of(text)
    assert "TOML syntax error" in err.message and err.line is not None


def test_syntax_error_at_the_end_of_the_file_has_a_line():
    """tomllib says "at end of document" for an unclosed quote: that is the last line
    (found by the fuzzer: the error named no line)."""
    err = error_of(TEXT + "\n'")
    assert err.line == len((TEXT + "\n'").splitlines()) and "end of document" not in err.message


def test_nul_in_a_path_is_a_scenario_error():
    """Found by the fuzzer: a NUL character reached os.path and raised ValueError."""
    err = error_of(TEXT.replace('path = "data/iris.csv"', 'path = "data/\\u0000.csv"'))
    assert err.path == "$.dataset.path" and "NUL" in err.message


def test_extra_checks_metric_and_threshold():
    err = error_of(TEXT.replace('"f1"]', '"f11"]'), extra_checks=scenario_checks)
    assert err.path == "$.scoring.metrics" and "'f1'" in err.message
    err = error_of(TEXT.replace('"latency.p99" = "< 250ms"', '"latency.p99" = "about 3"'),
                   extra_checks=scenario_checks)
    assert err.path == "$.thresholds.latency.p99" and "comparison" in err.message


def test_missing_file():
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario("/no/such.toml")


def test_duplicate_pipeline_names():
    block = TEXT[TEXT.index("[[pipelines]]"):TEXT.index("[scoring]")]
    err = error_of(TEXT.replace(block, block + block))
    assert "unique" in err.message


_MUTATIONS = st.sampled_from(["delete", "rename", "retype", "truncate", "garbage"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=_MUTATIONS, index=st.integers(0, 10_000), junk=st.text(max_size=20))
def test_mutated_files_only_ever_raise_scenario_errors(kind, index, junk):
    lines = TEXT.splitlines()
    keyed = [i for i, line in enumerate(lines) if "=" in line and not line.lstrip().startswith("#")]
    i = keyed[index % len(keyed)]
    if kind == "delete":
        del lines[i]
    elif kind == "rename":
        key, _, value = lines[i].partition("=")
        lines[i] = f"{key.strip()}x ={value}"
    elif kind == "retype":
        key, _, _ = lines[i].partition("=")
        values = ["1", "true", "[]", "{}", '"s"', "-5"]
        lines[i] = f"{key.strip()} = {values[index % 6]}"
    elif kind == "truncate":
        lines = lines[: index % len(lines)]
    else:
        lines.insert(i, junk)
    text = "\n".join(lines)
    try:
        loads_scenario(text, file="mut.toml", base_dir=QUICKSTART.parent, extra_checks=scenario_checks)
    except ScenarioError as exc:
        assert str(exc).startswith("mut.toml") and "\n" not in str(exc)


def test_an_anchored_copy_reads_the_same_files_from_anywhere(tmp_path):
    """The run folder's scenario.toml had the relative `data/iris.csv` of its original:
    loaded from the run folder it looked for runs/<run>/data/iris.csv."""
    leaderboard = load_scenario(ROOT / "scenarios" / "leaderboard.toml", extra_checks=scenario_checks)
    text = TEXT.replace('bootstrap = "embedded"', 'bootstrap = "127.0.0.1:9093"') + (
        '\n[kafka.security]\nprotocol = "SSL"\nca_file = "data/iris.csv"\n')
    secured = loads_scenario(text, file="s.toml", base_dir=QUICKSTART.parent)
    for loaded in (leaderboard, secured):
        copy = tmp_path / "runs" / "r" / "scenario.toml"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(dump_scenario(loaded.anchored()))
        again = load_scenario(copy, extra_checks=scenario_checks)
        assert again.resolve(again.scenario.dataset.path) == ROOT / "scenarios" / "data" / "iris.csv"
        for before, after in zip(loaded.scenario.pipelines, again.scenario.pipelines, strict=True):
            if before.runtime == "process":  # the runner's default folder, written out
                assert after.cwd == str(ROOT / "scenarios") and before.cwd is None
            if before.runtime == "docker":
                assert again.resolve(after.build) == loaded.resolve(before.build) == ROOT / "examples" / "river-online"
        # the same scenario but for its paths
        assert msgspec.structs.replace(again.scenario, dataset=loaded.scenario.dataset,
                                       pipelines=loaded.scenario.pipelines,
                                       kafka=loaded.scenario.kafka) == loaded.scenario
    assert again.scenario.kafka.security.ca_file == str(ROOT / "scenarios" / "data" / "iris.csv")


def test_a_dataset_path_with_a_newline_is_named_on_one_line(tmp_path):
    """Found by the fuzz test: the 'looked at' path broke the one-line error."""
    from ppipe_stream.errors import ScenarioError
    from ppipe_stream.scenario import loads_scenario

    text = (ROOT / "scenarios" / "quickstart.toml").read_text()
    text = text.replace('path = "data/iris.csv"', 'path = "\\n"')
    with pytest.raises(ScenarioError) as caught:
        loads_scenario(text, file="mut.toml", base_dir=tmp_path)
    assert "\n" not in str(caught.value) and "dataset file '\\n' not found" in str(caught.value)
