"""How a run ended, as its folder tells it: complete, interrupted, failed, or still
running (a partial summary written while the run goes, or left by a run that was
killed outright).

Owns the words for it and the rule that only a complete run is judged: the
thresholds and the validity of an interrupted or failed run are *not judged*,
never ``ok`` or ``valid`` on figures that stop short. Reads and marks summaries
(:class:`~ppipe_stream.results.model.Summary`, old run folders included: one
written before ``outcome`` existed is read from its ``complete``,
``interrupted`` and ``error`` keys). The :class:`Outcome` enum itself lives in
the results model, with the rest of the summary's shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import Outcome, Summary, ValidityResult, to_summary

__all__ = ["Outcome", "not_judged_thresholds", "not_judged_validity", "outcome_of"]


def outcome_of(summary: Summary | Mapping[str, Any]) -> Outcome:
    """The outcome a summary records (derived for folders older than the key)."""
    summary = to_summary(summary)
    if isinstance(summary.outcome, Outcome):
        return summary.outcome
    if summary.complete:
        return Outcome.COMPLETE
    if summary.interrupted:
        return Outcome.INTERRUPTED
    if summary.error:
        return Outcome.FAILED
    return Outcome.RUNNING


def not_judged_thresholds(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The threshold results of a run that did not complete: each keeps the value
    measured so far, but is marked ``"judged": false`` with ``"ok": null``."""
    return [{**r, "ok": None, "judged": False} for r in results]


def not_judged_validity(outcome: Outcome, error: str | None) -> ValidityResult:
    """The validity of a run that did not complete: not valid, not judged, and why."""
    if outcome is Outcome.FAILED:
        reason = f"not judged: the run failed ({error})" if error else "not judged: the run failed"
        advice = "fix the failure above and run again"
    elif outcome is Outcome.INTERRUPTED:
        reason = "not judged: the run was interrupted, its figures stop short"
        advice = "let the run end, or shorten load.duration"
    else:
        reason = "not judged: the run has not ended"
        advice = "wait for the run to end"
    return ValidityResult(valid=False, judged=False, reasons=[reason], recommendations=[advice])
