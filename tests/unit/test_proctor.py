"""Proctor commands offline: timing, safe expressions, and every judge status."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppipe_stream import protocol
from ppipe_stream.proctor import CommandStatus, command_plan, compile_expression, judge
from ppipe_stream.scenario.model import CommandSpec
from ppipe_stream.units import Duration

MS = 1_000_000
SENT = 1_700_000_000_000_000_000


def command(name: str, deadline_ms: int = 1000) -> protocol.Command:
    return protocol.Command(command_id="c1", command=name, deadline_ns=SENT + deadline_ms * MS)


def verdict(name, result, *, expected=None, status="ok", at_ms=10, task="classification"):
    reply = protocol.Reply(command_id="c1", status=status, result=result)
    return judge(command(name), "p", reply, SENT + at_ms * MS, sent_ns=SENT,
                 expected=expected or {}, rtol=1e-6, atol=1e-6, task=task)


ROWS = {1: {"a": 1.0, "b": "x"}, 2: {"a": 2.0, "b": "y"}, 3: {"a": 3.0, "b": "z"}}


def test_validate_correct_partial_incorrect():
    assert verdict("validate", {str(k): v for k, v in ROWS.items()}, expected=ROWS).status == CommandStatus.CORRECT
    partial = verdict("validate", {"1": ROWS[1], "2": {"a": 2.5, "b": "y"}, "9": {"a": 0}}, expected=ROWS)
    assert partial.status == CommandStatus.PARTIAL_CORRECT
    assert (partial.matched, partial.mismatched, partial.missing, partial.extra) == (1, 1, 1, 1)
    assert "1/3 matched" in partial.message and "extra (ids 9)" in partial.message
    assert verdict("validate", {"1": {"a": 1.0}}, expected=ROWS).status == CommandStatus.INCORRECT  # key missing


def test_validate_tolerance_and_list_form():
    near = {1: {"a": 1.0 + 1e-9, "b": "x"}}
    assert verdict("validate", [{"id": 1, "features": near[1]}], expected={1: ROWS[1]}).status == CommandStatus.CORRECT


def test_syntax_error_error_status_and_deadline():
    assert verdict("validate", "rows", expected=ROWS).status == CommandStatus.SYNTAX_ERROR
    assert verdict("validate", [{"id": 1}], expected=ROWS).status == CommandStatus.SYNTAX_ERROR
    assert verdict("retrain", None, status="error").status == CommandStatus.INCORRECT
    late = verdict("ping", "pong", at_ms=1500)
    assert late.status == CommandStatus.DEADLINE_EXCEEDED and "after the deadline" in late.message
    none = judge(command("ping"), "p", None, None, sent_ns=SENT, expected={}, rtol=0, atol=0)
    assert none.status == CommandStatus.DEADLINE_EXCEEDED and none.message == "no reply"
    assert verdict("ping", "pong").status == CommandStatus.CORRECT


def test_batch_predict_is_about_answering_and_reports_accuracy():
    labels = {1: "a", 2: "b"}
    answer = verdict("batch_predict", [{"id": 1, "prediction": "a"}, {"id": 2, "prediction": "a"}], expected=labels)
    assert answer.status == CommandStatus.CORRECT and "accuracy 0.500" in answer.message
    half = verdict("batch_predict", [{"id": 1, "prediction": "a"}], expected=labels)
    assert half.status == CommandStatus.PARTIAL_CORRECT


def test_feature_against_expression():
    expression = compile_expression("a * 2 + 1")
    expected = {i: expression.evaluate(row) for i, row in ROWS.items()}
    assert verdict("feature", {"1": 3.0, "2": 5.0, "3": 7.0}, expected=expected).status == CommandStatus.CORRECT
    assert verdict("feature", {"1": 3.0, "2": 5.0, "3": 8.0}, expected=expected).status == CommandStatus.PARTIAL_CORRECT


@pytest.mark.parametrize("text", ["__import__('os')", "a.__class__", "open('x')", "a[0]", "lambda: 1",
                                  "'text'", "[1, 2]", "eval('1')"])
def test_expressions_refuse_anything_but_arithmetic(text):
    with pytest.raises(ValueError):
        compile_expression(text)


def test_expressions_compute():
    assert compile_expression("log(x + 1) if x > 0 else -1").evaluate({"x": 0}) == -1
    assert compile_expression("max(a, b) ** 2").evaluate({"a": 2, "b": 3}) == 9
    with pytest.raises(ValueError, match="no field 'y'"):
        compile_expression("y + 1").evaluate({"x": 1})
    with pytest.raises(ValueError):
        compile_expression("x / 0").evaluate({"x": 1})
    with pytest.raises(ValueError, match="exponent"):
        compile_expression("9 ** 9999").evaluate({})


def test_command_spec_needs_one_timing():
    with pytest.raises(ValueError, match="exactly one"):
        CommandSpec(command="ping", at=Duration("1s"), every=Duration("2s"))
    with pytest.raises(ValueError, match="expression"):
        CommandSpec(command="feature", at=Duration("1s"))
    with pytest.raises(ValueError, match="are allowed"):
        CommandSpec(command="feature", at=Duration("1s"), feature="f", expression="__import__('os')")


@given(seed=st.integers(0, 10**6), lo=st.floats(0.1, 5), spread=st.floats(0, 5))
def test_plan_is_seeded_sorted_and_within_bounds(seed, lo, spread):
    specs = [CommandSpec(command="ping", min_gap=Duration(lo), max_gap=Duration(lo + spread)),
             CommandSpec(command="validate", every=Duration(3)), CommandSpec(command="retrain", at=Duration(5))]
    plan = command_plan(specs, duration_s=30, seed=seed)
    assert plan == command_plan(specs, duration_s=30, seed=seed) and plan == sorted(plan)
    assert all(0 < t < 30 for t, _ in plan)
    assert [t for t, i in plan if i == 1] == [3, 6, 9, 12, 15, 18, 21, 24, 27]
    gaps = [t for t, i in plan if i == 0]
    steps = [b - a for a, b in zip([0.0, *gaps], gaps, strict=False)]
    assert all(lo - 1e-9 <= g <= lo + spread + 1e-9 for g in steps)


def test_commands_draw_only_rows_sent_a_grace_before(tmp_path):
    """A row sent a moment before a validate is still on its way to the pipeline: the
    proctor asks only for rows sent at least the grace (the scoring deadline) before."""
    from ppipe_stream.proctor import Proctor

    now = [0]
    spec = CommandSpec(command="validate", at=Duration("1s"), sample=50)
    proctor = Proctor([spec], topic="t", pipelines=["p"], seed=1, duration_s=5.0, rtol=0, atol=0,
                      task="classification", out=tmp_path / "c.jsonl", grace_ns=1000 * MS,
                      clock=lambda: now[0])
    try:
        proctor.on_rows(list(range(10)), [{"a": float(i)} for i in range(10)], ["x"] * 10)
        now[0] = 1500 * MS
        proctor.on_rows(list(range(10, 20)), [{"a": float(i)} for i in range(10, 20)], ["x"] * 10)
        command, expected = proctor._build("c0", spec, 0)
        assert sorted(command.args["ids"]) == list(range(10)) == sorted(expected)
        now[0] = 2500 * MS  # both batches are old enough now
        command, _ = proctor._build("c1", spec, 0)
        assert sorted(command.args["ids"]) == list(range(20))
    finally:
        proctor.close()  # its reply stream


def test_an_early_command_draws_from_every_row_sent(tmp_path):
    from ppipe_stream.proctor import Proctor

    spec = CommandSpec(command="validate", at=Duration("100ms"), sample=5)
    proctor = Proctor([spec], topic="t", pipelines=["p"], seed=1, duration_s=5.0, rtol=0, atol=0,
                      task="classification", out=tmp_path / "c.jsonl", grace_ns=1000 * MS, clock=lambda: 0)
    try:
        proctor.on_rows([0, 1, 2], [{"a": 0.0}, {"a": 1.0}, {"a": 2.0}], ["x"] * 3)
        command, _ = proctor._build("c0", spec, 0)
        assert sorted(command.args["ids"]) == [0, 1, 2]
    finally:
        proctor.close()
