"""When proctor commands are sent: at fixed times, every interval, or at random
gaps between a minimum and a maximum (from the scenario's seed).

Owns turning ``[[commands]]`` entries into one sorted plan of (offset in
seconds, entry index) over the run's planned duration. Nothing else.
"""

from __future__ import annotations

import random

from ..scenario.model import CommandSpec

__all__ = ["command_plan"]


def command_plan(specs: list[CommandSpec], *, duration_s: float, seed: int) -> list[tuple[float, int]]:
    """Sorted (offset_s, index into ``specs``) for every command to send before ``duration_s``."""
    plan: list[tuple[float, int]] = []
    for index, spec in enumerate(specs):
        if spec.at is not None:
            if float(spec.at) < duration_s:
                plan.append((float(spec.at), index))
        elif spec.every is not None:
            t = float(spec.every)
            while t < duration_s:
                plan.append((t, index))
                t += float(spec.every)
        else:
            assert spec.min_gap is not None and spec.max_gap is not None
            rng = random.Random(f"{seed}:command:{index}")
            t = rng.uniform(float(spec.min_gap), float(spec.max_gap))
            while t < duration_s:
                plan.append((t, index))
                t += rng.uniform(float(spec.min_gap), float(spec.max_gap))
    return sorted(plan)
