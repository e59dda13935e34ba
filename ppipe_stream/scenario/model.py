"""The scenario structs: what a TOML scenario file may say (docs/scenario.md).

Owns the shape and the defaults of a scenario and the cross-field checks in
``__post_init__``. It does not read files (that is ``loader.py``) and does not
resolve paths. Structs are frozen, keyword-only and forbid unknown fields;
load profiles and pipeline runtimes are tagged unions on ``profile`` and
``runtime``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..units import Duration

__all__ = [
    "Scenario",
    "Dataset",
    "Load",
    "ConstantLoad",
    "PoissonLoad",
    "RampLoad",
    "StepsLoad",
    "Stage",
    "BurstyLoad",
    "ReplayLoad",
    "ReleasesLoad",
    "Labels",
    "Pipeline",
    "ProcessPipeline",
    "DockerPipeline",
    "ExternalPipeline",
    "Scoring",
    "Tolerance",
    "KafkaSettings",
    "CommandSpec",
    "Validity",
    "PositiveRate",
]

PositiveRate = Annotated[float, Meta(gt=0)]
PositiveInt = Annotated[int, Meta(ge=1)]
Name = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]


class _Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Dataset(_Base):
    """Where the rows come from and which column is the label."""

    source: Literal["csv", "jsonl", "parquet", "sklearn", "river", "synth"]
    path: str | None = None
    name: str | None = None
    target: str | None = None
    shuffle: bool = False
    timestamp: str | None = None
    loop: bool = False
    generator: str | None = None
    drift_at: list[int] = []
    on_bad_row: Literal["error", "skip"] = "error"

    def __post_init__(self) -> None:
        if self.source in ("csv", "jsonl", "parquet") and not self.path:
            raise ValueError(f"source {self.source!r} needs `path`")
        if self.source in ("sklearn", "river") and not self.name:
            raise ValueError(f"source {self.source!r} needs `name`")
        if self.source == "synth" and not self.generator:
            raise ValueError("source 'synth' needs `generator`")


class _LoadBase(_Base, tag_field="profile"):
    duration: Duration | None = None

    @property
    def profile(self) -> str:
        """The profile's name as written in the file (``constant``, ``poisson``...)."""
        return type(self).__struct_config__.tag
    count: PositiveInt | None = None
    warmup: Duration = Duration("0s")
    drain: Duration = Duration("5s")
    workers: PositiveInt = 1  # dispatcher processes; worker k sends partitions p % workers == k

    def __post_init__(self) -> None:
        if self.duration is None and self.count is None:
            raise ValueError("give `duration` or `count` (or both) to say when to stop")
        if self.duration is not None and (math.isinf(self.duration) or self.duration <= 0):
            raise ValueError("`duration` must be a positive, finite duration")
        if math.isinf(self.drain):
            raise ValueError("`drain` must be finite")


class ConstantLoad(_LoadBase, tag="constant", kw_only=True):
    """Events at a fixed rate: gaps of exactly 1/rate."""

    rate: PositiveRate


class PoissonLoad(_LoadBase, tag="poisson", kw_only=True):
    """Events as a Poisson process of the given mean rate (exponential gaps
    drawn from the scenario's seed)."""

    rate: PositiveRate


class RampLoad(_LoadBase, tag="ramp", kw_only=True):
    """The rate moves linearly from ``start_rate`` to ``end_rate`` over ``duration``."""

    start_rate: PositiveRate
    end_rate: PositiveRate

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.duration is None:
            raise ValueError("profile 'ramp' needs `duration` (the ramp's length)")


class Stage(_Base):
    """One stage of a ``steps`` profile."""

    rate: PositiveRate
    duration: Duration


class StepsLoad(_LoadBase, tag="steps", kw_only=True):
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


class BurstyLoad(_LoadBase, tag="bursty", kw_only=True):
    """Gamma-distributed gaps of mean 1/rate; ``burstiness`` is the gaps'
    coefficient of variation squared inverse: 1.0 is Poisson, lower is
    burstier."""

    rate: PositiveRate
    burstiness: Annotated[float, Meta(gt=0)] = 0.3


class ReplayLoad(_LoadBase, tag="replay", kw_only=True):
    """The dataset's own event times (``dataset.timestamp``), gaps divided by
    ``speedup``."""

    speedup: Annotated[float, Meta(gt=0)] = 1.0

    def __post_init__(self) -> None:
        if self.duration is None and self.count is None:
            msgspec.structs.force_setattr(self, "duration", Duration(math.inf))
        if math.isinf(self.drain):
            raise ValueError("`drain` must be finite")


class ReleasesLoad(_LoadBase, tag="releases", kw_only=True):
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


Load = ConstantLoad | PoissonLoad | RampLoad | StepsLoad | BurstyLoad | ReplayLoad | ReleasesLoad


class Labels(_Base):
    """When ground truth follows its event: ``delay`` after it, or ``never``."""

    delay: Duration = Duration("1s")


class ProcessPipeline(_Base, tag_field="runtime", tag="process"):
    """A pipeline started as a local process with ``command``."""

    name: Name
    command: list[str]
    env: dict[str, str] = {}

    @property
    def runtime(self) -> str:
        return type(self).__struct_config__.tag
    cwd: str | None = None
    replicas: PositiveInt = 1

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("`command` must name a program")


