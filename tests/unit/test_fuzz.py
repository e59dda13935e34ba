"""Fuzzing the three ways bad input comes in: scenario files, pipeline replies and
dataset rows. Thousands of mutated inputs: never a traceback, every error one
line naming its key (or file and line), every reply counted."""

from __future__ import annotations

import json
import string
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppipe_stream import protocol
from ppipe_stream.run.preflight import scenario_checks
from ppipe_stream.datasets import open_dataset
from ppipe_stream.errors import DatasetError, ScenarioError
from ppipe_stream.scenario import loads_scenario
from ppipe_stream.scenario.model import Dataset
from ppipe_stream.scoring import Scorer, ScoringConfig

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "scenarios"

# every section and most keys, so mutations reach the whole schema
RICH = (BASE / "quickstart.toml").read_text() + """
[[commands]]
every = "5s"
command = "validate"
sample = 5
deadline = "2s"

[[commands]]
at = "3s"
command = "feature"
feature = "ratio"
expression = "petal_length / petal_width"

[[faults]]
at = "2s"
action = "pause"
pipeline = "river-logreg"
duration = "1s"

[[faults]]
at = "4s"
action = "corrupt"
fraction = 0.1
mode = "garbage"

[validity]
min_duration = "5s"
max_lag_p99 = "20ms"
"""

_VALUES = ["1", "0", "-5", "1e309", "true", "[]", "{}", '"s"', '""', '"-1s"', '"never"', "[1, 2]",
           '{a = 1}', '"inf"', "3.5", '"9999999999999h"', '"\\u0000"', "nan"]


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["delete", "rename", "retype", "truncate", "garbage", "duplicate",
                             "swap", "header", "unicode"]),
       index=st.integers(0, 10_000), other=st.integers(0, 10_000),
       junk=st.text(max_size=30))
def test_thousands_of_mutated_scenarios_only_ever_raise_one_line_naming_the_key(kind, index, other, junk):
    lines = RICH.splitlines()
    keyed = [i for i, line in enumerate(lines) if "=" in line and not line.lstrip().startswith("#")]
    i, j = keyed[index % len(keyed)], keyed[other % len(keyed)]
    key, _, value = lines[i].partition("=")
    if kind == "delete":
        del lines[i]
    elif kind == "rename":
        lines[i] = f"{key.strip()}{junk[:1] or 'x'} ={value}"
    elif kind == "retype":
        lines[i] = f"{key.strip()} = {_VALUES[other % len(_VALUES)]}"
    elif kind == "truncate":
        lines = lines[: index % len(lines)]
    elif kind == "garbage":
        lines.insert(i, junk)
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        lines[i] = f"{key.strip()} ={lines[j].partition('=')[2]}"
    elif kind == "header":
        lines.insert(i, ["[load]", "[[pipelines]]", "[kafka]", "[[faults]]", "[nope]"][other % 5])
    else:
        lines[i] = f"{key.strip()} = {json.dumps(junk)}"
    text = "\n".join(lines)
    try:
        loads_scenario(text, file="mut.toml", base_dir=BASE, extra_checks=scenario_checks)
    except ScenarioError as exc:
        message = str(exc)
        assert message.startswith("mut.toml") and "\n" not in message, message
        assert "Traceback" not in message
        # names where: a key path, or the line of a syntax error
        assert exc.path or exc.line, message


def _scorer() -> Scorer:
    config = ScoringConfig(task="classification", metrics=["accuracy"], deadline_ns=1_000_000_000,
                           window_ns=1_000_000_000, drain_ns=1_000_000_000, warmup_end_ns=0,
                           rtol=1e-6, atol=1e-6)
    scorer = Scorer(["p"], config, start_ns=0)
    scorer.record_sent(list(range(20)), [1_000_000] * 20, [1_000_000] * 20, ["a", "b"] * 10)
    return scorer


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=8)
_FIELDS = st.sampled_from(["type", "id", "prediction", "received_ns", "emitted_ns", "command_id",
                           "status", "result"])


@st.composite
def replies(draw) -> bytes | None:
    """Random bytes, or a valid single answer or reply with fields removed, retyped or added."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=64))
    if choice == 1:
        return None  # a tombstone
    if choice == 2:
        message = {"type": "prediction", "id": draw(st.integers(-3, 40)), "prediction": draw(st.sampled_from(["a", "b"]))}
    else:
        message = {"type": "reply", "command_id": draw(st.text(max_size=4)), "status": "ok", "result": None}
    for _ in range(draw(st.integers(0, 3))):
        field = draw(_FIELDS)
        if draw(st.booleans()):
            message.pop(field, None)
        else:
            message[field] = draw(_JSON)
    raw = msgspec.json.encode(message)
    cut = draw(st.integers(0, len(raw) + 5))
    return raw[:cut] if cut < len(raw) else raw


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(replies(), max_size=30))
def test_random_and_mutated_replies_never_crash_and_are_all_counted(values):
    scorer = _scorer()
    scorer.on_output("p", values, 2_000_000)
    scorer.finish(10_000_000_000)
    figures = scorer.summary()["p"]
    status = figures["status"]
    answered = status["correct"] + status["incorrect"] + status["deadline_exceeded"]
    assert answered + status["missing"] == 20  # every event ends in exactly one status
    counted = (status["syntax_error"] + status["duplicate"] + status["unknown"] + answered
               + figures.get("late_after_drain", 0) + len(scorer.replies))
    assert counted == len(values), (counted, values)  # every message counted once


_CELL = st.one_of(st.text(alphabet=string.printable, max_size=6), st.sampled_from(
    ["", "nan", "inf", "-inf", "1e999", "NaN", "null", "0x10", "1,5", '"', "'", "\\", "\x00"]),
    st.integers(-2**70, 2**70).map(str), st.floats(allow_nan=True).map(str),
).map(lambda cell: cell.replace("\n", " ").replace("\r", " "))  # one generated row, one line


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_CELL, min_size=0, max_size=5), min_size=1, max_size=12),
       skip=st.booleans(), jsonl=st.booleans())
def test_dataset_rows_with_bad_values_error_with_file_and_line_or_are_skipped(tmp_path_factory, rows, skip, jsonl):
    folder = tmp_path_factory.mktemp("data")
    if jsonl:
        path = folder / "d.jsonl"
        lines = [json.dumps(dict(zip(["a", "b", "y", "c"], r))) if len(r) % 2 else ",".join(r) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    else:
        path = folder / "d.csv"
        path.write_text("a,b,y\n" + "\n".join(",".join(r) for r in rows) + "\n")
    spec = Dataset(source="jsonl" if jsonl else "csv", path=path.name, target="y",
                   on_bad_row="skip" if skip else "error")
    try:
        stream = open_dataset(spec, base_dir=folder, seed=1)
        got = list(stream)
    except DatasetError as exc:
        message = str(exc)
        assert not skip or "header" in message, message  # skipping never raises but for the header
        assert message.startswith(str(path)) and "\n" not in message, message
        return
    for row in got:  # whatever was read can be sent: the dispatcher's encoding never fails
        protocol.encode(row.features)
    if skip:
        assert len(got) + stream.skipped_rows <= len(rows)
