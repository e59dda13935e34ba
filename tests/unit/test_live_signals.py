"""The live view shows the harness's own signals while the run goes: loop lateness,
dropped events, and INVALID with its reason (a plain display says it at once)."""

from __future__ import annotations

import io

from rich.console import Console

from ppipe_stream.view.display import RunDisplay
from ppipe_stream.view.live import Frame, frame_from_summary, render

REASON = "the harness lost the schedule from 1 s on: 5 events were dropped, not sent within max_lag"


def text(frame: Frame) -> str:
    console = Console(file=io.StringIO(), width=250, color_system=None)
    console.print(render(frame))
    return console.file.getvalue()


def test_render_shows_lateness_dropped_and_invalid():
    shown = text(Frame(run_id="r", state="dispatching", events_sent=10, dropped=5,
                       loop_lateness_p99_ms=7.25, invalid=[REASON]))
    assert "loop lateness p99 7.2 ms" in shown and "dropped 5" in shown
    assert f"INVALID: {REASON}" in shown
    quiet = text(Frame(run_id="r", state="dispatching", events_sent=10, loop_lateness_p99_ms=0.5))
    assert "INVALID" not in quiet and "dropped" not in quiet


def test_frame_from_summary_carries_the_signals():
    frame = frame_from_summary({
        "run_id": "r", "dispatch": {"events_sent": 3, "dropped": 9},
        "harness": {"loop_lateness_ms": {"p50": 0.3, "p99": 6.5, "max": 9.0, "samples": 10}},
        "validity": {"valid": False, "reasons": [REASON], "recommendations": ["x"]}})
    assert (frame.dropped, frame.loop_lateness_p99_ms, frame.invalid) == (9, 6.5, [REASON])
    assert frame_from_summary({"run_id": "r"}).invalid == []  # an older summary


def test_a_plain_display_says_each_new_invalid_reason_at_once():
    out = io.StringIO()
    display = RunDisplay(stream=out, force_plain=True)
    with display:
        display.update(Frame(state="dispatching"))  # the first line
        display.update(Frame(state="dispatching"))  # within 5 s: nothing
        display.update(Frame(state="dispatching", invalid=[REASON]))  # at once
        display.update(Frame(state="dispatching", invalid=[REASON]))  # said already
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].endswith(f"INVALID: {REASON}"), lines
