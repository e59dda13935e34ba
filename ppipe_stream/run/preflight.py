"""Cross-checks of a scenario that need other parts of the package: metric names
(river) and threshold expressions (the scorer's figures); and, before a scenario
is run or called valid, what it needs from its data and this machine.

Owns nothing but glue: between the scenario loader's ``extra_checks`` hook and
:mod:`ppipe_stream.scoring` (:func:`scenario_checks`, which returns problems and
never raises), and between ``ppipe validate`` / ``ppipe run`` and the dataset
check (:mod:`ppipe_stream.datasets.check`) and the pipelines' commands
(:func:`preflight_checks`; :func:`check_before_run` raises the first problem as
a one-line :class:`~ppipe_stream.errors.ScenarioError` at its key's line).
"""

from __future__ import annotations

import os
import shutil
from typing import NamedTuple

from ..errors import RunError, ScenarioError, shown
from ..scenario import LoadedScenario, ProcessPipeline, locate_key
from ..scenario.model import Scenario
from ..scoring import check_metric_names, parse_threshold

__all__ = ["Problem", "check_before_run", "check_machine", "preflight_checks", "scenario_checks"]


class Problem(NamedTuple):
    """One thing wrong with a scenario: the key path (``$.dataset.target``), what, a hint."""

    path: str
    message: str
    hint: str | None = None


def scenario_checks(scenario: Scenario) -> list[tuple[str, str]]:
    """(key path, message) for every problem found; empty when all is well."""
    problems: list[tuple[str, str]] = []
    try:
        check_metric_names(list(scenario.scoring.metrics), scenario.scoring.task)
    except ValueError as exc:
        problems.append(("$.scoring.metrics", str(exc)))
    for key, expr in scenario.thresholds.items():
        try:
            parse_threshold(key, expr)
        except ValueError as exc:
            problems.append((f"$.thresholds.{key}", str(exc)))
    return problems


def preflight_checks(loaded: LoadedScenario) -> list[Problem]:
    """What the scenario needs and does not find: its dataset's file, columns or name,
    and every process pipeline's working folder and command. Reads only the dataset's
    header (or first record, or schema); starts nothing."""
    from ..datasets.check import check_dataset

    problems = [Problem(f"$.dataset.{p.key}", p.message, p.hint)
                for p in check_dataset(loaded.scenario.dataset, base_dir=loaded.base_dir)]
    for index, pipeline in enumerate(loaded.scenario.pipelines):
        if isinstance(pipeline, ProcessPipeline):
            problems += _command_problems(loaded, index, pipeline)
    return problems


def _command_problems(loaded: LoadedScenario, index: int, spec: ProcessPipeline) -> list[Problem]:
    """The runner starts ``command`` in ``cwd`` (the scenario's folder by default): a
    name is looked up on PATH (the pipeline's own ``env`` PATH when it sets one), a
    path is taken from that folder."""
    from ..runtime.process import resolve_command

    key = f"$.pipelines[{index}]"
    cwd = loaded.resolve(spec.cwd or ".")
    if not cwd.is_dir():
        return [Problem(f"{key}.cwd", f"pipeline {spec.name!r}: working folder {spec.cwd!r} "
                        f"not found (looked at {shown(cwd)})")]
    program = resolve_command(spec.command)[0]
    if "/" not in program:
        if shutil.which(program, path=spec.env.get("PATH", os.environ.get("PATH", os.defpath))) is None:
            return [Problem(f"{key}.command", f"pipeline {spec.name!r}: command {program!r} "
                            "not found on PATH")]
        return []
    full = cwd / program
    if not full.is_file():
        return [Problem(f"{key}.command", f"pipeline {spec.name!r}: command {program!r} not found "
                        f"(looked at {full.resolve()})")]
    if not os.access(full, os.X_OK):
        return [Problem(f"{key}.command", f"pipeline {spec.name!r}: command {program!r} is not "
                        f"executable ({full.resolve()})", "chmod +x it, or run it with its interpreter")]
    return []


def check_before_run(loaded: LoadedScenario) -> None:
    """Raise the first of :func:`preflight_checks`' problems as a ScenarioError naming
    the scenario file and the line of the key; nothing when all is well."""
    problems = preflight_checks(loaded)
    if not problems:
        return
    first = problems[0]
    try:
        text = loaded.path.read_text(encoding="utf-8") if loaded.path.is_file() else ""
    except OSError:
        text = ""
    raise ScenarioError(str(loaded.path), first.message, path=first.path,
                        line=locate_key(text, first.path) if text else None, hint=first.hint)


def check_machine(scenario: Scenario) -> None:
    """What the machine must offer the run, checked before anything is started
    (a RunError naming what is missing)."""
    from ..scenario.faults import NetworkFault

    if any(isinstance(f, NetworkFault) and f.delay is not None for f in scenario.faults):
        from ..watch.fault_injector import netem_available

        if not netem_available():
            raise RunError("a network delay fault needs the kernel's netem queueing discipline "
                           "(sch_netem), which this machine does not have; `loss` alone works")
