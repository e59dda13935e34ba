"""Timeline windows of the scorer, hlog intervals, and memory that stays flat."""

from __future__ import annotations

import gc
import json
import tracemalloc
from typing import Any

import pytest

from ppipe_stream.scoring import Scorer, ScoringConfig

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
COLUMNS = ["time_s", "pipeline", "sent", "answered", "throughput_eps", "latency_p50_ms",
           "latency_p99_ms", "accuracy", "f1", "lag_ms_p99", "correct", "incorrect",
           "deadline_exceeded", "missing", "syntax_error", "duplicate", "unknown", "sent_warmup"]


def scorer(pipelines=("p",), **kw) -> Scorer:
    config: dict[str, Any] = dict(task="classification", metrics=["accuracy", "f1"], deadline_ns=500 * MS,
                  window_ns=1000 * MS, drain_ns=1000 * MS, warmup_end_ns=0)
    config.update(kw)
    return Scorer(list(pipelines), ScoringConfig(**config), start_ns=T0)


def send(s: Scorer, ids, at_ms=0, lag_ms=0.1, labels=None):
    ids = list(ids)
    intended = [T0 + at_ms * MS] * len(ids)
    s.record_sent(ids, intended, [t + int(lag_ms * MS) for t in intended],
                  labels or ["a"] * len(ids))


def answers(ids, p="a") -> bytes:
    ids = list(ids)
    return json.dumps({"type": "prediction", "ids": ids, "predictions": [p] * len(ids)}).encode()


def test_one_row_per_window_per_pipeline_with_every_column():
    s = scorer(pipelines=("p", "q"))
    send(s, range(10), at_ms=100, lag_ms=2)
    s.on_output("p", [answers(range(10))], T0 + 300 * MS)
    s.on_output("q", [b"junk"], T0 + 400 * MS)
    advance = s.advance(T0 + 1500 * MS)
    rows = advance.timeline_rows
    assert [list(r) for r in rows] == [COLUMNS, COLUMNS]
    assert [(r["time_s"], r["pipeline"], r["sent"], r["answered"]) for r in rows] == [
        (0.0, "p", 10, 10), (0.0, "q", 10, 0)]
    p, q = rows
    assert p["throughput_eps"] == 10.0 and p["accuracy"] == 1.0 and p["correct"] == 10
    assert p["latency_p50_ms"] == pytest.approx(200, rel=1e-3)
    assert p["lag_ms_p99"] == pytest.approx(2.0, rel=1e-3)
    assert q["accuracy"] is None and q["latency_p99_ms"] is None and q["syntax_error"] == 1
    assert [(name, start, end, h.get_total_count()) for name, start, end, h in
            advance.hlog_intervals] == [("p", T0, T0 + 1000 * MS, 10), ("q", T0, T0 + 1000 * MS, 0)]
    assert s.advance(T0 + 1500 * MS).timeline_rows == []  # nothing closes twice


def test_window_metrics_are_the_windows_own_and_the_summary_is_cumulative():
    s = scorer()
    send(s, range(10), at_ms=0)
    s.on_output("p", [answers(range(10), "b")], T0 + 100 * MS)  # all wrong in window 0
    send(s, range(10, 20), at_ms=1000)
    s.on_output("p", [answers(range(10, 20), "a")], T0 + 1100 * MS)  # all right in window 1
    rows = s.advance(T0 + 2000 * MS).timeline_rows
    assert [r["accuracy"] for r in rows] == [0.0, 1.0]
    assert s.summary()["p"]["metrics"]["accuracy"] == 0.5


def test_sent_counts_by_intended_time_and_answers_by_read_time():
    s = scorer()
    s.record_sent([0, 1, 2], [T0 + 900 * MS, T0 + 999 * MS, T0 + 1000 * MS], [T0 + 1001 * MS] * 3,
                  ["a"] * 3)  # one batch across two windows
    s.on_output("p", [answers([0, 1, 2])], T0 + 1200 * MS)
    rows = s.advance(T0 + 2000 * MS).timeline_rows
    assert [(r["sent"], r["answered"]) for r in rows] == [(2, 0), (1, 3)]
    assert rows[0]["lag_ms_p99"] == pytest.approx(101, rel=1e-3)


