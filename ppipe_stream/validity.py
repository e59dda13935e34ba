"""Whether a run's figures can be trusted, and what to do when they cannot.

Owns the verdict of ``summary.json``'s ``validity``: a run is invalid when it
was shorter than ``min_duration`` or than ``min_events`` scored events, or when
the harness itself could not keep the schedule (achieved rate under
``min_rate_ratio`` of the target, or dispatch lag p99 over ``max_lag_p99``):
then latency figures describe the harness, not the pipeline. Each reason comes
with a recommendation. Reads a summary; changes nothing.
"""

from __future__ import annotations

from typing import Any

from .scenario.model import Validity

__all__ = ["judge_validity"]


def judge_validity(rules: Validity, summary: dict[str, Any]) -> dict[str, Any]:
    """``{"valid": bool, "reasons": [...], "recommendations": [...]}``."""
    reasons: list[str] = []
    advice: list[str] = []
    dispatch = summary.get("dispatch") or {}
    duration = float(summary.get("duration_s") or 0.0)
    if duration < float(rules.min_duration):
        reasons.append(f"the run lasted {duration:.1f} s, under min_duration {rules.min_duration}")
        advice.append("run longer (raise load.duration or load.count)")
    events = min([f.get("events", 0) for f in (summary.get("pipelines") or {}).values()] or [0])
    if events < rules.min_events:
        reasons.append(f"{events} scored events, under min_events {rules.min_events}")
        advice.append("send more events, or shorten the warm-up")
    target, achieved = dispatch.get("target_rate"), dispatch.get("achieved_rate") or 0.0
    if target and achieved < rules.min_rate_ratio * target:
        reasons.append(f"the dispatcher reached {achieved:.1f} events/s, under "
                       f"{rules.min_rate_ratio:.0%} of the target {target:g}")
        advice.append("lower the rate, add dispatcher workers, or give the harness more CPU")
    lag = (dispatch.get("lag_ms") or {}).get("p99")
    bound_ms = float(rules.max_lag_p99) * 1000
    if lag is not None and lag > bound_ms:
        reasons.append(f"dispatch lag p99 {lag:.1f} ms is over {bound_ms:g} ms: the harness could "
                       "not send on time, so latencies include its own delay")
        advice.append("lower the rate, run fewer pipelines on this machine, or move pipelines "
                      "to another host (runtime = \"external\")")
    return {"valid": not reasons, "reasons": reasons, "recommendations": advice}
