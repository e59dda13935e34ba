"""Dispatch workers, offline: the split of partitions, the lossless merge of lag
histograms and of per-worker records, and answers that reach the scorer before
their record (the race workers open)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppipe_stream.dispatch.workers import DispatchWorkers, _Worker, owned_partitions
from ppipe_stream.dispatch.base import DispatchFigures, DispatchStats
from ppipe_stream.scoring.hist import MAX_US, decode, encode, merge, new_histogram, quantiles_ms, record_many
from ppipe_stream.scenario import loads_scenario
from ppipe_stream.scoring import Scorer, ScoringConfig
from ppipe_stream.scoring import scorer as scorer_module

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


# -- the split ---------------------------------------------------------------------

@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 7, 12])
def test_workers_own_disjoint_partitions_covering_all(partitions):
    for workers in range(1, partitions + 1):
        shares = [owned_partitions(k, workers, partitions) for k in range(workers)]
        flat = sorted(p for share in shares for p in share)
        assert flat == list(range(partitions))  # every partition once
        assert all(share for share in shares)  # no idle worker when workers <= partitions
        assert all(p % workers == k for k, share in enumerate(shares) for p in share)


def _scenario_text(workers: int, partitions: int) -> str:
    return f"""
name = "w"
[dataset]
source = "synth"
generator = "sea"
[load]
profile = "constant"
rate = 10
count = 10
workers = {workers}
[[pipelines]]
name = "p"
runtime = "process"
command = ["true"]
[kafka]
partitions = {partitions}
"""


def test_more_workers_than_partitions_is_an_error_naming_the_key():
    from ppipe_stream.errors import ScenarioError

    with pytest.raises(ScenarioError, match=r"\$\.load\.workers.*\$\.kafka\.partitions"):
        loads_scenario(_scenario_text(3, 2))
    assert loads_scenario(_scenario_text(2, 2)).scenario.load.workers == 2
    with pytest.raises(ScenarioError, match=r"load\.workers"):
        loads_scenario(_scenario_text(0, 2))


def test_workers_default_to_one_on_every_profile():
    assert loads_scenario(_scenario_text(1, 4).replace("workers = 1\n", "")).scenario.load.workers == 1


# -- histograms ----------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 2 * MAX_US), max_size=500), min_size=1, max_size=4))
def test_merged_worker_histograms_equal_one_histogram_of_all_values(parts):
    one = new_histogram()
    record_many(one, [v for part in parts for v in part] or [])
    workers = []
    for part in parts:
        h = new_histogram()
        record_many(h, part)
        workers.append(decode(encode(h)))  # as they cross the pipe
    merged = merge(workers)
    assert merged.get_total_count() == one.get_total_count()
    assert list(merged.counts) == list(one.counts)
    assert quantiles_ms(merged) == quantiles_ms(one)
    if one.get_total_count():
        assert merged.get_min_value() == one.get_min_value()


# -- records -------------------------------------------------------------------------

def _pool(workers: int, partitions: int) -> tuple[DispatchWorkers, list]:
    loaded = loads_scenario(_scenario_text(workers, partitions))
    pool = DispatchWorkers(loaded, bootstrap="unused", topic="unused")
    calls: list = []
    pool.bind(on_sent=lambda *args: calls.append([list(np.asarray(a).tolist()) for a in args]),
              target_rate=10.0)
    pool._procs = [_Worker(k, None, None) for k in range(workers)]
    return pool, calls


def _chunk(ids, wall=T0):
    ids = np.asarray(ids, dtype=np.int64)
    intended = wall + ids * 1000
    return (ids, intended, intended + 7_000, [f"y{i}" for i in ids.tolist()], None)


def test_records_reach_the_ledger_in_id_order_only_below_every_workers_progress():
    pool, calls = _pool(2, 4)
    a, b = pool._procs
    # worker 0 owns partitions 0, 2: ids 0, 2, 4, ...; worker 1 the odd ids
    a.chunks.append(_chunk([0, 2, 4, 6])); a.covered = 8
    pool._merge()
    assert calls == []  # worker 1 has reported nothing: id 1 may still come
    b.chunks.append(_chunk([1, 3])); b.covered = 4
    pool._merge()
    assert calls[0][0] == [0, 1, 2, 3]
    assert calls[0][3] == ["y0", "y1", "y2", "y3"]
    b.chunks.append(_chunk([5, 7, 9])); b.covered = 10
    a.chunks.append(_chunk([8])); a.covered = 10
    pool._merge()
    assert calls[1][0] == [4, 5, 6, 7, 8, 9]
    assert calls[1][2] == [T0 + i * 1000 + 7000 for i in range(4, 10)]
    stats = pool.stats
    assert stats.events_sent == 10
    assert stats.first_intended_ns == T0 and stats.last_sent_ns == T0 + 9000 + 7000


def test_dispatch_figures_of_workers_equal_those_of_one_process():
    """Counts, achieved rate and lag percentiles read the same whether one process
    recorded every stamp or two workers each recorded theirs."""
    rng = np.random.default_rng(3)
    n = 5000
    intended = T0 + np.arange(n, dtype=np.int64) * 10_000
    sent = np.maximum.accumulate(intended + rng.integers(50_000, 9_000_000, n))  # one clock
    one = DispatchStats(100_000.0)
    one.events_sent, one.first_intended_ns = n, int(intended[0])
    one.last_sent_ns, one.last_intended_ns = int(sent[-1]), int(intended[-1])
    one.record_lag((sent - intended) // 1000)
    one.record_planned(int(intended[0]), int(intended[-1]) + 50_000)
    one.dropped, one.schedule_lost_s = 7, 0.05
    pool, calls = _pool(2, 4)
    pool.stats.target_rate = 100_000.0
    for worker in pool._procs:
        mine = np.arange(n)[np.arange(n) % 2 == worker.index]
        own = DispatchStats(100_000.0)
        own.record_lag((sent[mine] - intended[mine]) // 1000)
        worker.chunks.append((mine.astype(np.int64), intended[mine], sent[mine],
                              [None] * len(mine), None))
        worker.covered = float("inf")
        last = int(intended[mine][-1]) + (50_000 if worker.index else 0)  # worker 1 dropped the last
        worker.figures = DispatchFigures(
            finished=True, dataset_exhausted=False, labels_sent=0, events_sent=len(mine),
            lag_us=encode(own.lag_us), dropped=3 + worker.index,
            first_planned_ns=int(intended[mine][0]), last_planned_ns=last,
            schedule_lost_s=0.05 * (1 + worker.index), overloaded=False, cut=False)
        worker.loop_us = encode(own.lag_us)
    pool._merge()
    pool._update_figures()
    assert pool.stats.summary() == one.summary()
    assert pool.stats.summary()["dropped"] == 7 and pool.stats.planned_events == n + 7
    assert pool.stats.finished
    assert [i for call in calls for i in call[0]] == list(range(n))


# -- answers before their record -------------------------------------------------

def _scorer(hold: bool) -> Scorer:
    config = ScoringConfig(task="classification", metrics=["accuracy"], deadline_ns=500 * MS,
                           window_ns=1000 * MS, drain_ns=1000 * MS)
    return Scorer(["p"], config, start_ns=T0, hold_unrecorded=hold)


def _answer(i, p="a", **extra) -> bytes:
    return json.dumps({"type": "prediction", "id": i, "prediction": p, **extra}).encode()


def _send(s: Scorer, ids, at_ms=0, label="a"):
    ids = list(ids)
    intended = [T0 + at_ms * MS] * len(ids)
    s.record_sent(ids, intended, [t + 100_000 for t in intended], [label] * len(ids))


def test_an_answer_read_before_its_record_is_judged_once_the_record_comes():
    s = _scorer(hold=True)
    _send(s, [0, 1])
    s.on_output("p", [_answer(0), _answer(2), _answer(3, "b")], T0 + 20 * MS)  # 2, 3 not recorded yet
    assert s.held == 2
    _send(s, [2, 3])
    assert s.held == 0
    s.finish(T0 + 5000 * MS)
    figures = s.summary()["p"]
    assert figures["status"]["unknown"] == 0
    assert figures["status"]["correct"] == 2 and figures["status"]["incorrect"] == 1
    assert figures["status"]["missing"] == 1  # id 1
    assert figures["latency_ms"]["max"] == pytest.approx(20.0, rel=1e-3)  # read time kept


def test_without_holding_such_an_answer_is_unknown():
    """The behaviour of one dispatcher (the ledger is always first there)."""
    s = _scorer(hold=False)
    _send(s, [0, 1])
    s.on_output("p", [_answer(2)], T0 + 20 * MS)
    _send(s, [2])
    s.finish(T0 + 5000 * MS)
    assert s.summary()["p"]["status"]["unknown"] == 1


def test_a_held_answer_never_recorded_is_unknown_at_the_end():
    s = _scorer(hold=True)
    _send(s, [0])
    s.on_output("p", [_answer(0), _answer(10**6), _answer(-3)], T0 + 5 * MS)
    assert s.held == 1  # a negative id is never going to be sent: judged at once
    s.finish(T0 + 5000 * MS)
    status = s.summary()["p"]["status"]
    assert status["unknown"] == 2 and status["correct"] == 1 and s.held == 0


def test_held_answers_keep_their_order_stamps_and_duplicates():
    s = _scorer(hold=True)
    stamped = {"received_ns": T0 + 8 * MS, "emitted_ns": T0 + 9 * MS}
    s.on_output("p", [_answer(0, **stamped), _answer(0, "b")], T0 + 10 * MS)
    s.on_output("p", [_answer(1, "b")], T0 + 11 * MS)
    _send(s, [0, 1])
    s.finish(T0 + 5000 * MS)
    figures = s.summary()["p"]
    assert figures["status"]["correct"] == 1  # the first answer to 0 decides
    assert figures["status"]["duplicate"] == 1
    assert figures["status"]["incorrect"] == 1
    assert figures["latency_split_ms"]["compute"]["p50"] == pytest.approx(1.0, rel=1e-2)


def test_holding_is_bounded(monkeypatch):
    monkeypatch.setattr(scorer_module, "MAX_HELD", 3)
    s = _scorer(hold=True)
    s.on_output("p", [_answer(i) for i in range(5)], T0 + MS)
    assert s.held == 0  # five answers over the bound of three: judged at once
    assert s.summary()["p"]["status"]["unknown"] == 5
    s.on_output("p", [_answer(i) for i in range(5, 7)], T0 + MS)
    assert s.held == 2