def test_missing_is_counted_in_the_window_where_it_was_decided():
    s = scorer(deadline_ns=200 * MS, drain_ns=300 * MS)
    send(s, range(3), at_ms=0)
    s.on_output("p", [answers([0])], T0 + 50 * MS)
    rows = s.advance(T0 + 400 * MS).timeline_rows  # not yet given up
    assert rows == [] and s.summary()["p"]["status"]["missing"] == 0
    s.advance(T0 + 1600 * MS)  # given up on at 1.6 s (window 1), window 0 closes
    rows = s.advance(T0 + 2100 * MS).timeline_rows
    assert [(r["time_s"], r["missing"]) for r in rows] == [(1.0, 2)]


def test_finish_closes_every_window_and_the_last_one_is_partial():
    s = scorer()
    send(s, range(4), at_ms=2100)
    s.on_output("p", [answers(range(4))], T0 + 2200 * MS)
    advance = s.finish(T0 + 2500 * MS)
    rows = advance.timeline_rows
    assert advance.hlog_intervals[-1][1:3] == (T0 + 2000 * MS, T0 + 2500 * MS)
    assert [r["time_s"] for r in rows] == [0.0, 1.0, 2.0]
    assert rows[-1]["answered"] == 4 and rows[-1]["throughput_eps"] == pytest.approx(8.0)
    assert s.finish(T0 + 2600 * MS).timeline_rows == []


def test_an_answer_read_after_its_window_closed_goes_to_the_open_one():
    s = scorer()
    send(s, [0], at_ms=500)
    s.advance(T0 + 1500 * MS)
    s.on_output("p", [answers([0])], T0 + 900 * MS)  # stamped before a tick that already ran
    rows = s.advance(T0 + 2500 * MS).timeline_rows
    assert [(r["time_s"], r["answered"]) for r in rows] == [(1.0, 1)]


def test_hlog_intervals_add_up_to_the_summary():
    s = scorer()
    total = 0
    intervals = []
    for second in range(5):
        ids = range(second * 50, second * 50 + 50)
        send(s, ids, at_ms=second * 1000)
        s.on_output("p", [answers(ids)], T0 + (second * 1000 + 40 + second) * MS)
        intervals += s.advance(T0 + (second * 1000 + 999) * MS).hlog_intervals
        total += 50
    intervals += s.finish(T0 + 9000 * MS).hlog_intervals
    assert sum(h.get_total_count() for *_, h in intervals) == total
    assert s.summary()["p"]["latency_ms"]["max"] == pytest.approx(44, rel=1e-3)


def run_steady(s: Scorer, seconds: range, rate: int = 1000) -> None:
    """``rate`` events a second, every one answered 5 ms later, a tick each 100 ms."""
    for second in seconds:
        for tenth in range(10):
            base = second * rate + tenth * rate // 10
            ids = range(base, base + rate // 10)
            at = second * 1000 + tenth * 100
            send(s, ids, at_ms=at)
            s.on_output("p", [answers(ids)], T0 + (at + 5) * MS)
            s.advance(T0 + (at + 99) * MS)


def test_join_state_stays_bounded_over_200k_events():
    s = scorer(deadline_ns=100 * MS, drain_ns=200 * MS)
    run_steady(s, range(20))
    size = s.state_size
    run_steady(s, range(20, 200))
    assert s.in_flight <= 400  # rate x (deadline + drain) + one tick
    assert s.state_size == size  # no growth after the first 20 s
    s.finish(T0 + 300_000 * MS)
    assert s.summary()["p"]["status"]["correct"] == 200_000 and s.in_flight == 0


def test_memory_is_flat_when_the_run_doubles():
    s = scorer(deadline_ns=100 * MS, drain_ns=200 * MS)
    run_steady(s, range(10))
    tracemalloc.start()
    try:
        run_steady(s, range(10, 20))
        gc.collect()  # closed windows' histograms are freed by the cycle collector
        before = tracemalloc.get_traced_memory()[0]
        run_steady(s, range(20, 60))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 256 * 1024, f"grew by {after - before} bytes over 40k events"


def test_warmup_events_are_counted_as_sent_in_their_window_but_not_scored():
    """The throughput chart showed sent=0 through the warm-up while 400 events went."""
    s = scorer(warmup_end_ns=T0 + 1500 * MS)
    send(s, range(4), at_ms=100)
    send(s, range(4, 6), at_ms=1200)
    send(s, range(6, 9), at_ms=1700)
    rows = s.advance(T0 + 2600 * MS).timeline_rows
    assert [(r["time_s"], r["sent"], r["sent_warmup"]) for r in rows] == [(0.0, 0, 4), (1.0, 3, 2)]
