"""How a run ended, as its folder tells it: complete, interrupted, failed, or still
running (a partial summary written while the run goes, or left by a run that was
killed outright).

Owns the words for it and the rule that only a complete run is judged: the
thresholds and the validity of an interrupted or failed run are *not judged*,
never ``ok`` or ``valid`` on figures that stop short. Reads and marks summaries
(plain dicts, old run folders included: one written before ``outcome`` existed
is read from its ``complete``, ``interrupted`` and ``error`` keys).
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["Outcome", "not_judged_thresholds", "not_judged_validity", "outcome_of"]


class Outcome(enum.StrEnum):
    """``summary.json``'s ``outcome``."""

    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    RUNNING = "running"


def outcome_of(summary: dict[str, Any]) -> Outcome:
    """The outcome a summary records (derived for folders older than the key)."""
    recorded = summary.get("outcome")
    if recorded in Outcome.__members__.values():
        return Outcome(recorded)
    if summary.get("complete"):
        return Outcome.COMPLETE
    if summary.get("interrupted"):
        return Outcome.INTERRUPTED
    if summary.get("error"):
        return Outcome.FAILED
    return Outcome.RUNNING


def not_judged_thresholds(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The threshold results of a run that did not complete: each keeps the value
    measured so far, but is marked ``"judged": false`` with ``"ok": null``."""
    return [{**r, "ok": None, "judged": False} for r in results]


def not_judged_validity(outcome: Outcome, error: str | None) -> dict[str, Any]:
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
    return {"valid": False, "judged": False, "reasons": [reason], "recommendations": [advice]}
