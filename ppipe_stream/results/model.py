"""The results of a run as typed values: what ``summary.json`` holds, and a timeline row.

Owns the shape of the results (docs/results.md says what each figure means;
docs/results.schema.json is generated from these Structs and a test keeps it
true) and reading them back: :func:`load_summary` for a run folder, and
:func:`to_summary` for a summary already in memory as plain data. Every Struct
is frozen and keyword-only; unknown keys (a newer folder's) are ignored (msgspec's
default, ``forbid_unknown_fields=False``), and every field has a
default, so an old folder (no ``outcome``, ``meta`` or ``harness``) still loads.
A key that a run writes only sometimes (``aborted``, ``faults``, a threshold's
``judged``, a pipeline's ``commands``...) is ``UNSET`` when absent, and stays
absent when written again. It computes no figure and decides nothing: the
builder (:mod:`ppipe_stream.results.builder`) assembles a summary from the
components' snapshots, the readers (compare, report, tail, display) read it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType, field

from ..errors import UsageError
from ..watch.incidents import IncidentKind

__all__ = [
    "UNSET", "BrokerFigures", "BrokerKindName", "CommandCounts", "ContainerFigures", "DispatchFigures",
    "FaultRecord", "FloorFigures", "HarnessFigures", "HostMeta", "IncidentRecord", "LagFigures", "LatenessFigures",
    "LatencyFigures", "LatencySplit", "MetaFigures", "Outage", "Outcome", "OverFloor", "PipelineFigures",
    "SplitPart", "StatusCounts", "Summary", "ThresholdResult", "TimelineRow", "ValidityResult",
    "load_summary", "read_summary_bytes", "schema_text", "summary_schema", "to_builtins", "to_summary",
]

BrokerKindName = str  # "embedded-tansu" or "kafka" (brokers.BrokerKind's values)


class Outcome(enum.StrEnum):
    """How a run ended: ``summary.json``'s ``outcome``."""

    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    RUNNING = "running"


class LatencyFigures(msgspec.Struct, frozen=True, kw_only=True):
    """A pipeline's latency in ms, from each event's intended send time to its answer's read."""

    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None


class SplitPart(msgspec.Struct, frozen=True, kw_only=True):
    """One part of the latency split, in ms."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


class LatencySplit(msgspec.Struct, frozen=True, kw_only=True):
    """Where the latency goes, from the stamps a pipeline gives (``received_ns``, ``emitted_ns``)."""

    broker_in: SplitPart = field(default_factory=SplitPart)
    compute: SplitPart = field(default_factory=SplitPart)
    broker_out: SplitPart = field(default_factory=SplitPart)


class StatusCounts(msgspec.Struct, frozen=True, kw_only=True):
    """How the scored events ended (one of the first four each) and the bad answers."""

    correct: int = 0
    incorrect: int = 0
    deadline_exceeded: int = 0
    missing: int = 0
    syntax_error: int = 0
    duplicate: int = 0
    unknown: int = 0

    @property
    def bad(self) -> int:
        """Answers that could not be tied to an event's verdict: syntax errors, duplicates, unknown ids."""
        return self.syntax_error + self.duplicate + self.unknown


class CommandCounts(msgspec.Struct, frozen=True, kw_only=True):
    """How one proctor command's instances ended for one pipeline."""

    correct: int = 0
    partial_correct: int = 0
    incorrect: int = 0
    syntax_error: int = 0
    deadline_exceeded: int = 0


class ContainerFigures(msgspec.Struct, frozen=True, kw_only=True):
    """How a pipeline's processes or containers fared (its runner's status and the hang watch)."""

    restarts: int = 0
    oom_killed: bool = False
    exit_code: int | None = None  # of a replica that ended on its own; None: all ran to the end
    hangs: int = 0
    hung_now: bool = False


class OverFloor(msgspec.Struct, frozen=True, kw_only=True):
    """A pipeline's latency over the run's floor, in ms: its p50 and p99 minus the floor's
    (rounded to the microsecond; negative when it beat the floor). None: one side unmeasured."""

    p50: float | None = None
    p99: float | None = None


