"""The results model: its schema is the shipped one, old and newer folders load, keys a
run writes only sometimes stay absent, and the builder assembles what run.py merged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from ppipe_stream.report.compare import compare_table
from ppipe_stream.view.display import ranked, summary_table
from ppipe_stream.results.outcome import outcome_of
from ppipe_stream.run.folder import RunFolder
from ppipe_stream.results.model import (
    BrokerFigures, ContainerFigures, FloorFigures, HarnessFigures, LatencySplit, Outcome, OverFloor,
    Summary, load_summary, schema_text, to_builtins, to_summary,
)
from ppipe_stream.scenario.model import Validity
from ppipe_stream.results.builder import RunSnapshots, build_summary
from ppipe_stream.units import Duration
from tests.summary_check import read_summary, unmodelled_keys

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "results.md"


def test_the_shipped_schema_is_the_models():
    """docs/results.schema.json is generated from the Structs: regenerate it with
    ``python -c "from ppipe_stream.results.model import schema_text; print(schema_text(), end='')"
    > docs/results.schema.json`` when a Struct changes."""
    assert (ROOT / "docs" / "results.schema.json").read_text() == schema_text()


def test_the_documented_example_fits_strictly():
    """The summary.json example in docs/results.md decodes strictly, every key modelled."""
    block = re.search(r"```json\n(.*?)\n```", SPEC.read_text(), re.S)
    assert block is not None
    raw = json.loads(block.group(1))
    summary = msgspec.json.decode(block.group(1), type=Summary, strict=True)
    assert unmodelled_keys(raw, to_builtins(summary)) == []
    assert summary.pipelines["river-logreg"].latency_ms.p99 == 12.5


def test_every_figure_is_documented():
    """Each field of each results Struct is named in docs/results.md."""
    text = SPEC.read_text()
    defs = json.loads(schema_text())["$defs"]
    missing = [f"{name}.{field}" for name, schema in defs.items()
               for field in schema.get("properties", {}) if f"`{field}`" not in text]
    assert missing == []


def test_an_old_folder_loads_and_unknown_keys_are_ignored(tmp_path):
    """No outcome, meta or harness, a key from a newer version: it loads, readers read it."""
    old = {"run_id": "old", "scenario": "s", "complete": True, "duration_s": 20.0,
           "dispatch": {"events_sent": 10, "target_rate": 1.0, "achieved_rate": 1.0,
                        "lag_ms": {"p50": 0.1, "p99": 0.2, "max": 0.3}},
           "pipelines": {"p": {"predictions": 10, "status": {"correct": 10},
                               "latency_ms": {"p99": 3.0}, "metrics": {"accuracy": 1.0},
                               "from_the_future": {"x": 1}}},
           "thresholds": [{"expr": "latency.p99 < 5ms", "pipeline": "p", "value": 3.0, "ok": True}],
           "passed": True, "something_new": [1, 2]}
    (tmp_path / "summary.json").write_text(json.dumps(old))
    summary = load_summary(tmp_path)
    assert outcome_of(summary) is Outcome.COMPLETE  # derived: no "outcome" key
    assert summary.meta is msgspec.UNSET and summary.harness is msgspec.UNSET
    assert summary.dispatch.planned_rate is msgspec.UNSET  # the validity rule for old folders
    assert summary.pipelines["p"].status.correct == 10 and summary.pipelines["p"].status.missing == 0
    assert ranked(summary)[0][0] == "p"
    summary_table(summary)
    compare_table(summary, summary)
    written = to_builtins(summary)
    for absent in ("outcome", "meta", "harness", "aborted", "error", "interrupted", "faults"):
        assert absent not in written
    assert "judged" not in written["thresholds"][0] and "container" not in written["pipelines"]["p"]


def _parts(**overrides):
    base = dict(
        run_id="r", scenario="s", complete=True, outcome=Outcome.COMPLETE,
        started_at="2026-01-01T00:00:00Z", duration_s=12.0,
        broker=BrokerFigures(kind="embedded-tansu", bootstrap="127.0.0.1:1", started=True),
        harness=msgspec.convert({"loop_lateness_ms": {"p50": 0.1, "p99": 0.5, "max": 1.0,
                                                      "samples": 9}}, HarnessFigures),
        dispatch={"events_sent": 100, "labels_sent": 100, "target_rate": 10.0, "achieved_rate": 10.0,
                  "lag_ms": {"p50": 0.1, "p99": 0.2, "max": 0.3}, "dataset_exhausted": False,
                  "planned_events": 100, "planned_rate": 10.0, "dropped": 0,
                  "schedule_lost_at_s": None, "stopped_on_overload": False, "schedule_cut": False},
        scored={"p": {"predictions": 100, "status": {"correct": 90, "incorrect": 10,
                                                     "deadline_exceeded": 0, "missing": 0,
                                                     "syntax_error": 0, "duplicate": 0, "unknown": 0},
                      "throughput_eps": 10.0, "latency_ms": {"mean": 1.0, "p50": 1.0, "p90": 2.0,
                                                             "p99": 3.0, "p999": 4.0, "max": 5.0},
                      "latency_split_ms": {}, "metrics": {"accuracy": 0.9}, "events": 100,
                      "warmup_events": 0, "late_after_drain": 0, "missing_ratio": 0.0}},
        containers={"p": {"restarts": 0, "oom_killed": False, "exit_code": None, "hangs": 0,
                          "hung_now": False}},
        incidents=[{"t_s": 1.0, "kind": "pipeline_exit", "target": "p"}])
    base.update(overrides)
    return RunSnapshots(**base)


def test_the_builder_judges_a_complete_run_and_writes_what_run_py_wrote(tmp_path):
    summary = build_summary(_parts(), thresholds={"latency.p99": "< 5ms"},
                            rules=Validity(min_duration=Duration("60s")))
    assert summary.passed and summary.validity.judged and summary.thresholds[0].ok
    folder = RunFolder.create("s", out=tmp_path / "run")
    written = folder.write_summary(summary)
    assert isinstance(written, Summary) and written.meta is not msgspec.UNSET
    raw = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert list(raw) == ["run_id", "scenario", "complete", "started_at", "duration_s", "broker",
                         "dispatch", "harness", "pipelines", "floor", "outcome", "passed", "thresholds",
                         "validity", "incidents", "meta"]
    assert raw["thresholds"] == [{"expr": "latency.p99 < 5ms", "pipeline": "p", "value": 3.0,
                                  "ok": True}]  # no "judged" key on a complete run
    assert raw["incidents"] == [{"t_s": 1.0, "kind": "pipeline_exit", "target": "p"}]
    assert raw["validity"]["valid"] is False and "min_duration" in raw["validity"]["reasons"][0]
    assert read_summary(tmp_path / "run") == written


def _scored(p50: float, p99: float, *, correct: int = 90, incorrect: int = 10, missing: int = 0,
            accuracy: float = 0.9) -> dict:
    return {"predictions": correct + incorrect,
            "status": {"correct": correct, "incorrect": incorrect, "deadline_exceeded": 0,
                       "missing": missing, "syntax_error": 0, "duplicate": 0, "unknown": 0},
            "throughput_eps": 10.0, "latency_ms": {"mean": p50, "p50": p50, "p90": p99, "p99": p99,
                                                   "p999": p99, "max": p99 + 1},
            "latency_split_ms": {"broker_in": {"p50": 0.2, "p90": 0.3, "p99": 0.4},
                                 "compute": {"p50": 0.01, "p90": 0.02, "p99": 0.03},
                                 "broker_out": {"p50": 0.3, "p90": 0.4, "p99": 0.5}},
            "metrics": {"accuracy": accuracy}, "events": correct + incorrect + missing,
            "warmup_events": 0, "late_after_drain": 0,
            "missing_ratio": missing / (correct + incorrect + missing)}


def _calibrated(**floor: object) -> RunSnapshots:
    """Pipeline ``p`` (p50 1.2 ms, p99 3.3 ms) and the floor ``ppipe-floor`` (0.7 / 2.2 ms,
    every answer wrong: the echo)."""
    echo = _scored(0.7, 2.2, correct=0, incorrect=100, accuracy=0.0)
    echo.update(floor)
    return _parts(floor="ppipe-floor", scored={"p": _scored(1.2, 3.3), "ppipe-floor": echo},
                  containers={name: {"restarts": 0, "oom_killed": False, "exit_code": None,
                                     "hangs": 0, "hung_now": False} for name in ("p", "ppipe-floor")})


def test_the_floor_is_set_apart_and_every_pipeline_gets_its_latency_over_it():
    summary = build_summary(_calibrated(), thresholds={}, rules=Validity())
    assert list(summary.pipelines) == ["p"]  # no competitor: not in pipelines, not ranked
    assert [name for name, _ in ranked(summary)] == ["p"]
    floor = summary.floor
    assert isinstance(floor, FloorFigures) and floor.pipeline == "ppipe-floor"
    assert floor.count == 100 and floor.events == 100 and floor.status.incorrect == 100
    assert (floor.latency_ms.p50, floor.latency_ms.p90, floor.latency_ms.p99, floor.latency_ms.max) \
        == (0.7, 2.2, 2.2, 3.2)
    assert isinstance(floor.latency_split_ms, LatencySplit)
    assert floor.latency_split_ms.broker_in.p50 == 0.2 and floor.latency_split_ms.compute.p99 == 0.03
    assert isinstance(floor.container, ContainerFigures)
    over = summary.pipelines["p"].latency_over_floor_ms
    assert over == OverFloor(p50=0.5, p99=1.1)  # to the microsecond: no 0.49999999999999994
    raw = to_builtins(summary)
    assert raw["floor"]["latency_ms"]["p50"] == 0.7
    assert raw["pipelines"]["p"]["latency_over_floor_ms"] == {"p50": 0.5, "p99": 1.1}


def test_no_threshold_and_no_verdict_is_the_floors():
    """The echo's answers are all wrong and some are lost: the run still passes on ``p``."""
    summary = build_summary(_calibrated(**_scored(0.7, 2.2, correct=0, incorrect=90, missing=10,
                                                  accuracy=0.0)),
                            thresholds={"accuracy": "> 0.5", "missing_ratio": "< 1%"}, rules=Validity())
    assert summary.passed
    assert {t.pipeline for t in summary.thresholds} == {"p"} and len(summary.thresholds) == 2
    assert isinstance(summary.floor, FloorFigures)
    assert summary.floor.status.missing == 10 and summary.floor.count == 90  # still shown


