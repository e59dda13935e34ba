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
    BrokerFigures, HarnessFigures, Outcome, Summary, load_summary, schema_text, to_builtins,
    to_summary,
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
                         "dispatch", "harness", "pipelines", "outcome", "passed", "thresholds",
                         "validity", "incidents", "meta"]
    assert raw["thresholds"] == [{"expr": "latency.p99 < 5ms", "pipeline": "p", "value": 3.0,
                                  "ok": True}]  # no "judged" key on a complete run
    assert raw["incidents"] == [{"t_s": 1.0, "kind": "pipeline_exit", "target": "p"}]
    assert raw["validity"]["valid"] is False and "min_duration" in raw["validity"]["reasons"][0]
    assert read_summary(tmp_path / "run") == written


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