class PipelineFigures(msgspec.Struct, frozen=True, kw_only=True):
    """One pipeline's figures (warm-up excluded)."""

    predictions: int = 0
    status: StatusCounts = field(default_factory=StatusCounts)
    throughput_eps: float = 0.0
    latency_ms: LatencyFigures = field(default_factory=LatencyFigures)
    latency_split_ms: LatencySplit | UnsetType = UNSET
    metrics: dict[str, float | None] = {}
    events: int = 0
    warmup_events: int = 0
    late_after_drain: int = 0
    missing_ratio: float | UnsetType = UNSET
    commands: dict[str, CommandCounts] | UnsetType = UNSET
    container: ContainerFigures | UnsetType = UNSET
    latency_over_floor_ms: OverFloor | None = None  # None: the run did not calibrate


class FloorFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The run's floor (``[scoring] calibrate = true``): the echo pipeline's figures, scored
    as any pipeline's but kept out of ``pipelines`` (no threshold, rank or verdict is its).
    ``count`` is the answered events its latency figures hold; ``status`` shows what it lost."""

    pipeline: str = ""
    count: int = 0
    events: int = 0
    latency_ms: LatencyFigures = field(default_factory=LatencyFigures)
    latency_split_ms: LatencySplit | UnsetType = UNSET
    status: StatusCounts = field(default_factory=StatusCounts)
    container: ContainerFigures | UnsetType = UNSET


class LagFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Dispatch lag in ms: how long after its intended time each event was sent."""

    p50: float | None = None
    p99: float | None = None
    max: float | None = None


class DispatchFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What the dispatcher sent, and how well it kept the schedule."""

    events_sent: int = 0
    labels_sent: int = 0
    target_rate: float | None = None
    achieved_rate: float = 0.0
    lag_ms: LagFigures = field(default_factory=LagFigures)
    dataset_exhausted: bool = False
    planned_events: int = 0
    planned_rate: float | None | UnsetType = UNSET  # absent in folders older than the rate rule
    dropped: int = 0
    schedule_lost_at_s: float | None = None
    stopped_on_overload: bool = False
    schedule_cut: bool = False


class Outage(msgspec.Struct, frozen=True, kw_only=True):
    """One broker node's down (or, in ``broker.stalls``, stalled) interval, in seconds
    since the run's start."""

    node: str
    start_s: float
    end_s: float
    duration_s: float
    ended: bool = True


class ResponseFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The broker's response time to the health watch's probes (ApiVersions), in ms;
    ``unanswered`` probes got no answer (the broker was down or stalled)."""

    p50: float | None = None
    p99: float | None = None
    max: float | None = None
    probes: int = 0
    unanswered: int = 0


class BrokerFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The run's broker: its kind, address, start-up time, outages, stalls and response time."""

    kind: BrokerKindName = ""
    bootstrap: str = ""
    started: bool | UnsetType = UNSET
    startup_s: float | None = None
    outages: list[Outage] = []
    downtime_s: float = 0.0
    stalls: list[Outage] = []
    stalled_s: float = 0.0
    response_ms: ResponseFigures = field(default_factory=ResponseFigures)


class LatenessFigures(msgspec.Struct, frozen=True, kw_only=True):
    """How late an event loop woke, in ms (None before the first wake)."""

    p50: float | None = None
    p99: float | None = None
    max: float | None = None
    samples: int = 0


class HarnessFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The harness's own event-loop lateness (and its dispatch workers', when it has some)."""

    loop_lateness_ms: LatenessFigures = field(default_factory=LatenessFigures)
    workers_loop_lateness_ms: LatenessFigures | UnsetType = UNSET


class ThresholdResult(msgspec.Struct, frozen=True, kw_only=True):
    """One threshold rule for one pipeline (None: a dispatch rule)."""

    expr: str
    pipeline: str | None = None
    value: int | float | None = None
    ok: bool | None = None  # None: not judged
    judged: bool | UnsetType = UNSET  # written (false) only for a run that did not complete


class ValidityResult(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the figures can be trusted; each reason with a recommendation."""

    valid: bool = True
    judged: bool = True
    reasons: list[str] = []
    recommendations: list[str] = []


class IncidentRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One incident (watch/incidents.py) as the summary holds it."""

    t_s: float
    kind: IncidentKind
    target: str
    detail: str = ""
    detected_after_s: float | None = None
    duration_s: float | None = None


class FaultRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One planned fault (``[[faults]]``)."""

    action: str
    at_s: float
    target: str
    what: str
    rows_corrupted: int | UnsetType = UNSET