def test_a_floor_not_yet_measured_is_there_with_nothing_over_it():
    summary = build_summary(_parts(floor="ppipe-floor", scored=None, containers={}),
                            thresholds={}, rules=Validity())
    assert summary.floor == FloorFigures(pipeline="ppipe-floor")
    one = build_summary(_calibrated(latency_ms={"p50": None, "p99": None}), thresholds={},
                        rules=Validity())
    assert one.pipelines["p"].latency_over_floor_ms == OverFloor(p50=None, p99=None)


def test_without_calibration_floor_and_over_floor_are_null():
    summary = build_summary(_parts(), thresholds={}, rules=Validity())
    raw = to_builtins(summary)
    assert raw["floor"] is None and raw["pipelines"]["p"]["latency_over_floor_ms"] is None


def test_the_builder_marks_an_interrupted_run_not_judged():
    summary = build_summary(_parts(complete=False, outcome=Outcome.INTERRUPTED, interrupted=True,
                                   aborted="stopped", faults=[{"action": "kill", "at_s": 1.0,
                                                               "target": "p", "what": "kill"}]),
                            thresholds={"latency.p99": "< 5ms"}, rules=Validity())
    raw = to_builtins(summary)
    assert raw["thresholds"][0]["judged"] is False and raw["thresholds"][0]["ok"] is None
    assert raw["validity"]["judged"] is False and not summary.passed
    assert raw["interrupted"] is True and raw["aborted"] == "stopped" and "error" not in raw
    assert raw["faults"][0]["action"] == "kill" and "rows_corrupted" not in raw["faults"][0]
    assert outcome_of(raw) is Outcome.INTERRUPTED


def test_to_summary_takes_numpy_scalars():
    import numpy as np  # a dependency of the package: never skipped

    summary = to_summary({"pipelines": {"p": {"predictions": np.int64(3),
                                              "metrics": {"accuracy": np.float64(0.5)}}}})
    assert summary.pipelines["p"].predictions == 3


def test_tail_of_a_folder_whose_summary_is_not_one_is_one_line(tmp_path):
    """Found while typing the readers: a summary.json holding JSON that is no summary
    (a list) crashed ``ppipe tail`` with an AttributeError; it is a UsageError now."""
    import io

    from rich.console import Console

    from ppipe_stream.errors import UsageError
    from ppipe_stream.view.tail import tail_folder

    (tmp_path / "summary.json").write_text("[1, 2]")
    with pytest.raises(UsageError, match="not a run's summary"):
        tail_folder(tmp_path, console=Console(file=io.StringIO()))
