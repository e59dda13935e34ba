"""The files a CI system reads from a run: ``junit.xml`` (:mod:`.junit`) and
``summary.md`` (:mod:`.summary_md`).

Owns writing them, into the run folder at the end of every run (the orchestrator
calls :func:`write_run_ci_files` where it writes report.html) and to the paths
``ppipe run --junit FILE --summary-md FILE`` name (:func:`write_requested`),
including for a run that failed before it could return its results
(:func:`failed_summary`). Builds nothing itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import msgspec

from ..results.model import Outcome, PipelineFigures, Summary, ThresholdResult, load_summary
from ..results.outcome import not_judged_thresholds, not_judged_validity
from ..scoring.thresholds import evaluate
from .junit import JUNIT_NAME, write_junit
from .summary_md import SUMMARY_MD_NAME, append_summary_md, summary_markdown

__all__ = ["failed_summary", "write_requested", "write_run_ci_files"]


def write_run_ci_files(folder: Path) -> None:
    """``junit.xml`` and ``summary.md`` in a run folder, from its ``summary.json``."""
    summary = load_summary(folder)
    write_junit(summary, folder / JUNIT_NAME)
    (folder / SUMMARY_MD_NAME).write_text(summary_markdown(summary), encoding="utf-8")


def write_requested(summary: Summary, *, junit: Path | None, summary_md: Path | None) -> None:
    """Write the JUnit file (replaced) and append the Markdown (CI step summaries gather
    a step's parts) where the command line asked; OSError if a path cannot be written."""
    if junit is not None:
        write_junit(summary, junit)
    if summary_md is not None:
        append_summary_md(summary, summary_md)


def failed_summary(scenario: str, error: str, *, thresholds: Mapping[str, str] | None = None,
                   pipelines: Iterable[str] = ()) -> Summary:
    """What the CI files say of a run that ended in an error before returning results:
    failed, every threshold of the scenario (when it could be read) not judged, the
    validity not judged, and the error's first line."""
    rules = dict(thresholds or {})
    blank = Summary(pipelines={name: PipelineFigures() for name in pipelines})
    results = [msgspec.convert(r, ThresholdResult) for r in
               not_judged_thresholds([{**r, "value": None} for r in evaluate(rules, blank)])]
    return Summary(scenario=scenario, outcome=Outcome.FAILED, error=error, thresholds=results,
                   validity=not_judged_validity(Outcome.FAILED, error))
