"""Property tests (hypothesis) of the scorer against plain reference computations:
percentiles vs exact ones, the numpy histogram paths vs hdrh's own, statuses vs a
naive judge, batched metrics vs one river update per answer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import river.metrics as rm
from hypothesis import given, settings
from hypothesis import strategies as st

from ppipe_stream.scoring.hist import counts_view, new_histogram, quantiles_ms, record_array
from ppipe_stream.scoring import Scorer, ScoringConfig
from ppipe_stream.scoring.metrics import MetricSet, feed, resolve_metric

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def answer(i, p="a") -> bytes:
    return json.dumps({"type": "prediction", "id": i, "prediction": p}).encode()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 5_000_000), min_size=1, max_size=3000))
def test_percentiles_match_exact_ones_within_hdr_precision(latencies_us):
    s = Scorer(["p"], ScoringConfig(deadline_ns=10**13, window_ns=10**9, drain_ns=10**13),
               start_ns=T0)
    s.record_sent(range(len(latencies_us)), [T0] * len(latencies_us), [T0] * len(latencies_us),
                  ["a"] * len(latencies_us))
    order = np.argsort(latencies_us, kind="stable")
    for i in order.tolist():  # read in time order, one batch per answer
        s.on_output("p", [answer(i)], T0 + latencies_us[i] * 1000)
        if i % 97 == 0:
            s.advance(T0 + latencies_us[i] * 1000)
    s.finish(T0 + 10**12)
    figures = s.summary()["p"]["latency_ms"]
    exact = np.sort(np.asarray(latencies_us)) / 1000
    for key, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
        rank = max(int(q / 100 * len(exact) + 0.5), 1)  # HdrHistogram's rank: rounded
        assert figures[key] == pytest.approx(exact[rank - 1], rel=1e-3, abs=1e-3)
    assert figures["max"] == pytest.approx(exact.max(), rel=1e-3)
    assert figures["mean"] == pytest.approx(exact.mean(), rel=1e-9, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 3_600_000_000), st.integers(0, 5000),
                          st.sampled_from([0, 1, 2047, 2048, 4095, 4096, 2**31])),
                min_size=0, max_size=3000))
def test_numpy_recording_equals_hdrh_value_by_value(values):
    ours, theirs = new_histogram(), new_histogram()
    record_array(ours, values)
    for value in values:
        theirs.record_value(value)
    assert np.array_equal(counts_view(ours), counts_view(theirs))
    assert ours.get_total_count() == theirs.get_total_count()
    assert ours.get_max_value() == theirs.get_max_value()
    assert ours.get_min_value() == theirs.get_min_value()
    want = theirs.get_percentile_to_value_dict([50, 90, 99, 99.9]) if values else {}
    got = quantiles_ms(ours, unit_per_ms=1)
    for key, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
        assert got[key] == (want[q] if values else None)


def test_quantiles_of_several_histograms_are_those_of_their_sum():
    a, b, both = new_histogram(), new_histogram(), new_histogram()
    record_array(a, range(1, 1000))
    record_array(b, range(5000, 9000, 3))
    both.add(a)
    both.add(b)
    assert quantiles_ms([a, b]) == quantiles_ms(both)


def reference(events, steps, *, deadline, drain, warmup):
    """A naive judge: dicts and loops, straight from protocol.md."""
    status = dict.fromkeys(["correct", "incorrect", "deadline_exceeded", "missing",
                            "syntax_error", "duplicate", "unknown"], 0)
    late_after_drain = 0
    answered, evicted = set(), set()
    n = len(events)
    for kind, now, batch in steps:
        if kind == "tick":
            for i, (intended, _) in enumerate(events):
                if i not in evicted and intended < now - deadline - drain:
                    evicted.add(i)
                    if i not in answered and intended >= warmup:
                        status["missing"] += 1
            continue
        for i, guess in batch:
            if i is None:
                status["syntax_error"] += 1
            elif not 0 <= i < n:
                status["unknown"] += 1
            elif i in evicted:
                late_after_drain += 1
            elif i in answered:
                status["duplicate"] += events[i][0] >= warmup
            else:
                answered.add(i)
                intended, label = events[i]
                if intended < warmup:
                    continue
                if now - intended > deadline:
                    status["deadline_exceeded"] += 1
                else:
                    status["correct" if guess == label else "incorrect"] += 1
    for i, (intended, _) in enumerate(events):
        if i not in evicted and i not in answered and intended >= warmup:
            status["missing"] += 1
    return status, late_after_drain


@st.composite
def runs(draw):
    """Events (intended ms, label), steps (tick or answers at a ms), and the rules;
    times often land exactly on a deadline, a drop or the warm-up's end."""
    n = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.integers(0, 300), min_size=n, max_size=n))
    intended = np.cumsum(gaps).tolist()  # ms, rising as ids are
    labels = draw(st.lists(st.sampled_from("ab"), min_size=n, max_size=n))
    deadline, drain = draw(st.sampled_from([0, 50, 300])), draw(st.sampled_from([0, 500]))
    warmup = draw(st.sampled_from([0, 1000, *intended]))
    edges = sorted({t + d for t in intended for d in (deadline, deadline + 1,
                                                      deadline + drain, deadline + drain + 1)})
    times = sorted(draw(st.lists(st.one_of(st.integers(0, 8000), st.sampled_from(edges)),
                                 min_size=1, max_size=40)))
    steps = []
    for now in times:
        if draw(st.booleans()):
            steps.append(("tick", now, []))
        else:
            batch = draw(st.lists(st.tuples(st.one_of(st.none(), st.integers(-2, n + 2)),
                                            st.sampled_from("ab")), min_size=1, max_size=8))
            steps.append(("answers", now, batch))
    return list(zip(intended, labels)), steps, deadline, drain, warmup


