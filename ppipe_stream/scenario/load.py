"""The ``[load]`` of a scenario: when events are meant to go (docs/scenario.md).

Owns the load profiles, a tagged union on ``profile`` (constant, poisson, ramp,
steps, bursty, replay, P-Pipe-style releases), their defaults and their own
checks. Turning a profile into send times is :mod:`ppipe_stream.dispatch.schedule`'s.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ..units import Duration
from .base import PositiveInt, PositiveRate, _Base

__all__ = ["BurstyLoad", "ConstantLoad", "Load", "PoissonLoad", "RampLoad", "ReleasesLoad",
           "ReplayLoad", "Stage", "StepsLoad"]


class _LoadBase(_Base, tag_field="profile", frozen=True):
    duration: Duration | None = None

    @property
    def profile(self) -> str:
        """The profile's name as written in the file (``constant``, ``poisson``...)."""
        return str(type(self).__struct_config__.tag)
    count: PositiveInt | None = None
    warmup: Duration = Duration("0s")
    drain: Duration = Duration("5s")
    workers: PositiveInt = 1  # dispatcher processes; worker k sends partitions p % workers == k
    # an event not sent within max_lag of its intended time is dropped and counted
    # (never sent late); None: 1 s, or never for releases (its drops go as fast as
    # the broker takes them)
    max_lag: Duration | None = None
    on_overload: Literal["drop", "stop"] = "drop"  # once an event is dropped: go on, or end the run

    @property
    def max_lag_s(self) -> float:
        """The drop bound in seconds (``math.inf``: never drop)."""
        if self.max_lag is not None:
            return float(self.max_lag)
        return math.inf if self.profile == "releases" else 1.0

    def _check_max_lag(self) -> None:
        if self.max_lag is not None and self.max_lag <= 0:
            raise ValueError("`max_lag` must be a positive duration (or \"never\")")

    def __post_init__(self) -> None:
        self._check_max_lag()
        if self.duration is None and self.count is None:
            raise ValueError("give `duration` or `count` (or both) to say when to stop")
        if self.duration is not None and (math.isinf(self.duration) or self.duration <= 0):
            raise ValueError("`duration` must be a positive, finite duration")
        if math.isinf(self.drain):
            raise ValueError("`drain` must be finite")


class ConstantLoad(_LoadBase, tag="constant", kw_only=True, frozen=True):
    """Events at a fixed rate: gaps of exactly 1/rate."""

    rate: PositiveRate


class PoissonLoad(_LoadBase, tag="poisson", kw_only=True, frozen=True):
    """Events as a Poisson process of the given mean rate (exponential gaps
    drawn from the scenario's seed)."""

    rate: PositiveRate


class RampLoad(_LoadBase, tag="ramp", kw_only=True, frozen=True):
    """The rate moves linearly from ``start_rate`` to ``end_rate`` over ``duration``."""

    start_rate: PositiveRate
    end_rate: PositiveRate

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.duration is None:
            raise ValueError("profile 'ramp' needs `duration` (the ramp's length)")


class Stage(_Base, frozen=True):
    """One stage of a ``steps`` profile."""

    rate: PositiveRate
    duration: Duration


class StepsLoad(_LoadBase, tag="steps", kw_only=True, frozen=True):
    """Constant-rate stages one after another. ``duration`` defaults to the
    stages' total."""

    stages: Annotated[list[Stage], Meta(min_length=1)]

    def __post_init__(self) -> None:
        for stage in self.stages:
            if stage.duration <= 0 or math.isinf(stage.duration):
                raise ValueError("each stage needs a positive, finite `duration`")
        if self.duration is None and self.count is None:
            msgspec.structs.force_setattr(
                self, "duration", Duration(sum(float(s.duration) for s in self.stages))
            )
        super().__post_init__()


class BurstyLoad(_LoadBase, tag="bursty", kw_only=True, frozen=True):
    """Gamma-distributed gaps of mean 1/rate; ``burstiness`` is the gaps'
    coefficient of variation squared inverse: 1.0 is Poisson, lower is
    burstier."""

    rate: PositiveRate
    burstiness: Annotated[float, Meta(gt=0)] = 0.3


class ReplayLoad(_LoadBase, tag="replay", kw_only=True, frozen=True):
    """The dataset's own event times (``dataset.timestamp``), gaps divided by
    ``speedup``."""

    speedup: Annotated[float, Meta(gt=0)] = 1.0

    def __post_init__(self) -> None:
        if self.duration is None and self.count is None:
            msgspec.structs.force_setattr(self, "duration", Duration(math.inf))
        if math.isinf(self.drain):
            raise ValueError("`drain` must be finite")
        self._check_max_lag()


class ReleasesLoad(_LoadBase, tag="releases", kw_only=True, frozen=True):
    """P-Pipe's drops: ``proportions`` of the dataset released one drop per
    ``interval``, each drop as fast as the broker takes it."""

    proportions: Annotated[list[Annotated[float, Meta(gt=0, le=1)]], Meta(min_length=1)]
    interval: Duration

    def __post_init__(self) -> None:
        if sum(self.proportions) > 1.0 + 1e-9:
            raise ValueError("`proportions` must add up to at most 1.0")
        if self.interval <= 0 or math.isinf(self.interval):
            raise ValueError("`interval` must be a positive, finite duration")
        if self.duration is None and self.count is None:
            msgspec.structs.force_setattr(
                self, "duration", Duration(float(self.interval) * len(self.proportions))
            )
        if math.isinf(self.drain):
            raise ValueError("`drain` must be finite")
        self._check_max_lag()


Load = ConstantLoad | PoissonLoad | RampLoad | StepsLoad | BurstyLoad | ReplayLoad | ReleasesLoad
