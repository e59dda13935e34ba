"""Load schedules: when each event is meant to be sent (open loop).

Owns turning a scenario's ``[load]`` into a stream of intended send offsets
(int64 nanoseconds from the run's start, non-decreasing), generated in numpy
chunks so that planning costs far less than sending. Every random choice
derives from the scenario's seed: the same seed gives the same schedule. It
knows nothing of Kafka or datasets (replay and releases are handed the
timestamps or the row count they need).

Profiles: constant (gaps 1/rate), poisson (exponential gaps), ramp (rate
linear in time; the cumulative count is inverted, so the k-th event goes at
the exact time the integral of the rate reaches k), steps (constant stages),
bursty (gamma gaps of mean 1/rate, shape = burstiness), replay (the dataset's
own time gaps divided by speedup), releases (P-Pipe drops: each drop's events
all due at its release time).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from ..scenario.load import (
    BurstyLoad,
    ConstantLoad,
    Load,
    PoissonLoad,
    RampLoad,
    ReleasesLoad,
    ReplayLoad,
    StepsLoad,
)

__all__ = ["Schedule", "build_schedule"]

_NS = 1_000_000_000


class Schedule:
    """Intended send offsets of one run, as chunks of int64 ns."""

    def __init__(self, offsets: Iterator[np.ndarray], *, target_rate: float | None,
                 count: int | None, duration_s: float | None) -> None:
        self._offsets = offsets
        self.target_rate = target_rate
        self.count = count
        self.duration_s = None if duration_s is None or math.isinf(duration_s) else duration_s

    def chunks(self, max_len: int = 4096) -> Iterator[np.ndarray]:
        """Offsets in chunks of at most ``max_len``; stops at ``count`` events or at
        the first offset at or past ``duration``, whichever comes first."""
        limit_ns = None if self.duration_s is None else int(round(self.duration_s * _NS))
        left = self.count
        for chunk in self._offsets:
            if limit_ns is not None:
                cut = int(np.searchsorted(chunk, limit_ns, side="left"))
                done = cut < len(chunk)
                chunk = chunk[:cut]
            else:
                done = False
            if left is not None and len(chunk) >= left:
                chunk, done = chunk[:left], True
            if left is not None:
                left -= len(chunk)
            for start in range(0, len(chunk), max_len):
                yield chunk[start:start + max_len]
            if done:
                return


def build_schedule(load: Load, *, seed: int, n_rows: int | None = None,
                   timestamps: Iterable[float | None] | None = None) -> Schedule:
    """The schedule of ``load``. ``n_rows`` is needed by releases, ``timestamps``
    (seconds, in dataset order) by replay; ValueError when missing or wrong."""
    rng = np.random.default_rng(seed)
    count, duration = load.count, load.duration
    dur = None if duration is None else float(duration)
    if isinstance(load, ConstantLoad):
        return Schedule(_constant(load.rate), target_rate=load.rate, count=count, duration_s=dur)
    if isinstance(load, PoissonLoad):
        return Schedule(_gaps(rng, load.rate, shape=1.0), target_rate=load.rate, count=count,
                        duration_s=dur)
    if isinstance(load, BurstyLoad):
        return Schedule(_gaps(rng, load.rate, shape=load.burstiness), target_rate=load.rate,
                        count=count, duration_s=dur)
    if isinstance(load, RampLoad):
        assert dur is not None
        return Schedule(_ramp(load.start_rate, load.end_rate, dur),
                        target_rate=(load.start_rate + load.end_rate) / 2, count=count,
                        duration_s=dur)
    if isinstance(load, StepsLoad):
        total = sum(float(s.duration) for s in load.stages)
        mean = sum(s.rate * float(s.duration) for s in load.stages) / total
        return Schedule(_steps([(s.rate, float(s.duration)) for s in load.stages]),
                        target_rate=mean, count=count, duration_s=dur if dur is not None else total)
    if isinstance(load, ReplayLoad):
        if timestamps is None:
            raise ValueError("profile 'replay' needs the dataset's `timestamp` column")
        return Schedule(_replay(timestamps, load.speedup), target_rate=None, count=count,
                        duration_s=dur)
    if isinstance(load, ReleasesLoad):
        if n_rows is None:
            raise ValueError("profile 'releases' needs a dataset of known size (not a generator)")
        return Schedule(_releases(load.proportions, float(load.interval), n_rows),
                        target_rate=None, count=count, duration_s=dur)
    raise ValueError(f"unknown load profile {type(load).__name__}")


def _constant(rate: float, chunk: int = 65_536) -> Iterator[np.ndarray]:
    start = 0
    while True:
        k = np.arange(start, start + chunk, dtype=np.float64)
        yield np.round(k * (_NS / rate)).astype(np.int64)
        start += chunk


def _gaps(rng: np.random.Generator, rate: float, *, shape: float,
          chunk: int = 65_536) -> Iterator[np.ndarray]:
    """First event at 0, then gamma(shape, 1/(rate*shape)) gaps (shape 1 = exponential)."""
    now = 0.0
    first = True
    while True:
        gaps = rng.gamma(shape, 1.0 / (rate * shape), size=chunk)
        if first:
            gaps[0] = 0.0
            first = False
        times = now + np.cumsum(gaps)
        now = float(times[-1])
        yield np.round(times * _NS).astype(np.int64)


def _ramp(r0: float, r1: float, duration: float, chunk: int = 65_536) -> Iterator[np.ndarray]:
    """Event k at the t where the integral of r(t) = r0 + (r1-r0) t/T reaches k."""
    slope = (r1 - r0) / duration
    total = (r0 + r1) / 2 * duration
    start = 0
    while start < total:
        k = np.arange(start, min(start + chunk, math.ceil(total)), dtype=np.float64)
        if abs(slope) < 1e-12:
            t = k / r0
        else:  # solve slope/2 t^2 + r0 t - k = 0 for t >= 0 (k < total keeps it real)
            t = (-r0 + np.sqrt(np.maximum(r0 * r0 + 2 * slope * k, 0.0))) / slope
        yield np.round(t * _NS).astype(np.int64)
        start += chunk
    yield np.array([np.iinfo(np.int64).max // 2], dtype=np.int64)  # past the end: stops chunks()


def _steps(stages: list[tuple[float, float]], chunk: int = 65_536) -> Iterator[np.ndarray]:
    begin = 0.0
    for rate, length in stages:
        n = math.ceil(length * rate - 1e-9)
        for start in range(0, n, chunk):
            k = np.arange(start, min(start + chunk, n), dtype=np.float64)
            yield np.round((begin + k / rate) * _NS).astype(np.int64)
        begin += length
    yield np.array([int(begin * _NS) + 1], dtype=np.int64)  # past the end: stops chunks()


def _replay(timestamps: Iterable[float | None], speedup: float,
            chunk: int = 8192) -> Iterator[np.ndarray]:
    first: float | None = None
    last = -math.inf
    buffer: list[int] = []
    for index, ts in enumerate(timestamps):
        if ts is None:
            raise ValueError(f"row {index} has no timestamp; replay needs one on every row")
        if ts < last:
            raise ValueError(f"timestamps go back in time at row {index} ({ts} < {last}); "
                             "replay needs them sorted")
        last = ts
        if first is None:
            first = ts
        buffer.append(int(round((ts - first) / speedup * _NS)))
        if len(buffer) >= chunk:
            yield np.asarray(buffer, dtype=np.int64)
            buffer = []
    if buffer:
        yield np.asarray(buffer, dtype=np.int64)


def _releases(proportions: list[float], interval: float, n_rows: int) -> Iterator[np.ndarray]:
    done = 0
    cumulative = 0.0
    for k, share in enumerate(proportions):
        cumulative += share
        size = int(round(cumulative * n_rows)) - done  # cumulative rounding: no row lost or doubled
        done += size
        if size:
            yield np.full(size, int(round(k * interval * _NS)), dtype=np.int64)
