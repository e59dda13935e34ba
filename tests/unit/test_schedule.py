"""Load schedules: counts, rates, determinism and stop conditions, for every profile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppipe_stream.scenario.model import (BurstyLoad, ConstantLoad, PoissonLoad, RampLoad,
                                         ReleasesLoad, ReplayLoad, Stage, StepsLoad)
from ppipe_stream.dispatch.schedule import build_schedule
from ppipe_stream.units import Duration

NS = 1e9


def offsets(load, seed=1, **kw) -> np.ndarray:
    chunks = list(build_schedule(load, seed=seed, **kw).chunks(max_len=1000))
    assert all(len(c) <= 1000 for c in chunks)
    out = np.concatenate(chunks) if chunks else np.array([], dtype=np.int64)
    assert np.all(np.diff(out) >= 0), "offsets go back in time"
    return out


@settings(deadline=None)  # a property, not a timing: hypothesis's 200 ms deadline failed at load 12
@given(rate=st.floats(1, 5000), seconds=st.floats(0.5, 5))
def test_constant_exact_count_and_gaps(rate, seconds):
    out = offsets(ConstantLoad(rate=rate, duration=Duration(seconds)))
    expected = int(np.ceil(seconds * rate - 1e-9))
    assert abs(len(out) - expected) <= 1
    assert out[0] == 0 and out[-1] < seconds * NS
    if len(out) > 2:
        assert np.allclose(np.diff(out), NS / rate, atol=1)


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(200, 5000), seed=st.integers(0, 2**31))
def test_poisson_mean_rate_and_seed(rate, seed):
    load = PoissonLoad(rate=rate, duration=Duration(10))
    out = offsets(load, seed=seed)
    assert len(out) == pytest.approx(rate * 10, rel=5 / np.sqrt(rate * 10))
    assert np.array_equal(out, offsets(load, seed=seed))
    assert not np.array_equal(out, offsets(load, seed=seed + 1))


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(200, 2000), burstiness=st.floats(0.2, 3.0), seed=st.integers(0, 1000))
def test_bursty_mean_rate_and_dispersion(rate, burstiness, seed):
    out = offsets(BurstyLoad(rate=rate, burstiness=burstiness, duration=Duration(20)), seed=seed)
    expected = rate * 20  # a renewal process: Var(N) ~ expected * CV^2 = expected / shape
    assert abs(len(out) - expected) <= 5 * np.sqrt(expected / burstiness)
    gaps = np.diff(out) / NS
    cv2 = gaps.var() / gaps.mean() ** 2  # gamma gaps: squared CV = 1 / shape
    assert cv2 == pytest.approx(1 / burstiness, rel=0.35)


@given(r0=st.floats(10, 1000), r1=st.floats(10, 1000), seconds=st.floats(1, 10))
def test_ramp_integrates_the_rate(r0, r1, seconds):
    out = offsets(RampLoad(start_rate=r0, end_rate=r1, duration=Duration(seconds)))
    assert abs(len(out) - (r0 + r1) / 2 * seconds) <= 2
    half = np.searchsorted(out, seconds / 2 * NS)  # events in the first half
    assert abs(half - (r0 + (r0 + r1) / 2) / 2 * seconds / 2) <= 2


def test_steps_follow_stages():
    load = StepsLoad(stages=[Stage(rate=10, duration=Duration(2)), Stage(rate=100, duration=Duration(1))])
    out = offsets(load)
    assert len(out) == 120 and load.duration == 3
    assert np.sum(out < 2 * NS) == 20


def test_count_stops_first():
    assert len(offsets(ConstantLoad(rate=1000, duration=Duration(10), count=7))) == 7
    assert len(offsets(PoissonLoad(rate=1000, count=3000))) == 3000


def test_replay_divides_gaps_and_rejects_disorder():
    out = offsets(ReplayLoad(speedup=10.0), timestamps=[100.0, 101.0, 103.0, 103.0])
    assert out.tolist() == [0, 100_000_000, 300_000_000, 300_000_000]
    with pytest.raises(ValueError, match="back in time at row 2"):
        offsets(ReplayLoad(), timestamps=[1.0, 2.0, 1.5])


@given(n=st.integers(1, 10_000), shares=st.lists(st.floats(0.01, 1), min_size=1, max_size=5))
def test_releases_drop_every_row_once(n, shares):
    total = sum(shares)
    proportions = [s / total * 0.999 for s in shares]
    load = ReleasesLoad(proportions=proportions, interval=Duration(10))
    out = offsets(load, n_rows=n)
    assert abs(len(out) - round(sum(proportions) * n)) <= 1
    assert set(np.unique(out)) <= {int(k * 10 * NS) for k in range(len(proportions))}
