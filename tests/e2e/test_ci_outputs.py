"""What CI reads from ``ppipe`` (``ppipe run`` and ``ppipe compare`` in a subprocess, on real
runs on the embedded broker): the JUnit file (read with junitparser, as CI plugins read it),
the Markdown step summary, and the regression gate ``ppipe compare --fail-if``.

Two runs are shared by the module: ``base`` (two echo pipelines answering ``setosa``: half
of looped iris's first rows right) and ``worse`` (the same pipelines answering a class that
does not exist: accuracy 0, a real regression, and ``min_events`` out of reach: invalid).
Each has a threshold that holds and one that cannot (``latency.p99 < 0.001ms``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from junitparser import Failure, JUnitXml, Skipped, TestCase

from tests.helpers import IRIS, CliResult, Dataset, Load, Pipeline, Scenario, Scoring, example
from tests.helpers import ppipe as run_ppipe

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ECHO = example("echo")
RULES = ("missing_ratio < 0.5", "latency.p99 < 0.001ms", "dispatch.events_sent > 0")


def scenario(folder: Path, command: list[str] = ECHO) -> Path:
    return Scenario(
        name="cigate", seed=3, dataset=Dataset(path=str(IRIS), target="variety", loop=True),
        load=Load(rate=50, duration="2s", drain="1s"),
        pipelines=[Pipeline(name="echo", command=command), Pipeline(name="copy", command=ECHO)],
        scoring=Scoring(task="classification", metrics=["accuracy"], deadline="1s"),
        thresholds={"missing_ratio": "< 0.5", "latency.p99": "< 0.001ms",
                    "dispatch.events_sent": "> 0"}).write(folder)


def ppipe(*args: str, cwd: Path) -> CliResult:
    return run_ppipe(*args, cwd=cwd, timeout=240)


class Run:
    """One ``ppipe run`` with ``--junit`` and ``--summary-md``: its exit code and files."""

    def __init__(self, where: Path, name: str, *extra: str, command: list[str] = ECHO,
                 md_before: str = "") -> None:
        where.mkdir()
        self.folder = where / name
        self.junit = where / "reports" / "ppipe.xml"  # a folder that does not exist yet
        self.markdown = where / "step-summary.md"
        self.markdown.write_text(md_before)
        self.result = ppipe("run", str(scenario(where, command)), "--plain", "--out", str(self.folder),
                            "--junit", str(self.junit), "--summary-md", str(self.markdown), *extra,
                            cwd=where)
        assert "Traceback" not in self.result.stderr, self.result.stderr

    @property
    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = json.loads((self.folder / "summary.json").read_text())
        return summary

    def cases(self) -> dict[tuple[str, str], TestCase]:
        xml = JUnitXml.fromfile(str(self.junit))
        cases = {(case.classname, case.name): case for suite in xml for case in suite}
        assert sum(len(suite) for suite in xml) == len(cases)  # no testcase named twice
        return cases


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("ci")
    base = Run(root / "base", "run", "-e", "PPIPE_ECHO_ANSWER=setosa")
    worse = Run(root / "worse", "run", "-e", "PPIPE_ECHO_ANSWER=no-such-class",
                "--set", "validity.min_events=1000000", md_before="earlier output of the step\n")
    return {"base": base, "worse": worse}


def only(results: list[Any], kind: type) -> Any:
    assert len(results) == 1 and isinstance(results[0], kind), results
    return results[0]


def test_junit_has_a_testcase_per_threshold_per_pipeline_and_the_validity(runs: dict[str, Run]) -> None:
    run = runs["base"]
    assert run.result.returncode == 3, run.result.stderr  # latency.p99 < 0.001ms cannot hold
    summary, cases = run.summary, run.cases()
    assert len(summary["thresholds"]) == 5  # two rules per pipeline, the dispatch rule once
    assert set(cases) == ({(f"cigate.{p}", rule) for p in ("echo", "copy") for rule in RULES[:2]}
                          | {("cigate.dispatch", RULES[2]), ("cigate", "validity")})
    for result in summary["thresholds"]:
        case = cases[(f"cigate.{result['pipeline'] or 'dispatch'}", result["expr"])]
        if result["ok"]:
            assert case.is_passed, case.result
        else:
            failure = only(case.result, Failure)
            assert result["expr"].startswith("latency.p99")
            assert failure.message == (f"latency.p99 < 0.001ms failed for pipeline {result['pipeline']}: "
                                       f"measured {result['value']:.4g} ms")
    assert sum(case.is_failure for case in cases.values()) == 2 + (not summary["validity"]["valid"])
    validity = cases[("cigate", "validity")]
    if summary["validity"]["valid"]:  # a loaded machine may make the run invalid: then it says why
        assert validity.is_passed
    else:
        assert only(validity.result, Failure).message.endswith("; ".join(summary["validity"]["reasons"]))
    assert ("cigate", "outcome") not in cases  # the run completed
    assert run.junit.read_bytes() == (run.folder / "junit.xml").read_bytes()


def test_an_invalid_run_fails_its_validity_testcase_with_the_reason(runs: dict[str, Run]) -> None:
    run = runs["worse"]
    assert run.result.returncode == 3, run.result.stderr
    failure = only(run.cases()[("cigate", "validity")].result, Failure)
    assert "under min_events 1000000" in failure.message
    assert "send more events" in failure.text  # the recommendation


def test_summary_md_has_the_headline_table_and_the_thresholds(runs: dict[str, Run]) -> None:
    run = runs["base"]
    summary = run.summary
    text = run.markdown.read_text()
    assert text == (run.folder / "summary.md").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("### ppipe cigate: a threshold failed")
    assert "| pipeline | correct | incorrect | late | missing | bad | p50 ms | p99 ms | max ms |" \
        " events/s | metrics |" in lines
    for name, figures in summary["pipelines"].items():
        status = figures["status"]
        row = f"| {name} | {status['correct']} | {status['incorrect']} | {status['deadline_exceeded']}" \
            f" | {status['missing']} |"
        assert any(line.startswith(row) for line in lines), (row, text)
    for result in summary["thresholds"]:
        mark = "ok" if result["ok"] else "**FAILED**"
        value = result["value"]
        value_text = f"{value:.4g} ms" if result["expr"].startswith("latency") else f"{value:.4g}" \
            if isinstance(value, float) else str(value)
        row = f"| {mark} | `{result['expr']}` | {result['pipeline'] or '(dispatch)'} | {value_text} |"
        assert row in lines, (row, text)
    assert ("**Validity**: valid" in lines) == summary["validity"]["valid"]


def test_summary_md_is_appended_to_a_step_summary(runs: dict[str, Run]) -> None:
    run = runs["worse"]
    text = run.markdown.read_text()
    assert text.startswith("earlier output of the step\n### ppipe cigate: a threshold failed, INVALID")
    assert "under min_events 1000000" in text


def test_the_gate_fails_on_a_real_regression(runs: dict[str, Run], tmp_path: Path) -> None:
    base, worse = runs["base"].summary, runs["worse"].summary
    result = ppipe("compare", str(runs["base"].folder), str(runs["worse"].folder),
                   "--fail-if", "accuracy < -0.01", "--fail-if", "missing_ratio > +0.5", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "validity" in result.stdout and "echo.metrics.accuracy" in result.stdout  # the table
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2, result.stdout  # accuracy, for each pipeline; missing_ratio held
    for name in ("echo", "copy"):
        before = base["pipelines"][name]["metrics"]["accuracy"]
        after = worse["pipelines"][name]["metrics"]["accuracy"]
        assert before >= 0.25 and after == 0  # setosa, then a class that is not there
        assert f"FAILED --fail-if 'accuracy < -0.01' [{name}]: accuracy {before:.4g} -> 0 " in \
            "\n".join(failed) + " ", result.stdout


def doctored(tmp_path: Path, run: Run, name: str, **p99_of: float) -> Path:
    """A copy of ``run``'s summary.json with some pipelines' p99 rewritten: a BASE."""
    folder = tmp_path / name
    folder.mkdir()
    summary = run.summary
    for pipeline, p99 in p99_of.items():
        summary["pipelines"][pipeline]["latency_ms"]["p99"] = p99
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_the_gate_holds_within_the_bound_and_fails_past_it(runs: dict[str, Run], tmp_path: Path) -> None:
    new = runs["base"]
    p99 = {name: f["latency_ms"]["p99"] for name, f in new.summary["pipelines"].items()}
    assert all(p99.values())
    near = doctored(tmp_path, new, "near", echo=p99["echo"] / 1.05, copy=p99["copy"] - 0.5)
    far = doctored(tmp_path, new, "far", echo=p99["echo"] / 2, copy=p99["copy"] - 2)
    bounds = ["--fail-if", "echo.latency.p99 > +10%", "--fail-if", "copy.latency.p99 > 1ms"]
    held = ppipe("compare", str(near), str(new.folder), *bounds, cwd=tmp_path)
    assert held.returncode == 0, held.stdout + held.stderr
    assert held.stdout.splitlines()[-1] == "--fail-if: every bound held (2 figure(s) judged)"
    failed = ppipe("compare", str(far), str(new.folder), *bounds, cwd=tmp_path)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    lines = [line for line in failed.stdout.splitlines() if line.startswith("FAILED")]
    assert len(lines) == 2 and "+100.0%)" in lines[0] and "[echo]" in lines[0], lines
    assert "[copy]" in lines[1] and "(+2 ms" not in lines[1] and " ms (+2, " in lines[1], lines
    # every pipeline in both runs when no pipeline is named: echo's p99 doubled, copy's did not
    every = ppipe("compare", str(far), str(new.folder), "--fail-if", "latency.p99 > +10%",
                  cwd=tmp_path)
    assert every.returncode == 3 and every.stdout.count("FAILED") == 1, every.stdout


@pytest.mark.parametrize("expr, says", [  # every message: tests/unit/test_gate_and_junit.py
    ("latency.p99 >> 10%", "write FIGURE OP CHANGE"),
    ("nosuch.latency.p99 > +10%", "no pipeline 'nosuch' in either run (pipelines: copy, echo)"),
])
def test_a_bad_expression_is_one_line_and_exit_2(runs: dict[str, Run], tmp_path: Path, expr: str,
                                                 says: str) -> None:
    folder = str(runs["base"].folder)
    result = ppipe("compare", folder, folder, "--fail-if", "latency.p50 > +10%", "--fail-if", expr,
                   cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""  # nothing judged, no table: the command line was wrong
    line, = result.stderr.splitlines()
    assert line.startswith(f"ppipe: error: --fail-if {expr!r}: ") and says in line, line


def test_a_run_that_fails_still_writes_its_junit(tmp_path: Path) -> None:
    run = Run(tmp_path / "failed", "run", command=["python", "-c", "import sys; sys.exit(3)"])
    assert run.result.returncode == 1, run.result.stderr
    for path in (run.junit, run.folder / "junit.xml"):
        xml = JUnitXml.fromfile(str(path))
        cases = {(case.classname, case.name): case for suite in xml for case in suite}
        outcome = only(cases.pop(("cigate", "outcome")).result, Failure)
        assert outcome.message.startswith("the run did not complete: failed (")
        assert "exited before it was ready" in outcome.message, outcome.message
        assert cases and all(isinstance(only(case.result, Skipped), Skipped)
                             for case in cases.values()), path  # thresholds, validity: not judged
    assert run.markdown.read_text().startswith("### ppipe cigate: failed, not judged")
