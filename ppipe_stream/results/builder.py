"""Assembling ``summary.json`` from what the run's components report.

Owns the one place a summary is put together: :class:`RunSnapshots` holds each
component's typed snapshot as it hands it out (``Scorer.statistics()``,
``Proctor.statistics()``, ``IncidentLog.statistics()``, ``DispatchStats.statistics()``,
each runner's status with the hang watch's, the broker, the harness's lateness), and
:func:`build_summary` turns them into a :class:`~ppipe_stream.results.model.Summary`,
sets the run's floor apart (the ``[scoring] calibrate = true`` pipeline: its figures
become ``floor``, never a ``pipelines`` entry, and every pipeline gets its latency over
it), then judges it: the thresholds (``passed``) and the validity, or marks them
*not judged* when the run did not complete (:mod:`ppipe_stream.results.outcome`). It
measures nothing and writes no file: the run loop takes the snapshots, the run
folder writes the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ..proctor.proctor import ProctorStatistics
from ..scenario.model import Validity
from ..scoring.scorer import ScorerStatistics
from ..scoring.thresholds import evaluate
from ..watch.incidents import IncidentStatistics
from .model import (
    UNSET, BrokerFigures, CommandCounts, ContainerFigures, DispatchFigures, FaultRecord, HarnessFigures,
    FloorFigures, IncidentRecord, Outcome, OverFloor, PipelineFigures, Summary, ThresholdResult,
    to_builtins,
)
from .outcome import not_judged_thresholds, not_judged_validity
from .validity import verdict

__all__ = ["RunSnapshots", "build_summary"]


class RunSnapshots(msgspec.Struct, frozen=True, kw_only=True):
    """What each component said at one moment, as the typed snapshot it hands out."""

    run_id: str
    scenario: str
    complete: bool
    outcome: Outcome
    started_at: str
    duration_s: float
    broker: BrokerFigures
    harness: HarnessFigures
    # each a component's typed snapshot; plain data (an older caller's) is converted
    dispatch: DispatchFigures | Mapping[str, Any] | None = None  # DispatchStats.statistics()
    scored: ScorerStatistics | Mapping[str, Mapping[str, Any]] | None = None  # Scorer.statistics()
    commands: ProctorStatistics | Mapping[str, Mapping[str, Any]] | None = None  # Proctor.statistics()
    containers: Mapping[str, ContainerFigures | Mapping[str, Any]] = {}  # runner status + hang watch
    incidents: IncidentStatistics | Sequence[Mapping[str, Any]] | None = None  # IncidentLog.statistics()
    faults: Sequence[Mapping[str, Any]] | None = None  # FaultInjector.summary(); None: no injector
    aborted: str | None = None
    error: str | None = None
    interrupted: bool = False
    floor: str | None = None  # the floor pipeline's name when the run calibrates


def _convert(value: Any, kind: Any) -> Any:
    return msgspec.convert(msgspec.to_builtins(value), kind, strict=False)


def _pipelines(parts: RunSnapshots) -> dict[str, PipelineFigures]:
    """Each pipeline's figures: the scorer's, then its commands, then its process status."""
    scored, commands = parts.scored, parts.commands
    merged: dict[str, PipelineFigures] = (
        {} if scored is None else dict(scored.pipelines) if isinstance(scored, ScorerStatistics)
        else _convert(scored, dict[str, PipelineFigures]))
    counts: dict[str, dict[str, CommandCounts]] = (
        {} if commands is None else commands.commands if isinstance(commands, ProctorStatistics)
        else _convert(commands, dict[str, dict[str, CommandCounts]]))
    for name, by_command in counts.items():
        merged[name] = msgspec.structs.replace(merged.get(name, PipelineFigures()), commands=by_command)
    for name, status in parts.containers.items():
        container = status if isinstance(status, ContainerFigures) else _convert(status, ContainerFigures)
        merged[name] = msgspec.structs.replace(merged.get(name, PipelineFigures()), container=container)
    return merged


def build_summary(parts: RunSnapshots, *, thresholds: Mapping[str, str], rules: Validity) -> Summary:
    """The summary of the run as the snapshots tell it, judged (or marked not judged)."""
    dispatch = (DispatchFigures(events_sent=0) if parts.dispatch is None
                else parts.dispatch if isinstance(parts.dispatch, DispatchFigures)
                else _convert(parts.dispatch, DispatchFigures))
    pipelines, floor = _floor_apart(_pipelines(parts), parts.floor)
    summary = Summary(
        run_id=parts.run_id, scenario=parts.scenario, complete=parts.complete,
        started_at=parts.started_at, duration_s=parts.duration_s, broker=parts.broker,
        dispatch=dispatch, harness=parts.harness, pipelines=pipelines, floor=floor,
        outcome=parts.outcome,
        incidents=_incidents(parts.incidents),
        faults=UNSET if parts.faults is None else _convert(parts.faults, list[FaultRecord]),
        aborted=parts.aborted or UNSET, error=parts.error or UNSET,
        interrupted=True if parts.interrupted else UNSET)
    results = evaluate(dict(thresholds), summary) if thresholds else []
    passed = parts.complete and all(r["ok"] for r in results)
    judged = results if parts.complete else not_judged_thresholds(results)
    if parts.outcome in (Outcome.FAILED, Outcome.INTERRUPTED):
        validity = not_judged_validity(parts.outcome, parts.error)
    else:  # a partial summary is judged as it stands, for the live view: not final
        validity = msgspec.structs.replace(verdict(rules, summary),
                                           judged=parts.outcome is Outcome.COMPLETE)
    return msgspec.structs.replace(summary, passed=passed, validity=validity,
                                   thresholds=_convert(judged, list[ThresholdResult]))


def _floor_apart(pipelines: dict[str, PipelineFigures],
                 name: str | None) -> tuple[dict[str, PipelineFigures], FloorFigures | None]:
    """The competitors, each with its latency over the floor, and the floor's own figures
    (None, and every ``latency_over_floor_ms`` None, when the run does not calibrate)."""
    if name is None:
        return pipelines, None
    own = pipelines.pop(name, PipelineFigures())
    floor = FloorFigures(pipeline=name, count=own.predictions, events=own.events,
                         latency_ms=own.latency_ms, latency_split_ms=own.latency_split_ms,
                         status=own.status, container=own.container)
    return {key: msgspec.structs.replace(figures, latency_over_floor_ms=_over(figures, floor))
            for key, figures in pipelines.items()}, floor


def _over(figures: PipelineFigures, floor: FloorFigures) -> OverFloor:
    """p50 and p99 minus the floor's, to the microsecond (the histograms' unit)."""
    def minus(mine: float | None, floors: float | None) -> float | None:
        return None if mine is None or floors is None else round(mine - floors, 3)

    return OverFloor(p50=minus(figures.latency_ms.p50, floor.latency_ms.p50),
                     p99=minus(figures.latency_ms.p99, floor.latency_ms.p99))


def _incidents(stats: IncidentStatistics | Sequence[Mapping[str, Any]] | None) -> list[IncidentRecord]:
    """The log's incidents as the summary holds them (without their wall-clock stamps)."""
    if stats is None:
        return []
    if not isinstance(stats, IncidentStatistics):
        records: list[IncidentRecord] = _convert(stats, list[IncidentRecord])
        return records
    return [IncidentRecord(t_s=i.t_s, kind=i.kind, target=i.target, detail=i.detail,
                           detected_after_s=i.detected_after_s, duration_s=i.duration_s)
            for i in stats.incidents]


def summary_dict(summary: Summary) -> dict[str, Any]:
    """``summary.json``'s plain data (what ``RunOutcome.summary`` holds)."""
    data: dict[str, Any] = to_builtins(summary)
    return data
