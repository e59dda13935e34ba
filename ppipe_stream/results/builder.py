"""Assembling ``summary.json`` from what the run's components report.

Owns the one place a summary is put together: :class:`RunSnapshots` holds each
component's snapshot as it hands it out (the scorer's figures, the proctor's
command counts, each runner's status with the hang watch's, the dispatcher's
stats, the incidents, the broker, the harness's lateness), and
:func:`build_summary` turns them into a :class:`~ppipe_stream.results.model.Summary`,
then judges it: the thresholds (``passed``) and the validity, or marks them
*not judged* when the run did not complete (:mod:`ppipe_stream.results.outcome`). It
measures nothing and writes no file: the run loop takes the snapshots, the run
folder writes the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from .outcome import not_judged_thresholds, not_judged_validity
from .model import (
    UNSET, BrokerFigures, DispatchFigures, FaultRecord, HarnessFigures, IncidentRecord, Outcome,
    PipelineFigures, Summary, ThresholdResult, to_builtins,
)
from ..scenario.model import Validity
from ..scoring.thresholds import evaluate
from .validity import verdict

__all__ = ["RunSnapshots", "build_summary"]


class RunSnapshots(msgspec.Struct, frozen=True, kw_only=True):
    """What each component said at one moment; plain data where the component hands out plain data."""

    run_id: str
    scenario: str
    complete: bool
    outcome: Outcome
    started_at: str
    duration_s: float
    broker: BrokerFigures
    harness: HarnessFigures
    dispatch: Mapping[str, Any] | None = None  # DispatchStats.summary(); None: no dispatcher yet
    scored: Mapping[str, Mapping[str, Any]] = {}  # Scorer.summary()
    commands: Mapping[str, Mapping[str, Any]] = {}  # Proctor.summary()
    containers: Mapping[str, Mapping[str, Any]] = {}  # runner.status() with HangWatch.summary()
    incidents: Sequence[Mapping[str, Any]] = ()  # IncidentLog.summary()
    faults: Sequence[Mapping[str, Any]] | None = None  # FaultInjector.summary(); None: no injector
    aborted: str | None = None
    error: str | None = None
    interrupted: bool = False


def _convert(value: Any, kind: Any) -> Any:
    return msgspec.convert(msgspec.to_builtins(value), kind, strict=False)


def _pipelines(parts: RunSnapshots) -> dict[str, PipelineFigures]:
    """Each pipeline's figures: the scorer's, then its commands, then its process status."""
    merged: dict[str, dict[str, Any]] = {name: dict(figures) for name, figures in parts.scored.items()}
    for name, counts in parts.commands.items():
        merged.setdefault(name, {})["commands"] = counts
    for name, status in parts.containers.items():
        merged.setdefault(name, {})["container"] = status
    pipelines: dict[str, PipelineFigures] = _convert(merged, dict[str, PipelineFigures])
    return pipelines


def build_summary(parts: RunSnapshots, *, thresholds: Mapping[str, str], rules: Validity) -> Summary:
    """The summary of the run as the snapshots tell it, judged (or marked not judged)."""
    dispatch = (DispatchFigures(events_sent=0) if parts.dispatch is None
                else _convert(parts.dispatch, DispatchFigures))
    summary = Summary(
        run_id=parts.run_id, scenario=parts.scenario, complete=parts.complete,
        started_at=parts.started_at, duration_s=parts.duration_s, broker=parts.broker,
        dispatch=dispatch, harness=parts.harness, pipelines=_pipelines(parts), outcome=parts.outcome,
        incidents=_convert(parts.incidents, list[IncidentRecord]),
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


def summary_dict(summary: Summary) -> dict[str, Any]:
    """``summary.json``'s plain data (what ``RunOutcome.summary`` holds)."""
    data: dict[str, Any] = to_builtins(summary)
    return data