class HostMeta(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None = None
    cores: int | None = None
    memory_gib: float | None = None
    platform: str | None = None


class MetaFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What ran, where, and how it was asked for (run/metadata.py)."""

    ppipe_version: str | None = None
    git_commit: str | None = None
    python: str | None = None
    aiokafka: str | None = None
    host: HostMeta = field(default_factory=HostMeta)
    broker: str | None = None
    command_line: list[str] = []
    tags: dict[str, str] = {}
    overrides: list[str] = []
    env_names: list[str] = []


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """``summary.json``."""

    run_id: str = ""
    scenario: str = ""
    complete: bool = False
    started_at: str = ""
    duration_s: float = 0.0
    broker: BrokerFigures = field(default_factory=BrokerFigures)
    dispatch: DispatchFigures = field(default_factory=DispatchFigures)
    harness: HarnessFigures | UnsetType = UNSET
    pipelines: dict[str, PipelineFigures] = {}
    floor: FloorFigures | None = None  # None: the run did not calibrate
    outcome: Outcome | UnsetType = UNSET  # absent in older folders: see outcome.outcome_of
    passed: bool = False
    thresholds: list[ThresholdResult] = []
    validity: ValidityResult = field(default_factory=ValidityResult)
    incidents: list[IncidentRecord] = []
    faults: list[FaultRecord] | UnsetType = UNSET
    aborted: str | UnsetType = UNSET
    error: str | UnsetType = UNSET
    interrupted: bool | UnsetType = UNSET
    meta: MetaFigures | UnsetType = UNSET


class TimelineRow(msgspec.Struct, frozen=True, kw_only=True):
    """The fixed columns of one ``timeline.csv`` row (one window of one pipeline). Between
    ``latency_p99_ms`` and ``lag_ms_p99`` the file has one column per metric, named after it."""

    time_s: float
    pipeline: str
    sent: int = 0
    answered: int = 0
    throughput_eps: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    lag_ms_p99: float | None = None
    correct: int = 0
    incorrect: int = 0
    deadline_exceeded: int = 0
    missing: int = 0
    syntax_error: int = 0
    duplicate: int = 0
    unknown: int = 0
    sent_warmup: int = 0
    cpu_percent: float | None = None
    memory_mib: float | None = None
    harness_cpu_percent: float | None = None
    harness_memory_mib: float | None = None
    broker_cpu_percent: float | None = None
    broker_memory_mib: float | None = None
    broker_down_s: float = 0.0
    incidents: str = ""
    broker_response_ms: float | None = None
    broker_stalled_s: float = 0.0


def _plain(value: Any) -> Any:
    """numpy scalars and paths as plain values (a component's snapshot may hold them)."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not a results value: {type(value).__name__}")


def to_summary(value: Summary | Mapping[str, Any]) -> Summary:
    """A Summary from a Summary (as is) or from plain data (a summary dict, an old folder's)."""
    if isinstance(value, Summary):
        return value
    return msgspec.convert(msgspec.to_builtins(value, enc_hook=_plain), Summary, strict=False)


def to_builtins(value: msgspec.Struct) -> Any:
    """Plain data (dicts, lists, numbers) for a results Struct, ``UNSET`` fields left out."""
    return msgspec.to_builtins(value, enc_hook=_plain)


def read_summary_bytes(data: bytes, *, strict: bool = False) -> Summary:
    """Decode ``summary.json``'s bytes; ``msgspec.ValidationError`` / ``DecodeError`` if unfit."""
    return msgspec.json.decode(data, type=Summary, strict=strict)


def load_summary(folder: Path) -> Summary:
    """The summary of a run folder (or of a summary.json path); UsageError if unreadable."""
    path = folder / "summary.json" if folder.is_dir() else folder
    try:
        return read_summary_bytes(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{folder}: no summary.json (is it a run folder?)") from None
    except (OSError, msgspec.DecodeError) as exc:  # ValidationError is a DecodeError
        raise UsageError(f"{path}: cannot read it: {exc}") from None


def summary_schema() -> dict[str, Any]:
    """The JSON Schema of ``summary.json`` and of a timeline row (docs/results.schema.json)."""
    schemas, components = msgspec.json.schema_components([Summary, TimelineRow])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "ppipe_stream results: summary.json (and a timeline.csv row)",
            **schemas[0], "$defs": components}


def schema_text() -> str:
    """docs/results.schema.json's text."""
    return json.dumps(summary_schema(), indent=2) + "\n"
