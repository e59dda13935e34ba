"""JUnit XML of a run, the file CI systems read: ``junit.xml`` in the run folder,
and wherever ``ppipe run --junit FILE`` says.

Owns turning a :class:`~ppipe_stream.results.model.Summary` into testcases, one
testsuite per run (named after the scenario):

- one testcase per threshold result, so one per rule per pipeline (classname
  ``<scenario>.<pipeline>``, or ``<scenario>.dispatch`` for a dispatch rule; the
  name is the rule as written). A rule that did not hold is a ``<failure>``
  whose message gives the value measured; a rule of a run that did not complete
  is ``<skipped>`` (not judged), never passed;
- one testcase ``validity`` (classname ``<scenario>``): a failure listing the
  reasons the figures cannot be trusted, with the recommendations as its text;
  skipped when the run was not judged;
- one testcase ``outcome`` when the run did not complete (interrupted, failed,
  still running): a failure saying how it ended, and the error.

Writing is junitparser's. It judges nothing: every verdict is the summary's.
"""

from __future__ import annotations

from pathlib import Path

from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

from ..results.model import MetaFigures, Summary, ThresholdResult
from ..results.outcome import Outcome, outcome_of
from ..scoring.thresholds import figure_unit

__all__ = ["JUNIT_NAME", "junit_xml", "measured", "value_text", "write_junit"]

JUNIT_NAME = "junit.xml"


def value_text(result: ThresholdResult) -> str | None:
    """The value a threshold result measured, with its unit (``"12.5 ms"``); None when
    unmeasured (no answer, or a metric not computed: the rule fails)."""
    value = result.value
    if value is None:
        return None
    unit = figure_unit(result.expr.split(" ", 1)[0])
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}" if unit else text


def measured(result: ThresholdResult) -> str:
    """``"measured 12.5 ms"``, or ``"not measured"``: the words a failure message ends with."""
    text = value_text(result)
    return "not measured" if text is None else f"measured {text}"


def _threshold_case(summary: Summary, result: ThresholdResult, outcome: Outcome) -> TestCase:
    where = result.pipeline if result.pipeline is not None else "dispatch"
    case = TestCase(name=result.expr, classname=f"{summary.scenario}.{where}")
    who = f"pipeline {result.pipeline}" if result.pipeline is not None else "the dispatcher"
    if result.judged is False or outcome is not Outcome.COMPLETE:
        case.result = [Skipped(f"not judged: the run {outcome}; {who}: {measured(result)} so far")]
    elif not result.ok:
        case.result = [Failure(f"{result.expr} failed for {who}: {measured(result)}", "threshold")]
    return case


def _validity_case(summary: Summary) -> TestCase:
    case = TestCase(name="validity", classname=summary.scenario)
    validity = summary.validity
    reasons = "; ".join(validity.reasons)
    if not validity.judged:
        case.result = [Skipped(reasons or "not judged")]
    elif not validity.valid:
        failure = Failure(f"the figures cannot be trusted: {reasons}", "validity")
        failure.text = "\n".join(f"try: {advice}" for advice in validity.recommendations)
        case.result = [failure]
    return case


def _outcome_case(summary: Summary, outcome: Outcome) -> TestCase:
    case = TestCase(name="outcome", classname=summary.scenario)
    error = summary.error if isinstance(summary.error, str) else ""
    case.result = [Failure(f"the run did not complete: {outcome}" + (f" ({error})" if error else ""),
                           "outcome")]
    return case


def junit_xml(summary: Summary) -> JUnitXml:
    """The run's testsuite (in a ``<testsuites>`` root), its counts filled in."""
    outcome = outcome_of(summary)
    suite = TestSuite(f"ppipe {summary.scenario}")
    if summary.started_at:
        suite.timestamp = summary.started_at
    meta = summary.meta
    if isinstance(meta, MetaFigures) and meta.host.name:
        suite.hostname = meta.host.name
    suite.add_property("run_id", summary.run_id)
    suite.add_property("outcome", str(outcome))
    if isinstance(summary.aborted, str):
        suite.add_property("aborted", summary.aborted)
    cases = [_threshold_case(summary, result, outcome) for result in summary.thresholds]
    cases.append(_validity_case(summary))
    if outcome is not Outcome.COMPLETE:
        cases.append(_outcome_case(summary, outcome))
    suite.add_testcases(cases)
    xml = JUnitXml("ppipe")
    xml.add_testsuite(suite)
    xml.update_statistics()  # type: ignore[no-untyped-call]  # junitparser leaves it unannotated
    # the run's length, not the sum of its cases' (they are verdicts, not timed steps)
    suite.time = xml.time = round(float(summary.duration_s), 3)
    return xml


def write_junit(summary: Summary, path: Path) -> Path:
    """Write the run's JUnit XML to ``path`` (its folder made if needed); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(summary).write(str(path), pretty=True)
    return path
