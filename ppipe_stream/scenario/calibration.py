"""The run's floor: ``[scoring] calibrate = true`` adds an echo pipeline on the same stream.

Owns the one place the floor pipeline is named and made: :data:`FLOOR_PIPELINE`
(the reserved name ``ppipe-floor``), :func:`floor_pipeline` (a process pipeline
running the shipped echo example, ``ppipe_stream.examples.echo``), :func:`with_floor`
(the scenario as the run sees it: the floor appended when calibrating),
:func:`without_floor` (the scenario as the user wrote it, for the copy in a run
folder, which says ``calibrate = true`` and so gets its floor again when loaded),
and :func:`reserved_name_problems` (a user pipeline named ``ppipe-floor`` is an error
naming its key). It is Nexmark's q0 pass-through query done inside the run: the
echo answers at once, so its latency is what the broker, the clients and the
harness cost. What the floor's figures mean in a summary is
:mod:`ppipe_stream.results.builder`'s; this module starts nothing.
"""

from __future__ import annotations

import msgspec

from .model import ProcessPipeline, Scenario

__all__ = ["FLOOR_COMMAND", "FLOOR_PIPELINE", "floor_name", "floor_pipeline",
           "reserved_name_problems", "with_floor", "without_floor"]

FLOOR_PIPELINE = "ppipe-floor"
# a leading "python" is the interpreter running ppipe (the process runtime's rule)
FLOOR_COMMAND = ("python", "-m", "ppipe_stream.examples.echo")


def floor_pipeline() -> ProcessPipeline:
    """The floor: the echo example as a process pipeline, one replica, never restarted."""
    return ProcessPipeline(name=FLOOR_PIPELINE, command=list(FLOOR_COMMAND))


def floor_name(scenario: Scenario) -> str | None:
    """The floor pipeline's name when ``scenario`` calibrates, else None."""
    return FLOOR_PIPELINE if scenario.scoring.calibrate else None


def with_floor(scenario: Scenario) -> Scenario:
    """``scenario`` with the floor pipeline last, when it calibrates (once: a scenario
    that holds it already is returned as it is)."""
    if not scenario.scoring.calibrate or any(p.name == FLOOR_PIPELINE for p in scenario.pipelines):
        return scenario
    return msgspec.structs.replace(scenario, pipelines=[*scenario.pipelines, floor_pipeline()])


def without_floor(scenario: Scenario) -> Scenario:
    """``scenario`` as written: the floor pipeline that :func:`with_floor` added left out."""
    if not scenario.scoring.calibrate:
        return scenario
    kept = [p for p in scenario.pipelines if p.name != FLOOR_PIPELINE]
    return msgspec.structs.replace(scenario, pipelines=kept) if kept else scenario


def reserved_name_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """(key path, message) for each user pipeline named ``ppipe-floor``: the name is the
    harness's, calibrating or not."""
    return [(f"$.pipelines[{index}].name",
             f"pipeline name {FLOOR_PIPELINE!r} is reserved for the run's floor "
             "(`$.scoring.calibrate = true` adds it); choose another name")
            for index, pipeline in enumerate(scenario.pipelines) if pipeline.name == FLOOR_PIPELINE]