class DockerPipeline(_Base, tag_field="runtime", tag="docker"):
    """A pipeline run as sandboxed containers: from ``image``, or built from the
    folder ``build`` (its Dockerfile takes ``ARG BASE_IMAGE``)."""

    name: Name
    image: str | None = None
    build: str | None = None
    dockerfile: str | None = None
    build_args: dict[str, str] = {}
    command: list[str] = []
    env: dict[str, str] = {}
    replicas: PositiveInt = 1
    cpus: Annotated[float, Meta(gt=0)] | None = 1.0
    memory: str = "512m"
    pids: PositiveInt = 256
    tmpfs: str = "64m"
    restart: Literal["no", "on-failure", "always", "unless-stopped"] = "no"
    max_restarts: Annotated[int, Meta(ge=0)] = 3

    def __post_init__(self) -> None:
        if (self.image is None) == (self.build is None):
            raise ValueError("give exactly one of `image` and `build`")
        from ..units import parse_size

        for key in ("memory", "tmpfs"):
            try:
                parse_size(getattr(self, key))
            except ValueError as exc:
                raise ValueError(f"`{key}`: {exc}") from None

    @property
    def runtime(self) -> str:
        return type(self).__struct_config__.tag


class ExternalPipeline(_Base, tag_field="runtime", tag="external"):
    """A pipeline started elsewhere by the user: the harness creates the topics,
    prints the environment to use, waits for its readiness reply, and scores it."""

    name: Name
    ready_timeout: Duration = Duration("300s")

    @property
    def runtime(self) -> str:
        return type(self).__struct_config__.tag


Pipeline = ProcessPipeline | DockerPipeline | ExternalPipeline


class Tolerance(_Base):
    """Numbers compare equal when ``|a-b| <= atol + rtol*|b|``."""

    rtol: Annotated[float, Meta(ge=0)] = 1e-6
    atol: Annotated[float, Meta(ge=0)] = 1e-6


class Validity(_Base):
    """When a run's figures can be trusted (as MLPerf LoadGen reports validity):
    long enough, and the harness itself kept the schedule."""

    min_duration: Duration = Duration("0s")
    min_events: Annotated[int, Meta(ge=0)] = 0
    min_rate_ratio: Annotated[float, Meta(ge=0, le=1)] = 0.99
    max_lag_p99: Duration = Duration("20ms")


class Scoring(_Base):
    """How answers are judged."""

    task: Literal["classification", "regression"] = "classification"
    metrics: list[str] = []
    deadline: Duration = Duration("1s")
    window: Duration = Duration("1s")
    tolerance: Tolerance = Tolerance()
    abort_on_fail: bool = False

    def __post_init__(self) -> None:
        if self.window <= 0 or math.isinf(self.window):
            raise ValueError("`window` must be a positive, finite duration")
        if self.deadline <= 0:
            raise ValueError("`deadline` must be positive")


class CommandSpec(_Base):
    """A proctor command (P-Pipe's requests, streamed): sent at ``at``, every
    ``every``, or at random gaps between ``min_gap`` and ``max_gap`` (seeded)."""

    command: Literal["retrain", "validate", "batch_predict", "feature", "ping"]
    at: Duration | None = None
    every: Duration | None = None
    min_gap: Duration | None = None
    max_gap: Duration | None = None
    sample: PositiveInt = 10
    deadline: Duration = Duration("2s")
    pipeline: str | None = None
    feature: str | None = None
    expression: str | None = None

    def __post_init__(self) -> None:
        ways = sum(x is not None for x in (self.at, self.every, self.min_gap))
        if ways != 1 or (self.min_gap is None) != (self.max_gap is None):
            raise ValueError("give exactly one of `at`, `every`, or `min_gap` with `max_gap`")
        if self.every is not None and self.every <= 0:
            raise ValueError("`every` must be positive")
        if self.min_gap is not None and not (0 < self.min_gap <= self.max_gap):
            raise ValueError("need 0 < `min_gap` <= `max_gap`")
        if self.command == "feature" and not (self.feature and self.expression):
            raise ValueError("command 'feature' needs `feature` (its name) and `expression` "
                             "(how to compute it from a row, e.g. \"petal_length / petal_width\")")
        if self.expression is not None:
            from ..proctor.expressions import compile_expression

            compile_expression(self.expression)


class KafkaSettings(_Base):
    """Which broker, and how the run's topics and producers are set up."""

    bootstrap: str = "embedded"
    partitions: PositiveInt = 4
    replication_factor: PositiveInt = 1
    acks: Literal["all", "1", "0"] = "1"
    linger: Duration = Duration("2ms")


class Scenario(_Base):
    """One run: what data, at what pace, to which pipelines, judged how."""

    name: Name
    dataset: Dataset
    load: Load
    pipelines: Annotated[list[Pipeline], Meta(min_length=1)]
    seed: int = 0
    labels: Labels = Labels()
    scoring: Scoring = Scoring()
    thresholds: dict[str, str] = {}
    commands: list[CommandSpec] = []
    validity: Validity = Validity()
    kafka: KafkaSettings = KafkaSettings()

    def __post_init__(self) -> None:
        names = [p.name for p in self.pipelines]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pipeline names must be unique; repeated: {', '.join(dupes)}")
        if self.load.workers > self.kafka.partitions:
            raise ValueError(f"`$.load.workers` ({self.load.workers}) must not exceed "
                             f"`$.kafka.partitions` ({self.kafka.partitions}): each dispatch "
                             "worker owns at least one partition")


def dec_hook(type_: type, obj: Any) -> Any:
    """msgspec hook: build :class:`Duration` from TOML strings and numbers."""
    if type_ is Duration:
        if isinstance(obj, (str, int, float)) and not isinstance(obj, bool):
            return Duration(obj)
        raise TypeError(f"expected a duration like \"500ms\", got {type(obj).__name__}")
    raise TypeError(f"no conversion to {type_!r}")  # only Duration is custom


def enc_hook(obj: Any) -> Any:
    """msgspec hook: write :class:`Duration` back as its text."""
    if isinstance(obj, Duration):
        return str(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")
