"""The ``[[faults]]`` of a scenario: what to break, when, and for how long.

Owns the shape of fault specs (a tagged union on ``action``) and their own
checks; the cross-checks against the rest of the scenario (does the pipeline
exist, can its runtime be paused, does the run own a broker it can restart)
are :func:`check_faults`, called by the scenario. Injecting them is
``ppipe_stream.watch.fault_injector``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..units import Duration

__all__ = [
    "BrokerRestartFault",
    "BrokerStopFault",
    "CorruptFault",
    "Fault",
    "KillFault",
    "NetworkFault",
    "PauseFault",
    "check_faults",
]


class _FaultBase(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                 tag_field="action"):
    at: Duration  # since the run's start (the schedule's offset 0)

    @property
    def action(self) -> str:
        return str(type(self).__struct_config__.tag)

    def _check_at(self) -> None:
        if math.isinf(self.at) or self.at < 0:
            raise ValueError("`at` must be a finite duration from the run's start")


class KillFault(_FaultBase, tag="kill", kw_only=True, frozen=True):
    """SIGKILL a pipeline's replicas (all, or ``replica``); a restart policy may bring them back."""

    pipeline: str
    replica: Annotated[int, Meta(ge=0)] | None = None

    def __post_init__(self) -> None:
        self._check_at()


class PauseFault(_FaultBase, tag="pause", kw_only=True, frozen=True):
    """Freeze a pipeline's replicas (SIGSTOP, or ``docker pause``) for ``duration``: a hang."""

    pipeline: str
    duration: Duration
    replica: Annotated[int, Meta(ge=0)] | None = None

    def __post_init__(self) -> None:
        self._check_at()
        _positive("duration", self.duration)


class BrokerRestartFault(_FaultBase, tag="broker_restart", kw_only=True, frozen=True):
    """Crash a broker node (SIGKILL) and start it again on the same data after ``downtime``."""

    node: Annotated[int, Meta(ge=0)] = 0
    downtime: Duration = Duration("0s")

    def __post_init__(self) -> None:
        self._check_at()
        if math.isinf(self.downtime) or self.downtime < 0:
            raise ValueError("`downtime` must be a finite duration")


class BrokerStopFault(_FaultBase, tag="broker_stop", kw_only=True, frozen=True):
    """Stop a broker node cleanly (SIGTERM) and start it again after ``duration``."""

    node: Annotated[int, Meta(ge=0)] = 0
    duration: Duration = Duration("5s")

    def __post_init__(self) -> None:
        self._check_at()
        _positive("duration", self.duration)


class NetworkFault(_FaultBase, tag="network", kw_only=True, frozen=True):
    """Add ``delay`` and/or drop a fraction ``loss`` of the packets of a docker
    pipeline's containers, for ``duration`` (to the end of the run without it)."""

    pipeline: str
    delay: Duration | None = None
    loss: Annotated[float, Meta(ge=0, le=1)] = 0.0
    duration: Duration | None = None

    def __post_init__(self) -> None:
        self._check_at()
        if self.delay is None and self.loss == 0:
            raise ValueError("give `delay`, `loss` or both")
        if self.delay is not None and (math.isinf(self.delay) or self.delay <= 0):
            raise ValueError("`delay` must be a positive, finite duration")
        if self.duration is not None:
            _positive("duration", self.duration)


class CorruptFault(_FaultBase, tag="corrupt", kw_only=True, frozen=True):
    """Corrupt a ``fraction`` of the rows sent from ``at`` for ``duration`` (to the end
    without it), as P-Pipe's inverse imputation does: one feature of each chosen
    row becomes missing (``null``), garbage text, or an outlier (x1000)."""

    fraction: Annotated[float, Meta(gt=0, le=1)]
    mode: Literal["missing", "garbage", "outlier"] = "missing"
    columns: list[str] = []
    duration: Duration | None = None

    def __post_init__(self) -> None:
        self._check_at()
        if self.duration is not None:
            _positive("duration", self.duration)


Fault = KillFault | PauseFault | BrokerRestartFault | BrokerStopFault | NetworkFault | CorruptFault

PIPELINE_FAULTS = (KillFault, PauseFault, NetworkFault)
BROKER_FAULTS = (BrokerRestartFault, BrokerStopFault)


def _positive(key: str, value: Duration) -> None:
    if math.isinf(value) or value <= 0:
        raise ValueError(f"`{key}` must be a positive, finite duration")


def check_faults(faults: list[Any], pipelines: list[Any], kafka: Any, *, workers: int = 1) -> None:
    """Cross-checks: named pipelines exist and their runtime can take the fault;
    broker faults need a broker the run owns and can restart with its data;
    corrupted rows are made by the in-process dispatcher (``workers = 1``)."""
    by_name = {p.name: p for p in pipelines}
    for k, fault in enumerate(faults):
        where = f"faults[{k}] ({fault.action})"
        if isinstance(fault, PIPELINE_FAULTS):
            spec = by_name.get(fault.pipeline)
            if spec is None:
                raise ValueError(f"{where}: no pipeline named {fault.pipeline!r} "
                                 f"(pipelines: {', '.join(by_name)})")
            if spec.runtime == "external":
                raise ValueError(f"{where}: pipeline {fault.pipeline!r} runs elsewhere "
                                 "(runtime = \"external\"): the harness cannot touch it")
            if isinstance(fault, NetworkFault) and spec.runtime != "docker":
                raise ValueError(f"{where}: network faults need a docker pipeline (its own "
                                 f"network namespace); {fault.pipeline!r} is a {spec.runtime} pipeline")
            replicas = getattr(spec, "replicas", 1)
            replica = getattr(fault, "replica", None)
            if replica is not None and replica >= replicas:
                raise ValueError(f"{where}: replica {replica} does not exist "
                                 f"({fault.pipeline!r} has {replicas})")
        if isinstance(fault, CorruptFault) and workers > 1:
            raise ValueError(f"{where}: corrupting rows needs the in-process dispatcher: "
                             f"set [load] workers = 1 (it is {workers})")
        if isinstance(fault, BROKER_FAULTS):
            if kafka.bootstrap != "embedded" or kafka.embedded != "kafka":
                raise ValueError(f"{where}: broker faults need a broker the run owns and can "
                                 "restart with its data: set [kafka] bootstrap = \"embedded\" "
                                 "and embedded = \"kafka\"")
            if fault.node != 0:
                raise ValueError(f"{where}: the embedded broker has one node (node = 0)")
