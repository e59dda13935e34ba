"""Checking a ``summary.json`` against the results model, strictly.

:func:`read_summary` decodes it as a :class:`~ppipe_stream.results.model.Summary`
with ``strict=True`` (no coercion: a number written as a string fails), and
then checks that every key the file holds is one the model knows (a key the
Structs do not name would be silently dropped by the default, lenient, load):
a run that writes a figure the model and docs/results.schema.json lack fails
here. tests/conftest.py runs it on every summary.json an integration or e2e
test leaves in its tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from ppipe_stream.results.model import Summary, read_summary_bytes, to_builtins

__all__ = ["read_summary", "unmodelled_keys"]


def unmodelled_keys(raw: Any, modelled: Any, where: str = "$") -> list[str]:
    """Paths of keys in ``raw`` that ``modelled`` (the same data after a round trip
    through the Structs) lacks."""
    if isinstance(raw, dict) and isinstance(modelled, dict):
        out = [f"{where}.{key}" for key in raw if key not in modelled]
        for key in raw.keys() & modelled.keys():
            out += unmodelled_keys(raw[key], modelled[key], f"{where}.{key}")
        return out
    if isinstance(raw, list) and isinstance(modelled, list):
        return [path for k, (a, b) in enumerate(zip(raw, modelled, strict=False))
                for path in unmodelled_keys(a, b, f"{where}[{k}]")]
    return []


def read_summary(path: Path) -> Summary:
    """The summary at ``path`` (a folder or its summary.json), checked strictly;
    AssertionError naming what does not fit."""
    path = path / "summary.json" if path.is_dir() else path
    data = path.read_bytes()
    try:
        summary = read_summary_bytes(data, strict=True)
    except msgspec.ValidationError as exc:
        raise AssertionError(f"{path} does not fit the results model: {exc}") from None
    missing = unmodelled_keys(json.loads(data), to_builtins(summary))
    assert not missing, f"{path}: keys the results model does not know: {missing}"
    return summary
