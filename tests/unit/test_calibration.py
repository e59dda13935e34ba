"""``[scoring] calibrate = true``: the floor pipeline is added once, last, as the echo
example; its name is reserved; the run folder's copy of the scenario loads the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from ppipe_stream.errors import ScenarioError
from ppipe_stream.scenario import ProcessPipeline, dump_scenario, loads_scenario
from ppipe_stream.scenario.calibration import FLOOR_PIPELINE, floor_name, with_floor, without_floor
from ppipe_stream.scenario.overrides import Overrides
from tests.helpers import Pipeline, Scenario, Scoring, example


def calibrated(*pipelines: Pipeline, calibrate: bool | None = True) -> Scenario:
    return Scenario(pipelines=list(pipelines) or [Pipeline(name="model")],
                    scoring=Scoring(calibrate=calibrate))


def test_calibrate_adds_the_echo_floor_last(tmp_path: Path) -> None:
    scenario = calibrated(Pipeline(name="a"), Pipeline(name="b")).loaded(tmp_path).scenario
    assert [p.name for p in scenario.pipelines] == ["a", "b", FLOOR_PIPELINE]
    floor = scenario.pipelines[-1]
    assert isinstance(floor, ProcessPipeline)
    assert floor.command == example("echo")
    assert floor.replicas == 1 and floor.restart == "no"
    assert floor_name(scenario) == FLOOR_PIPELINE
    assert with_floor(scenario) is scenario  # once


@pytest.mark.parametrize("calibrate", [None, False])
def test_no_floor_without_calibrate(tmp_path: Path, calibrate: bool | None) -> None:
    scenario = calibrated(calibrate=calibrate).loaded(tmp_path).scenario
    assert scenario.scoring.calibrate is False
    assert [p.name for p in scenario.pipelines] == ["model"]
    assert floor_name(scenario) is None


@pytest.mark.parametrize("calibrate", [True, None])
def test_a_user_pipeline_named_ppipe_floor_is_one_line_naming_the_key(tmp_path: Path,
                                                                        calibrate: bool | None) -> None:
    text = calibrated(Pipeline(name="ok"), Pipeline(name=FLOOR_PIPELINE), calibrate=calibrate).text()
    with pytest.raises(ScenarioError) as info:
        loads_scenario(text, file="s.toml", base_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "$.pipelines[1].name" in message and "reserved" in message
    assert "$.scoring.calibrate" in message
    line = next(n for n, t in enumerate(text.splitlines(), 1) if FLOOR_PIPELINE in t)
    assert message.startswith(f"s.toml:{line}:")


def test_the_copy_in_a_run_folder_leaves_the_floor_out_and_loads_the_same(tmp_path: Path) -> None:
    loaded = calibrated().loaded(tmp_path)
    text = dump_scenario(loaded.anchored())
    assert FLOOR_PIPELINE not in text and "calibrate = true" in text
    again = loads_scenario(text, file="copy.toml", base_dir=tmp_path / "elsewhere")
    # the user's pipelines the same; the floor added again (its working folder is the copy's)
    assert without_floor(again.scenario) == without_floor(loaded.anchored())
    assert [p.name for p in again.scenario.pipelines] == ["model", FLOOR_PIPELINE]


def test_set_scoring_calibrate_on_the_command_line_adds_the_floor(tmp_path: Path) -> None:
    text = calibrated(calibrate=None).text()
    loaded = loads_scenario(text, file="s.toml", base_dir=tmp_path,
                            overrides=Overrides(["scoring.calibrate=true"], ["MINE=1"]))
    model, floor = loaded.scenario.pipelines
    assert floor.name == FLOOR_PIPELINE
    assert isinstance(model, ProcessPipeline) and model.env == {"MINE": "1"}
    assert isinstance(floor, ProcessPipeline) and floor.env == {}  # -e is for the user's pipelines
