"""The scorer, offline: every status and counter, warm-up, tolerance, latency split,
replies, the ledger's rules, and the shape of the summary."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import pytest

from ppipe_stream import protocol
from ppipe_stream.errors import RunError
from ppipe_stream.scoring import LedgerError, Scorer, ScoringConfig

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def scorer(pipelines=("p",), **kw) -> Scorer:
    config: dict[str, Any] = dict(task="classification", metrics=["accuracy"], deadline_ns=500 * MS,
                  window_ns=1000 * MS, drain_ns=1000 * MS, warmup_end_ns=0)
    config.update(kw)
    return Scorer(list(pipelines), ScoringConfig(**config), start_ns=T0)


def send(s: Scorer, ids, at_ms=0, labels=None):
    ids = list(ids)
    intended = [T0 + at_ms * MS] * len(ids)
    s.record_sent(ids, intended, [t + 100_000 for t in intended], labels or ["a"] * len(ids))


def answer(i, p="a", **extra) -> bytes:
    return json.dumps({"type": "prediction", "id": i, "prediction": p, **extra}).encode()


def status(s: Scorer, name="p") -> dict:
    return s.summary()[name]["status"]


def test_correct_incorrect_late_missing():
    s = scorer()
    send(s, range(4))
    s.on_output("p", [answer(0), answer(1, "b")], T0 + 10 * MS)
    s.on_output("p", [answer(2)], T0 + 600 * MS)  # after the 500 ms deadline
    s.finish(T0 + 5000 * MS)
    assert status(s) == {"correct": 1, "incorrect": 1, "deadline_exceeded": 1, "missing": 1,
                         "syntax_error": 0, "duplicate": 0, "unknown": 0}
    figures = s.summary()["p"]
    assert figures["predictions"] == 3 and figures["missing_ratio"] == 0.25
    assert figures["metrics"]["accuracy"] == 0.5  # late answers stay out of the metric


def test_an_answer_exactly_at_the_deadline_is_in_time():
    s = scorer()
    send(s, [0, 1])
    s.on_output("p", [answer(0)], T0 + 500 * MS)
    s.on_output("p", [answer(1)], T0 + 500 * MS + 1)
    s.finish(T0 + 5000 * MS)
    assert status(s)["correct"] == 1 and status(s)["deadline_exceeded"] == 1


@pytest.mark.parametrize("raw", [
    b"not json", b"", b"\xff\xfe", b'{"type":"prediction","id":0,', b"[1,2]", b'"text"', b"null",
    b'{"type":"prediction","prediction":"a"}',  # no id
    b'{"type":"prediction","id":"zero","prediction":"a"}',  # id of the wrong type
    b'{"type":"prediction","id":true,"prediction":"a"}',
    b'{"type":"prediction","id":0.0,"prediction":"a"}',
    b'{"prediction":"a","id":0}',  # no type
    b'{"type":"nope","id":0}',
    b'{"type":"prediction","ids":[0,1],"predictions":["a"]}',  # lengths differ
    b'{"type":"prediction","ids":[0]}',  # ids without predictions
    b'{"type":"prediction","predictions":["a"]}',
    b'{"type":"prediction","id":0,"prediction":"a","ids":[0],"predictions":["a"]}',  # both forms
    b'{"type":"prediction","id":0,"prediction":"a","received_ns":"soon"}',
    b'{"type":"reply","status":"ok"}',  # a reply without command_id
    b'{"type":"reply","command_id":"c1","status":"maybe"}',
    None,  # a tombstone
])
def test_garbage_is_a_syntax_error_and_never_raises(raw):
    s = scorer()
    send(s, [0])
    s.on_output("p", [raw], T0 + MS)
    s.finish(T0 + 5000 * MS)
    assert status(s)["syntax_error"] == 1 and status(s)["missing"] == 1
    assert s.replies == []


def test_garbage_does_not_spoil_the_good_answers_beside_it():
    s = scorer()
    send(s, range(3))
    s.on_output("p", [answer(0), b"{", None, answer(1, "b"), b"[]", answer(2)], T0 + MS)
    s.finish(T0 + 5000 * MS)
    assert status(s) == {"correct": 2, "incorrect": 1, "deadline_exceeded": 0, "missing": 0,
                         "syntax_error": 3, "duplicate": 0, "unknown": 0}


def test_duplicates_unknown_and_late_after_drain():
    s = scorer()
    send(s, range(2))
    s.on_output("p", [answer(0), answer(0), answer(0), answer(99), answer(-1), answer(2**70)],
                T0 + MS)
    s.advance(T0 + 10_000 * MS)  # event 1 given up on: missing
    s.on_output("p", [answer(1), answer(0)], T0 + 10_001 * MS)
    s.finish(T0 + 11_000 * MS)
    summary = s.summary()["p"]
    assert summary["status"]["duplicate"] == 2 and summary["status"]["unknown"] == 3
    assert summary["status"]["missing"] == 1 and summary["status"]["correct"] == 1
    assert summary["late_after_drain"] == 2


def test_the_first_answer_decides_even_within_one_batch():
    s = scorer()
    send(s, [0, 1])
    s.on_output("p", [answer(0, "b"), answer(0, "a"), answer(1, "a")], T0 + MS)
    s.on_output("p", [answer(1, "b")], T0 + 2 * MS)
    s.finish(T0 + 5000 * MS)
    assert status(s)["incorrect"] == 1 and status(s)["correct"] == 1
    assert status(s)["duplicate"] == 2


def test_a_late_first_answer_stays_late_when_a_duplicate_follows():
    s = scorer()
    send(s, [0])
    s.on_output("p", [answer(0)], T0 + 900 * MS)
    s.on_output("p", [answer(0)], T0 + 950 * MS)
    s.finish(T0 + 5000 * MS)
    assert status(s)["deadline_exceeded"] == 1 and status(s)["duplicate"] == 1


def test_micro_batch_counts_one_answer_per_id():
    s = scorer()
    send(s, range(4))
    batch = {"type": "prediction", "ids": [0, 1, 2, 2, 7], "predictions": ["a", "a", "b", "a", "a"]}
    s.on_output("p", [json.dumps(batch).encode()], T0 + MS)
    s.finish(T0 + 5000 * MS)
    assert status(s) == {"correct": 2, "incorrect": 1, "deadline_exceeded": 0, "missing": 1,
                         "syntax_error": 0, "duplicate": 1, "unknown": 1}


def test_an_empty_micro_batch_is_no_answer_and_no_error():
    s = scorer()
    send(s, [0])
    s.on_output("p", [b'{"type":"prediction","ids":[],"predictions":[]}'], T0 + MS)
    assert status(s)["syntax_error"] == 0 and not s.all_answered()


def test_warmup_events_are_excluded_everywhere():
    s = scorer(warmup_end_ns=T0 + 1000 * MS)
    send(s, [0], at_ms=0)
    send(s, [1, 2], at_ms=1500)
    s.on_output("p", [answer(0, "b"), answer(0, "b"), answer(1)], T0 + 1600 * MS)
    rows = s.finish(T0 + 5000 * MS).timeline_rows
    figures = s.summary()["p"]
    assert figures["status"] == {"correct": 1, "incorrect": 0, "deadline_exceeded": 0,
                                 "missing": 1, "syntax_error": 0, "duplicate": 0, "unknown": 0}
    assert figures["warmup_events"] == 1 and figures["events"] == 2
    assert figures["latency_ms"]["max"] == pytest.approx(100, rel=1e-3)  # event 0 left out
    assert sum(r["sent"] for r in rows) == 2 and sum(r["answered"] for r in rows) == 1


def test_regression_uses_the_tolerance():
    s = scorer(task="regression", metrics=["mae"], rtol=0.01, atol=0.0)
    send(s, range(2), labels=[100.0, 100.0])
    s.on_output("p", [answer(0, 100.5), answer(1, 102.0)], T0 + MS)
    s.finish(T0 + 5000 * MS)
    assert status(s)["correct"] == 1 and status(s)["incorrect"] == 1
    assert s.summary()["p"]["metrics"]["mae"] == pytest.approx(1.25)


def test_regression_tolerance_bound_is_inclusive():
    s = scorer(task="regression", metrics=["mae"], rtol=0.25, atol=0.5)
    send(s, range(3), labels=[4.0, 4.0, -4.0])  # bound: 0.5 + 0.25 * 4 = 1.5
    s.on_output("p", [answer(0, 5.5), answer(1, 5.5 + 2**-20), answer(2, -2.5)], T0 + MS)
    s.finish(T0 + 5000 * MS)
    assert status(s)["correct"] == 2 and status(s)["incorrect"] == 1


def test_regression_answers_that_are_not_numbers_are_incorrect_and_out_of_the_metric():
    s = scorer(task="regression", metrics=["mae"])
    send(s, range(5), labels=[1.0, 1.0, 1.0, 1.0, 0])
    s.on_output("p", [answer(0, 1.0), answer(1, "1.0"), answer(2, None), answer(3, True),
                      answer(4, 1e-7)], T0 + MS)
    s.finish(T0 + 5000 * MS)
    assert status(s)["correct"] == 2 and status(s)["incorrect"] == 3
    assert s.summary()["p"]["metrics"]["mae"] == pytest.approx(0.5e-7)


def test_classification_compares_by_equality_across_number_types():
    s = scorer()
    send(s, range(4), labels=[1, np.int64(2), "x", True])
    s.on_output("p", [answer(0, 1.0), answer(1, 2), answer(2, ["x"]), answer(3, {"a": 1})],
                T0 + MS)
    s.finish(T0 + 5000 * MS)
    assert status(s)["correct"] == 2 and status(s)["incorrect"] == 2
    assert s.summary()["p"]["metrics"]["accuracy"] == 0.5


def test_latency_is_open_loop_and_split():
    s = scorer()
    send(s, [0])  # intended T0, sent T0 + 0.1 ms
    s.on_output("p", [answer(0, received_ns=T0 + 2 * MS, emitted_ns=T0 + 5 * MS)], T0 + 8 * MS)
    s.finish(T0 + 5000 * MS)
    figures = s.summary()["p"]
    assert figures["latency_ms"]["p50"] == pytest.approx(8.0, rel=1e-3)
    assert figures["latency_ms"]["mean"] == pytest.approx(8.0, abs=1e-6)
    split = figures["latency_split_ms"]
    assert split["broker_in"]["p50"] == pytest.approx(1.9, rel=1e-2)
    assert split["compute"]["p50"] == pytest.approx(3.0, rel=1e-2)
    assert split["broker_out"]["p99"] == pytest.approx(3.0, rel=1e-2)


def test_split_needs_both_stamps_and_covers_micro_batches():
    s = scorer()
    send(s, range(4))
    batch = {"type": "prediction", "ids": [1, 2], "predictions": ["a", "a"],
             "received_ns": T0 + MS, "emitted_ns": T0 + 2 * MS}
    s.on_output("p", [answer(0, received_ns=T0 + MS), json.dumps(batch).encode(),
                      answer(3, received_ns=T0 + MS, emitted_ns=T0 + 3 * MS)], T0 + 4 * MS)
    s.finish(T0 + 5000 * MS)
    split = s.summary()["p"]["latency_split_ms"]
    assert split["compute"]["p50"] == pytest.approx(1.0, rel=1e-2)  # 2 of 3 stamped answers
    assert split["compute"]["max"] == pytest.approx(2.0, rel=1e-2)


def test_without_stamps_the_split_is_empty():
    s = scorer()
    send(s, [0])
    s.on_output("p", [answer(0)], T0 + MS)
    split = s.summary()["p"]["latency_split_ms"]
    assert split["broker_in"] == {"p50": None, "p90": None, "p99": None, "max": None}


def test_replies_are_kept_for_the_command_judge():
    s = scorer()
    reply = protocol.encode(protocol.Reply(command_id="c7", status="ok", result=[1, 2]))
    s.on_output("p", [reply, answer(5)], T0 + 3 * MS)
    assert len(s.replies) == 1
    pipeline, message, read_ns = s.replies[0]
    assert (pipeline, message.command_id, message.result) == ("p", "c7", [1, 2])
    assert read_ns == T0 + 3 * MS
    assert status(s)["unknown"] == 1


def test_all_answered_tracks_every_pipeline_and_gives_up_on_the_evicted():
    s = scorer(pipelines=("p", "q"))
    send(s, range(2))
    s.on_output("p", [answer(0), answer(1)], T0 + MS)
    assert not s.all_answered()
    s.on_output("q", [answer(0)], T0 + MS)
    assert not s.all_answered()
    s.advance(T0 + 10_000 * MS)
    assert s.all_answered() and status(s, "q")["missing"] == 1 and status(s, "p")["missing"] == 0


def test_ids_skipped_by_the_dispatcher_are_unknown_and_never_missing():
    s = scorer()
    s.record_sent([0, 3], [T0, T0], [T0, T0], ["a", "a"])
    s.on_output("p", [answer(0), answer(1), answer(3)], T0 + MS)
    assert s.all_answered()
    s.advance(T0 + 5000 * MS)  # everything dropped, holes included
    assert s.all_answered() and s.in_flight == 0
    s.finish(T0 + 5000 * MS)
    assert status(s)["unknown"] == 1 and status(s)["correct"] == 2 and status(s)["missing"] == 0


def test_an_id_sent_twice_is_a_harness_bug():
    s = scorer()
    send(s, [0, 1])
    with pytest.raises(LedgerError, match="rising order") as info:
        send(s, [1])
    assert isinstance(info.value, RunError)
    with pytest.raises(LedgerError):
        s.record_sent([5, 4], [T0, T0], [T0, T0], ["a", "a"])
    with pytest.raises(LedgerError, match="hole of"):  # would allocate for every skipped id
        s.record_sent([10**12], [T0], [T0], ["a"])
    send(s, [2])  # the ledger is still usable
    assert s.in_flight == 3


def test_summary_has_the_results_md_keys_and_is_json():
    s = scorer(pipelines=("p", "q"), metrics=["accuracy", "f1"])
    send(s, range(3))
    s.on_output("p", [answer(0), answer(1)], T0 + 5 * MS)
    s.finish(T0 + 5000 * MS)
    summary = s.summary()
    assert set(summary) == {"p", "q"}
    figures = summary["p"]
    assert set(figures) == {"predictions", "status", "throughput_eps", "latency_ms",
                            "latency_split_ms", "metrics", "events", "warmup_events",
                            "late_after_drain", "missing_ratio"}
    assert set(figures["latency_ms"]) == {"mean", "p50", "p90", "p99", "p999", "max"}
    assert set(figures["metrics"]) == {"accuracy", "f1"}
    assert summary["q"]["latency_ms"]["p99"] is None and summary["q"]["metrics"]["f1"] is None
    json.dumps(summary)  # plain Python values only
    msgspec.json.encode(s.snapshot(T0 + 5000 * MS))


def test_throughput_is_answers_over_the_scored_period():
    s = scorer(warmup_end_ns=T0 + 1000 * MS)
    intended = [T0 + (500 + k * 10) * MS for k in range(450)]  # 100 events/s from 0.5 s
    s.record_sent(range(450), intended, intended, ["a"] * 450)  # one batch across the warm-up
    for i in range(450):
        s.on_output("p", [answer(i)], intended[i] + 5 * MS)
    s.finish(T0 + 9000 * MS)
    # 400 scored answers, from the first scored event (1.000 s) to the last read (4.995 s)
    figures = s.summary()["p"]
    assert figures["predictions"] == 400 and figures["warmup_events"] == 50
    assert figures["throughput_eps"] == pytest.approx(400 / 3.995, abs=1e-3)


def test_snapshot_is_live_and_cheap():
    s = scorer(metrics=["accuracy"])
    send(s, range(10))
    s.on_output("p", [answer(i, "a" if i < 8 else "b") for i in range(10)], T0 + 20 * MS)
    live = s.snapshot(T0 + 30 * MS)["p"]  # no window closed yet
    assert live["sent"] == 10 and live["answered"] == 10 and live["answered_rate"] == 1.0
    assert live["latency_p50_ms"] == pytest.approx(20, rel=1e-3)
    assert live["metrics"]["accuracy"] == 0.8 and live["status"]["incorrect"] == 2


def test_config_is_checked():
    with pytest.raises(ValueError, match="task"):
        ScoringConfig(task="ranking", deadline_ns=1, window_ns=1, drain_ns=1)
    with pytest.raises(ValueError, match="window"):
        ScoringConfig(deadline_ns=1, window_ns=0, drain_ns=1)
