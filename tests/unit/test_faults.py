"""Fault specs and row corruption (no broker): what a scenario may ask, and
that corruption hits the asked fraction, deterministically, only while on."""

from __future__ import annotations

from pathlib import Path

import pytest

from ppipe_stream.datasets import Row
from ppipe_stream.errors import ScenarioError
from ppipe_stream.watch.fault_injector import RowCorruptor
from ppipe_stream.watch.incidents import IncidentKind, IncidentLog
from ppipe_stream.scenario import loads_scenario
from ppipe_stream.scenario.faults import CorruptFault
from ppipe_stream.units import Duration

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "scenarios" / "quickstart.toml").read_text()


def load(extra: str, *, replace: tuple[str, str] | None = None):
    text = BASE if replace is None else BASE.replace(*replace)
    return loads_scenario(text + "\n" + extra, file="s.toml", base_dir=ROOT / "scenarios")


def error_of(extra: str, **kw) -> str:
    with pytest.raises(ScenarioError) as info:
        load(extra, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_every_action_loads():
    loaded = load("""
[[faults]]
at = "2s"
action = "kill"
pipeline = "river-logreg"
[[faults]]
at = "3s"
action = "pause"
pipeline = "river-logreg"
duration = "1s"
[[faults]]
at = "1s"
action = "corrupt"
fraction = 0.25
mode = "garbage"
columns = ["sepal_length"]
""")
    actions = [f.action for f in loaded.scenario.faults]
    assert actions == ["kill", "pause", "corrupt"]


def test_broker_faults_need_the_embedded_kafka():
    """The embedded default is Apache Kafka, which restarts on its data; tansu cannot."""
    message = error_of('[[faults]]\nat = "2s"\naction = "broker_restart"\n',
                       replace=("[kafka]", '[kafka]\nembedded = "tansu"'))
    assert "faults[0] (broker_restart)" in message and "embedded = " in message
    loaded = load('[[faults]]\nat = "2s"\naction = "broker_restart"\n')
    assert loaded.scenario.faults[0].action == "broker_restart"


@pytest.mark.parametrize("extra, needle", [
    ('[[faults]]\nat = "1s"\naction = "kill"\npipeline = "nobody"\n', "no pipeline named 'nobody'"),
    ('[[faults]]\nat = "1s"\naction = "network"\npipeline = "river-logreg"\nloss = 0.1\n',
     "network faults need a docker pipeline"),
    ('[[faults]]\nat = "1s"\naction = "pause"\npipeline = "river-logreg"\n', "duration"),
    ('[[faults]]\nat = "1s"\naction = "explode"\n', "explode"),
    ('[[faults]]\nat = "1s"\naction = "corrupt"\nfraction = 1.5\n', "fraction"),
    ('[[faults]]\nat = "1s"\naction = "kill"\npipeline = "river-logreg"\nreplica = 3\n',
     "replica 3 does not exist"),
    ('[[faults]]\naction = "kill"\npipeline = "river-logreg"\n', "at"),
])
def test_bad_faults_are_one_line_naming_the_fault(extra, needle):
    message = error_of(extra)
    assert needle in message, message
    assert "faults" in message


def test_corrupt_rows_need_the_in_process_dispatcher():
    message = error_of('[[faults]]\nat = "1s"\naction = "corrupt"\nfraction = 0.1\n',
                       replace=('duration = "20s"', 'duration = "20s"\nworkers = 2'))
    assert "faults[0] (corrupt)" in message and "workers = 1" in message


def rows(n: int):
    return [Row(i, {"a": float(i), "b": i, "c": "x"}, i % 3) for i in range(n)]


class FakeDataset(list):  # a dataset stream is anything iterable with a name
    name = "fake"


def test_corruption_hits_the_fraction_only_while_on_and_keeps_labels():
    now = {"ns": 0}
    fault = CorruptFault(at=Duration("1s"), duration=Duration("1s"), fraction=0.3)
    corruptor = RowCorruptor(FakeDataset(rows(6000)), [fault], seed=7, offset_ns=lambda: now["ns"])
    out = []
    for k, row in enumerate(corruptor):
        out.append(row)
        now["ns"] = (k + 1) * 1_000_000  # 1 ms a row: rows 1000..1999 fall in the fault's window
    spoiled = [k for k, row in enumerate(out) if None in row.features.values()]
    assert all(1000 <= k < 2000 for k in spoiled)
    assert 240 <= len(spoiled) <= 360  # 30% of 1000, within 4 sigma
    assert corruptor.corrupted == [len(spoiled)]
    assert [r.label for r in out] == [k % 3 for k in range(6000)]
    assert corruptor.name == "fake"
    again = RowCorruptor(FakeDataset(rows(6000)), [fault], seed=7, offset_ns=lambda: 1_500_000_000)
    same = [k for k, row in enumerate(again) if None in row.features.values()]
    assert set(spoiled) <= set(same)  # the same rows are chosen for the same seed


@pytest.mark.parametrize("mode, check", [
    ("garbage", lambda v: v == "#corrupt#"),
    ("outlier", lambda v: v == 5000.0),
])
def test_corruption_modes_and_columns(mode, check):
    fault = CorruptFault(at=Duration("0s"), fraction=1.0, mode=mode, columns=["a"])
    data = FakeDataset([Row(0, {"a": 5.0, "b": 1}, "y")])
    (row,) = list(RowCorruptor(data, [fault], seed=1, offset_ns=lambda: 0))
    assert check(row.features["a"]) and row.features["b"] == 1


def test_incident_log_outages_and_timeline_text(tmp_path):
    incidents = IncidentLog(start_ns=0, path=tmp_path / "incidents.jsonl")
    incidents.broker_state("h:1", True, now_ns=1_000_000_000)
    incidents.broker_state("h:1", False, now_ns=3_000_000_000, down_since_ns=2_000_000_000)
    incidents.broker_state("h:1", False, now_ns=3_500_000_000)  # still down: no new incident
    incidents.broker_state("h:1", True, now_ns=7_000_000_000)
    assert [i.kind for i in incidents.items] == [IncidentKind.BROKER_DOWN, IncidentKind.BROKER_UP]
    assert incidents.items[0].detected_after_s == 1.0
    assert incidents.outages() == [{"node": "h:1", "start_s": 2.0, "end_s": 7.0,
                                    "duration_s": 5.0, "ended": True}]
    # placed in the timeline when it was seen (now), not when it began: rows already
    # written for the past cannot take it
    assert "broker_down broker:h:1" in incidents.between(incidents.items[0].seen_ns - 1,
                                                         incidents.items[0].seen_ns + 1)
    assert incidents.between(2_000_000_000, 3_000_000_000) == ""
    incidents.close()
    assert len((tmp_path / "incidents.jsonl").read_text().splitlines()) == 2


def test_the_shipped_faults_scenario_is_valid():
    from ppipe_stream.run.preflight import scenario_checks
    from ppipe_stream.scenario import load_scenario

    loaded = load_scenario(ROOT / "scenarios" / "faults.toml", extra_checks=scenario_checks)
    assert [f.action for f in loaded.scenario.faults] == ["pause", "corrupt", "kill"]
    assert loaded.scenario.pipelines[0].restart == "on-failure"


def test_broker_faults_with_docker_pipelines_on_the_embedded_kafka():
    """A docker pipeline's broker is the run's own Kafka (on the sandbox's gateway):
    broker faults are allowed with it; with tansu they are refused as before."""
    docker = ('[[pipelines]]\nname = "boxed"\nruntime = "docker"\nimage = "ppipe/x:local"\n'
              '[[faults]]\nat = "2s"\naction = "broker_restart"\n')
    loaded = load(docker)
    assert [p.runtime for p in loaded.scenario.pipelines] == ["process", "docker"]
    message = error_of(docker, replace=("[kafka]", '[kafka]\nembedded = "tansu"'))
    assert "faults[0] (broker_restart)" in message and "embedded = " in message
