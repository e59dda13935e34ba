"""Checking a scenario's ``[dataset]`` against the data itself, without streaming it.

Owns what ``ppipe validate`` (and ``ppipe run``, before it starts anything) reads
of a dataset: for files, that the file opens and that its header (csv), first
record (jsonl) or schema (parquet) has the ``target`` and ``timestamp`` columns,
with the closest real column when one is missing; for built-in sources, that the
name (or generator) exists. It reads no more than that and raises nothing: it
returns :class:`DatasetProblem` values, which the caller turns into an error.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import NamedTuple

from ..errors import DatasetError, shown
from ..scenario.model import Dataset
from .files import first_columns

__all__ = ["DatasetProblem", "check_dataset", "closest_column"]

_LIST_COLUMNS_UP_TO = 12  # a weak match also lists the columns, when there are this few
_GOOD_MATCH = 0.6  # difflib's own default cutoff


class DatasetProblem(NamedTuple):
    """What is wrong, and with which ``[dataset]`` key (``path``, ``target``,
    ``timestamp``, ``name``, ``generator``); ``hint`` suggests the fix."""

    key: str
    message: str
    hint: str | None = None


def closest_column(name: str, columns: list[str]) -> str | None:
    """A hint naming the real column closest to ``name`` (difflib, case-blind); when
    none is close, the columns themselves too (if there are few). None without columns."""
    if not columns:
        return None
    lowered = {c.lower(): c for c in reversed(columns)}
    ranked = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.0)
    best = lowered[ranked[0]] if ranked else columns[0]
    hint = f"did you mean `{best}`?"
    ratio = difflib.SequenceMatcher(None, name.lower(), best.lower()).ratio()
    if ratio < _GOOD_MATCH and len(columns) <= _LIST_COLUMNS_UP_TO:
        hint += f" (the columns: {', '.join(columns)})"
    return hint


def check_dataset(spec: Dataset, *, base_dir: Path) -> list[DatasetProblem]:
    """Every problem found in ``spec`` against its data; empty when all is well."""
    if spec.source in ("csv", "jsonl", "parquet"):
        return _check_file(spec, base_dir)
    from . import open_dataset

    try:  # the built-in loaders check the name first and read no rows until iterated
        open_dataset(spec, base_dir=base_dir, seed=0)
    except DatasetError as exc:
        key = "generator" if spec.source == "synth" else "name"
        return [DatasetProblem(key, f"{exc.source}: {exc.message}")]
    return []


def _check_file(spec: Dataset, base_dir: Path) -> list[DatasetProblem]:
    assert spec.path is not None
    path = (base_dir / spec.path).resolve()
    if not path.is_file():
        return [DatasetProblem("path", f"dataset file {spec.path!r} not found (looked at {shown(path)})")]
    try:
        line, columns, what = first_columns(path, spec.source, skip_bad=spec.on_bad_row == "skip")
    except DatasetError as exc:
        return [DatasetProblem("path", str(exc))]
    where = f"{path}:{line}" if line is not None else str(path)
    problems = []
    for key in ("target", "timestamp"):
        column = getattr(spec, key)
        if column is not None and column not in columns:
            problems.append(DatasetProblem(key, f"no {key} column `{column}` in {what} of {where}",
                                           closest_column(column, columns)))
    return problems
