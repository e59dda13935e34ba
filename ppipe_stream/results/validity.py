"""Whether a run's figures can be trusted, and what to do when they cannot.

Owns the verdict of ``summary.json``'s ``validity``: a run is invalid when it
was shorter than ``min_duration`` or than ``min_events`` scored events, or when
the harness itself could not keep the schedule: events dropped (not sent
within ``[load] max_lag`` of their time), a sent rate under ``min_rate_ratio``
of the rate the schedule itself planned over the same span (so the seeded
randomness of a Poisson or bursty schedule is never held against a run that
kept it), dispatch lag p99 over ``max_lag_p99``, or the harness's own event
loop running late (``max_loop_lateness_p99``: it was starved of CPU). Then
latency figures describe the harness, not the pipeline. A run is invalid too
when the broker stalled (it was there but did not answer the health watch
within ``max_broker_response``): then missing and late answers describe the
broker, not the pipeline. Each reason comes with
a recommendation.

:func:`schedule_verdict` holds the rules that can be judged while the run goes
(the live view shows them); :func:`verdict` adds those that need the end
(:func:`judge_validity` is the same as plain data). Reads a summary (a
:class:`~ppipe_stream.results.model.Summary`; plain data is converted first);
changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec

from .model import DispatchFigures, HarnessFigures, LatenessFigures, Summary, ValidityResult, to_summary
from ..scenario.model import Validity

__all__ = ["Verdict", "judge_validity", "schedule_verdict", "verdict"]

_HARNESS_ADVICE = "lower the rate, add dispatcher workers, or give the harness more CPU"


class Verdict(NamedTuple):
    """Reasons a run is invalid, each with its recommendation (empty: valid)."""

    reasons: list[str]
    recommendations: list[str]


def _typed(value: Any, kind: type[Any]) -> Any:
    return value if isinstance(value, kind) else msgspec.convert(dict(value or {}), kind, strict=False)


def schedule_verdict(rules: Validity, dispatch: DispatchFigures | Mapping[str, Any],
                     harness: HarnessFigures | Mapping[str, Any] | None = None, *,
                     final: bool = True) -> Verdict:
    """The rules on the harness itself: did it keep the schedule, was it starved.

    ``final=False`` (while the run goes) leaves out the rate rule: the span the
    rate is measured over is not over yet."""
    dispatch_: DispatchFigures = _typed(dispatch, DispatchFigures)
    harness_: HarnessFigures = _typed(harness, HarnessFigures)
    dispatch, harness = dispatch_, harness_
    reasons: list[str] = []
    advice: list[str] = []
    dropped = dispatch.dropped
    if dropped:
        lost = dispatch.schedule_lost_at_s
        at = f" from {lost:g} s on" if lost is not None else ""
        stop = " and the run stopped there (on_overload = \"stop\")" if dispatch.stopped_on_overload else ""
        reasons.append(f"the harness lost the schedule{at}: {dropped} events were dropped, not sent "
                       f"within max_lag of their time{stop}")
        advice.append(_HARNESS_ADVICE)
    if final:
        _rate_rule(rules, dispatch, reasons, advice)
    lag = dispatch.lag_ms.p99
    bound_ms = float(rules.max_lag_p99) * 1000
    if lag is not None and lag > bound_ms:
        reasons.append(f"dispatch lag p99 {lag:.1f} ms is over {bound_ms:g} ms: the harness could "
                       "not send on time, so latencies include its own delay")
        advice.append("lower the rate, run fewer pipelines on this machine, or move pipelines "
                      "to another host (runtime = \"external\")")
    bound_ms = float(rules.max_loop_lateness_p99) * 1000
    for figures, whose in ((harness.loop_lateness_ms, ""), (harness.workers_loop_lateness_ms,
                                                           "dispatch workers' ")):
        late = figures.p99 if isinstance(figures, LatenessFigures) else None
        if late is not None and late > bound_ms:
            reasons.append(f"the harness was starved of CPU: {whose}loop lateness p99 {late:.1f} ms "
                           f"(over {bound_ms:g} ms), so its own stamps are late by as much")
            advice.append("run nothing else on this machine while it measures (other runs, "
                          "builds, test suites), or give the harness and the pipelines more cores")
    return Verdict(reasons, advice)


def _rate_rule(rules: Validity, dispatch: DispatchFigures, reasons: list[str],
               advice: list[str]) -> None:
    """The sent rate against the rate the schedule planned over the same span
    (a summary written before ``planned_rate`` existed: against the target)."""
    achieved = dispatch.achieved_rate or 0.0
    planned = dispatch.planned_rate
    if planned is msgspec.UNSET:  # an older summary
        target = dispatch.target_rate
        if target and achieved < rules.min_rate_ratio * target:
            reasons.append(f"the dispatcher reached {achieved:.1f} events/s, under "
                           f"{rules.min_rate_ratio:.0%} of the target {target:g}")
            advice.append(_HARNESS_ADVICE)
        return
    # the achieved span ends at the last *sent* stamp, the planned one at the last *intended*:
    # a last event late within the lag bound is the lag rule's to judge, never "fell behind"
    # (over a span of milliseconds one event's lag would weigh as much as the whole run)
    count = int(dispatch.planned_events or dispatch.events_sent or 0)
    bar = planned
    if planned and count >= 2:
        bar = (count - 1) / ((count - 1) / planned + float(rules.max_lag_p99))
    if planned and bar and achieved < rules.min_rate_ratio * bar:
        target = dispatch.target_rate
        of_target = f" (target {target:g})" if target else ""
        reasons.append(f"the dispatcher sent {achieved:.1f} events/s, under "
                       f"{rules.min_rate_ratio:.0%} of the {planned:.1f} events/s its schedule "
                       f"planned over the same time{of_target}: it fell behind")
        advice.append(_HARNESS_ADVICE)


def verdict(rules: Validity, summary: Summary) -> ValidityResult:
    """The validity of the run ``summary`` describes (``judged`` is the caller's to set)."""
    reasons: list[str] = []
    advice: list[str] = []
    duration = float(summary.duration_s or 0.0)
    if duration < float(rules.min_duration):
        reasons.append(f"the run lasted {duration:.1f} s, under min_duration {rules.min_duration}")
        advice.append("run longer (raise load.duration or load.count)")
    events = min([f.events for f in summary.pipelines.values()] or [0])
    if events < rules.min_events:
        reasons.append(f"{events} scored events, under min_events {rules.min_events}")
        advice.append("send more events, or shorten the warm-up")
    stalls = summary.broker.stalls
    if stalls:
        nodes = ", ".join(sorted({stall.node for stall in stalls}))
        reasons.append(f"the broker stalled {len(stalls)} time{'s' * (len(stalls) > 1)} "
                       f"({summary.broker.stalled_s:.1f} s in all; {nodes}): it gave no answer "
                       f"within max_broker_response {rules.max_broker_response}, so missing and "
                       "late answers then are the broker's, not the pipeline's")
        advice.append("give the broker more CPU and memory, lower the rate, or use Apache Kafka "
                      "([kafka] embedded = \"kafka\", or a cluster of yours)")
    harness = schedule_verdict(rules, summary.dispatch,
                               summary.harness if isinstance(summary.harness, HarnessFigures) else None)
    reasons += harness.reasons
    advice += harness.recommendations
    return ValidityResult(valid=not reasons, reasons=reasons, recommendations=advice)


def judge_validity(rules: Validity, summary: Summary | Mapping[str, Any]) -> dict[str, Any]:
    """``{"valid": bool, "reasons": [...], "recommendations": [...]}``: :func:`verdict` as plain data."""
    result = verdict(rules, to_summary(summary))
    return {"valid": result.valid, "reasons": result.reasons, "recommendations": result.recommendations}
