"""The hang rule as a user meets it (``ppipe run`` in a subprocess): a pipeline that
answered everything it was sent, one answer being garbage, and then sits idle is
not hung; a frozen pipeline with events still flowing is hung within
``hang_after`` + 0.2 s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import answer_dataset
from tests.helpers import (Dataset, Fault, Labels, Load, Pipeline, Scenario, Scoring, example, ppipe,
                           summary_of)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def run(tmp_path: Path, *, name: str, load: Load, example_name: str,
        faults: list[Fault] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = answer_dataset(tmp_path / "answers.csv", 400)
    path = Scenario(name=name, seed=1, dataset=Dataset(path=str(data), target="label"), load=load,
                    labels=Labels(delay="never"),
                    pipelines=[Pipeline(name="p", command=example(example_name),
                                        env={"PPIPE_FAULTY_LATE_MS": "0"}, hang_after="1s")],
                    scoring=Scoring(task="classification", deadline="10s", window="500ms"),
                    faults=faults).write(tmp_path)
    out = tmp_path / "run"
    result = ppipe("run", str(path), "--plain", "--out", str(out), cwd=tmp_path, timeout=120)
    assert result.returncode in (0, 3), result.stderr
    summary = summary_of(out)
    lines = (out / "incidents.jsonl").read_text().splitlines()
    return summary, [json.loads(line) for line in lines if line.strip()]


def test_an_idle_pipeline_whose_last_answer_was_garbage_is_not_hung(tmp_path):
    """ids 0-3 go out; the faulty pipeline answers id 3 with bytes that are not JSON
    (so id 3 waits forever) and then receives nothing more: idle, never hung."""
    summary, incidents = run(tmp_path, name="idle", load=Load(rate=20, count=4, drain="3s"),
                             example_name="faulty")
    container = summary["pipelines"]["p"]["container"]
    status = summary["pipelines"]["p"]["status"]
    assert status["syntax_error"] == 1 and status["missing"] == 1, status
    assert [i for i in incidents if i["kind"] == "pipeline_hang"] == []
    assert container["hangs"] == 0 and container["hung_now"] is False


def test_a_frozen_pipeline_with_events_flowing_is_hung_within_hang_after(tmp_path):
    summary, incidents = run(
        tmp_path, name="frozen", load=Load(rate=50, duration="5s", drain="4s"), example_name="echo",
        faults=[Fault(at="2s", action="pause", pipeline="p", duration="2s")])
    hangs = [i for i in incidents if i["kind"] == "pipeline_hang"]
    assert len(hangs) == 1, incidents
    assert hangs[0]["detected_after_s"] <= 1.0 + 0.2, hangs
    assert 2.0 < hangs[0]["t_s"] <= 3.4, hangs
    assert summary["pipelines"]["p"]["container"]["hangs"] == 1
