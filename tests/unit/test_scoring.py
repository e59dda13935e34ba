"""The scorer, offline: every status and counter, warm-up, windows, bounded state,
and percentiles against exact ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppipe_stream.scoring import Scorer, ScoringConfig

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def scorer(pipelines=("p",), **kw) -> Scorer:
    config = dict(task="classification", metrics=["accuracy"], deadline_ns=500 * MS,
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


@pytest.mark.parametrize("raw", [
    b"not json", b"[1,2]", b'"text"', b'{"type":"prediction","prediction":"a"}',
    b'{"type":"prediction","id":"zero","prediction":"a"}', b'{"type":"nope","id":0}',
    b'{"type":"prediction","ids":[0,1],"predictions":["a"]}', b'{"type":"reply","status":"ok"}', None,
])
def test_garbage_is_a_syntax_error_and_never_raises(raw):
    s = scorer()
    send(s, [0])
    s.on_output("p", [raw], T0 + MS)
    s.finish(T0 + 5000 * MS)
    assert status(s)["syntax_error"] == 1 and status(s)["missing"] == 1


def test_duplicates_unknown_and_late_after_drain():
    s = scorer()
    send(s, range(2))
    s.on_output("p", [answer(0), answer(0), answer(0), answer(99)], T0 + MS)
    s.advance(T0 + 10_000 * MS)  # event 1 given up on: missing
    s.on_output("p", [answer(1)], T0 + 10_001 * MS)
    s.finish(T0 + 11_000 * MS)
    summary = s.summary()["p"]
    assert summary["status"]["duplicate"] == 2 and summary["status"]["unknown"] == 1
    assert summary["status"]["missing"] == 1 and summary["late_after_drain"] == 1


def test_micro_batch_counts_one_answer_per_id():
    s = scorer()
    send(s, range(3))
    batch = {"type": "prediction", "ids": [0, 1, 2], "predictions": ["a", "a", "b"]}
    s.on_output("p", [json.dumps(batch).encode()], T0 + MS)
    s.finish(T0 + 5000 * MS)
    assert status(s)["correct"] == 2 and status(s)["incorrect"] == 1


def test_warmup_events_are_excluded():
    s = scorer(warmup_end_ns=T0 + 1000 * MS)
    send(s, [0], at_ms=0)
    send(s, [1], at_ms=1500)
    s.on_output("p", [answer(0, "b"), answer(1)], T0 + 1600 * MS)
    s.finish(T0 + 5000 * MS)
    figures = s.summary()["p"]
    assert figures["status"]["correct"] == 1 and figures["status"]["incorrect"] == 0
    assert figures["warmup_events"] == 1 and figures["events"] == 1


def test_regression_uses_the_tolerance():
    s = scorer(task="regression", metrics=["mae"], rtol=0.01, atol=0.0)
    send(s, range(2), labels=[100.0, 100.0])
    s.on_output("p", [answer(0, 100.5), answer(1, 102.0)], T0 + MS)
    s.finish(T0 + 5000 * MS)
    assert status(s)["correct"] == 1 and status(s)["incorrect"] == 1
    assert s.summary()["p"]["metrics"]["mae"] == pytest.approx(1.25)


def test_latency_is_open_loop_and_split():
    s = scorer()
    send(s, [0])  # intended T0, sent T0 + 0.1 ms
    s.on_output("p", [answer(0, received_ns=T0 + 2 * MS, emitted_ns=T0 + 5 * MS)], T0 + 8 * MS)
    s.finish(T0 + 5000 * MS)
    figures = s.summary()["p"]
    assert figures["latency_ms"]["p50"] == pytest.approx(8.0, rel=1e-3)
    split = figures["latency_split_ms"]
    assert split["broker_in"]["p50"] == pytest.approx(1.9, rel=1e-2)
    assert split["compute"]["p50"] == pytest.approx(3.0, rel=1e-2)
    assert split["broker_out"]["p50"] == pytest.approx(3.0, rel=1e-2)


def test_windows_make_timeline_rows():
    s = scorer(pipelines=("p", "q"))
    send(s, range(10), at_ms=100)
    s.on_output("p", [answer(i) for i in range(10)], T0 + 300 * MS)
    rows = s.advance(T0 + 1500 * MS).timeline_rows
    assert [(r["time_s"], r["pipeline"], r["sent"], r["answered"]) for r in rows] == [
        (0.0, "p", 10, 10), (0.0, "q", 10, 0)]
    assert rows[0]["accuracy"] == 1.0 and rows[0]["latency_p50_ms"] == pytest.approx(200, rel=1e-3)


def test_all_answered_tracks_every_pipeline():
    s = scorer(pipelines=("p", "q"))
    send(s, range(2))
    s.on_output("p", [answer(0), answer(1)], T0 + MS)
    assert not s.all_answered()
    s.on_output("q", [answer(0), answer(1)], T0 + MS)
    assert s.all_answered()


def test_join_state_stays_bounded():
    s = scorer(deadline_ns=100 * MS, drain_ns=100 * MS)
    for second in range(100):  # 100 s at 1000 events/s, answered at once
        base = second * 1000
        ids = range(base, base + 1000)
        send(s, ids, at_ms=second * 1000)
        s.on_output("p", [answer(i) for i in ids], T0 + (second * 1000 + 5) * MS)
        s.advance(T0 + (second * 1000 + 999) * MS)
        assert s.in_flight <= 1000
    s.finish(T0 + 300_000 * MS)
    assert status(s)["correct"] == 100_000


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 5_000_000), min_size=1, max_size=3000))
def test_percentiles_match_exact_ones_within_hdr_precision(latencies_us):
    s = scorer(deadline_ns=10**13, drain_ns=10**13)
    send(s, range(len(latencies_us)))
    for i, lat in enumerate(latencies_us):
        s.on_output("p", [answer(i)], T0 + lat * 1000)
    s.finish(T0 + 10**12)
    figures = s.summary()["p"]["latency_ms"]
    exact = np.asarray(latencies_us) / 1000
    for key, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        rank = int(q / 100 * len(exact) + 0.5)  # HdrHistogram's rank: rounded, not ceiled
        truth = np.sort(exact)[max(rank - 1, 0)]
        assert figures[key] == pytest.approx(truth, rel=2e-3, abs=1e-3)
    assert figures["max"] == pytest.approx(exact.max(), rel=2e-3)
    assert figures["mean"] == pytest.approx(exact.mean(), rel=1e-6, abs=1e-3)
