"""The regression gate's parser and arithmetic, and the JUnit file of a run that did not
complete, on summaries made in memory (tests/e2e/test_ci_outputs.py runs them for real)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from ppipe_stream.report.gate import BoundResult, judge_bounds, parse_bound
from ppipe_stream.report.junit import write_junit
from ppipe_stream.report.summary_md import summary_markdown
from ppipe_stream.results.model import (
    LatencyFigures, Outcome, PipelineFigures, Summary, ThresholdResult, ValidityResult)
from ppipe_stream.results.outcome import not_judged_validity


def run(**p99: float | None) -> Summary:
    return Summary(pipelines={name: PipelineFigures(latency_ms=LatencyFigures(p99=value),
                                                    metrics={"accuracy": 0.9})
                              for name, value in p99.items()})


@pytest.mark.parametrize("text, figure, pipeline, op, value, relative", [
    ("latency.p99 > +10%", "latency.p99", None, ">", 0.10, True),
    ("accuracy < -0.01", "accuracy", None, "<", -0.01, False),
    ("latency.p99 >= 2s", "latency.p99", None, ">=", 2000.0, False),
    ("my.model.latency.p50 > 500us", "latency.p50", "my.model", ">", 0.5, False),
    ("dispatch.lag.p99 > +50%", "dispatch.lag.p99", None, ">", 0.5, True),
    ("  missing_ratio<=+0.02 ", "missing_ratio", None, "<=", 0.02, False),
])
def test_a_bound_parses(text: str, figure: str, pipeline: str | None, op: str, value: float,
                        relative: bool) -> None:
    bound = parse_bound(text, ["my.model", "my"])
    assert (bound.figure, bound.pipeline, bound.op, bound.relative) == (figure, pipeline, op, relative)
    assert bound.value == pytest.approx(value)


@pytest.mark.parametrize("text, says", [
    ("latency.p99 >> 10%", "write FIGURE OP CHANGE"),
    ("latency.p99", "write FIGURE OP CHANGE"),
    ("latncy.p99 > +10%", "did you mean 'latency.p99'"),
    ("nosuch.latency.p99 > +10%", "no pipeline 'nosuch' in either run (pipelines: my, my.model)"),
    ("latency.p99 != 0", "'!=' bounds nothing"),
    ("accuracy < -1ms", "not a time"),
    ("my.dispatch.lag.p99 > 1", "the dispatcher's, not a pipeline's"),
])
def test_a_bad_bound_is_one_line_naming_it(text: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_bound(text, ["my.model", "my"])
    message = str(caught.value)
    assert message.startswith(f"--fail-if {text!r}: ") and says in message and "\n" not in message


def test_relative_and_absolute_changes() -> None:
    base, new = run(a=10.0, b=10.0), run(a=11.5, b=10.5)
    results = judge_bounds([parse_bound("latency.p99 > +10%"), parse_bound("latency.p99 > 1ms")],
                           base, new)
    assert [(r.pipeline, r.failed) for r in results] == [("a", True), ("b", False), ("a", True),
                                                         ("b", False)]
    assert results[0].relative_change == pytest.approx(0.15) and results[2].change == pytest.approx(1.5)
    assert "latency.p99 10 -> 11.5 ms (+1.5, +15.0%)" in results[0].line()


def test_a_bound_is_on_the_change_not_the_value() -> None:
    """Accuracy fell 0.2: ``< -0.1`` fails, ``< -0.3`` holds; a rise never fails ``<``."""
    fell = Summary(pipelines={"a": PipelineFigures(metrics={"accuracy": 0.7})})
    base = Summary(pipelines={"a": PipelineFigures(metrics={"accuracy": 0.9})})
    assert judge_bounds([parse_bound("accuracy < -0.1")], base, fell)[0].failed
    assert not judge_bounds([parse_bound("accuracy < -0.3")], base, fell)[0].failed
    assert not judge_bounds([parse_bound("accuracy < -0.1")], fell, base)[0].failed


def test_zero_base_and_unmeasured_figures() -> None:
    from_zero = BoundResult(bound=parse_bound("latency.p99 > +10%"), pipeline="a", base=0.0,
                            new=1.0, failed=True)
    assert from_zero.relative_change == math.inf
    results = judge_bounds([parse_bound("latency.p99 > +10%")], run(a=0.0, b=5.0), run(a=0.0, b=None))
    assert [(r.pipeline, r.failed) for r in results] == [("a", False), ("b", True)]
    assert results[1].line().endswith("latency.p99 not measured in NEW")


def test_pipelines_judged_are_those_in_both_runs() -> None:
    results = judge_bounds([parse_bound("latency.p99 > +10%")], run(a=1.0, gone=1.0), run(a=1.0, new=9.0))
    assert [r.pipeline for r in results] == ["a"]
    with pytest.raises(ValueError, match="no pipeline is in both runs"):
        judge_bounds([parse_bound("latency.p99 > +10%")], run(a=1.0), run(b=1.0))
    with pytest.raises(ValueError, match="no pipeline 'gone' in NEW"):
        judge_bounds([parse_bound("gone.latency.p99 > +10%", ["gone"])], run(gone=1.0), run(a=1.0))


def test_an_interrupted_run_has_its_thresholds_skipped_and_its_outcome_failed(tmp_path: Path) -> None:
    summary = Summary(scenario="s", outcome=Outcome.INTERRUPTED, thresholds=[
        ThresholdResult(expr="latency.p99 < 100ms", pipeline="a", value=12.5, ok=None, judged=False)],
        validity=not_judged_validity(Outcome.INTERRUPTED, None))
    xml = JUnitXml.fromfile(str(write_junit(summary, tmp_path / "junit.xml")))
    cases = {(c.classname, c.name): c for suite in xml for c in suite}
    assert set(cases) == {("s.a", "latency.p99 < 100ms"), ("s", "validity"), ("s", "outcome")}
    skipped = cases[("s.a", "latency.p99 < 100ms")].result
    assert isinstance(skipped[0], Skipped) and "measured 12.5 ms so far" in (skipped[0].message or "")
    assert isinstance(cases[("s", "validity")].result[0], Skipped)
    outcome = cases[("s", "outcome")].result[0]
    assert isinstance(outcome, Failure) and outcome.message == "the run did not complete: interrupted"
    assert xml.tests == 3 and xml.failures == 1 and xml.skipped == 2
    assert summary_markdown(summary).startswith("### ppipe s: interrupted, not judged\n")


def test_markdown_cells_cannot_break_the_table() -> None:
    summary = Summary(scenario="s", outcome=Outcome.COMPLETE, complete=True,
                      validity=ValidityResult(valid=False, reasons=["a | b"], recommendations=["c"]))
    assert "- a \\| b (try: c)" in summary_markdown(summary)