@settings(max_examples=200, deadline=None)
@given(runs())
def test_statuses_agree_with_a_naive_judge(run):
    events, steps, deadline, drain, warmup = run
    s = Scorer(["p"], ScoringConfig(deadline_ns=deadline * MS, window_ns=700 * MS,
                                    drain_ns=drain * MS, warmup_end_ns=T0 + warmup * MS),
               start_ns=T0)
    s.record_sent(range(len(events)), [T0 + t * MS for t, _ in events],
                  [T0 + t * MS for t, _ in events], [label for _, label in events])
    rows = 0
    for kind, now, batch in steps:
        if kind == "tick":
            rows += sum(r["answered"] for r in s.advance(T0 + now * MS).timeline_rows)
        else:
            values = [b"{oops" if i is None else answer(i, g) for i, g in batch]
            s.on_output("p", values, T0 + now * MS)
    rows += sum(r["answered"] for r in s.finish(T0 + 100_000 * MS).timeline_rows)
    want, late = reference(events, steps, deadline=deadline, drain=drain, warmup=warmup)
    figures = s.summary()["p"]
    assert figures["status"] == want
    assert figures["late_after_drain"] == late
    assert rows == figures["predictions"]
    judged = want["correct"] + want["incorrect"]
    assert figures["metrics"]["accuracy"] == (pytest.approx(want["correct"] / judged)
                                              if judged else None)
    scored = sum(t >= warmup for t, _ in events)
    assert want["correct"] + want["incorrect"] + want["deadline_exceeded"] + want["missing"] \
        == scored


CLASSIFICATION = ["accuracy", "f1", "precision", "recall", "kappa", "mcc", "BalancedAccuracy",
                  "MicroF1", "WeightedRecall", "Rand", "MutualInfo", "FowlkesMallows"]
REGRESSION = ["mae", "mse", "rmse", "r2", "mape", "smape", "RMSLE"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, True, False, "x"]),
                          st.sampled_from([0, 1, 2, True, "x", "y"])), min_size=1, max_size=200),
       st.lists(st.integers(1, 50), min_size=1, max_size=5))
def test_batched_classification_metrics_equal_one_update_per_answer(pairs, cuts):
    batched = MetricSet(CLASSIFICATION, "classification")
    other = MetricSet(CLASSIFICATION, "classification")
    start = 0
    for cut in cuts + [len(pairs)]:
        part = pairs[start:start + cut]
        feed([t for t, _ in part], [g for _, g in part], [batched, other])
        start += cut
    for name in CLASSIFICATION:
        single = getattr(rm, resolve_metric(name))()
        for t, g in pairs:
            single.update(t, g)
        expected = single.get()
        assert batched.get()[name] == pytest.approx(expected, rel=1e-6, abs=1e-9), name
        assert other.get()[name] == batched.get()[name]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 100), st.floats(0.1, 100)), min_size=2, max_size=200),
       st.integers(1, 60))
def test_batched_regression_metrics_equal_one_update_per_answer(pairs, cut):
    batched = MetricSet(REGRESSION, "regression")
    feed([t for t, _ in pairs[:cut]], [g for _, g in pairs[:cut]], [batched])
    feed([t for t, _ in pairs[cut:]], [g for _, g in pairs[cut:]], [batched])
    for name in REGRESSION:
        single = getattr(rm, resolve_metric(name))()
        for t, g in pairs:
            single.update(t, g)
        assert batched.get()[name] == pytest.approx(single.get(), rel=1e-6, abs=1e-9), name
