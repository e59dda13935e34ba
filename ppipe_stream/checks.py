"""Cross-checks of a scenario that need other parts of the package: metric names
(river) and threshold expressions (the scorer's figures).

Owns nothing but the glue between the scenario loader's ``extra_checks`` hook
and :mod:`ppipe_stream.scoring`; returns problems, never raises.
"""

from __future__ import annotations

from .scenario.model import Scenario
from .scoring import check_metric_names, parse_threshold

__all__ = ["scenario_checks"]


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
