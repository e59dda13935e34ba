"""Datasets as streams of rows: what the dispatcher sends.

Owns the :class:`Row` shape and :func:`open_dataset`, which picks a reader by
``dataset.source``: files (``files.py``: csv, jsonl, parquet, read as a stream)
and built-in or synthetic sources (``builtin.py``: scikit-learn's and river's
bundled datasets, river's generators with concept drift). Shuffling and
looping are done here, the same way for every source, from the seed, and so is
the padding of ``dataset.pad`` (one more feature, :data:`PAD_FEATURE`, of that many
bytes: the message size ``ppipe bench --axis size`` varies).
``check.py`` checks a dataset spec against its data without streaming it (the
columns, the name), for ``ppipe validate`` and before a run. It never talks to Kafka.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import msgspec

from ..errors import DatasetError
from ..scenario.model import Dataset

__all__ = ["Row", "RowSource", "DatasetStream", "open_dataset", "SHUFFLE_BUFFER", "PAD_FEATURE"]

SHUFFLE_BUFFER = 10_000
PAD_FEATURE = "_pad"


class Row(msgspec.Struct, frozen=True):
    """One dataset row: its place in one pass (0-based), features, label, event time;
    ``spoiled`` when a fault changed its features (they are not the row's own)."""

    index: int
    features: dict[str, Any]
    label: Any
    timestamp_s: float | None = None
    spoiled: bool = False


class RowSource(Protocol):
    """What the dispatcher reads rows from: a :class:`DatasetStream`, or a wrapper of
    one (``watch.fault_injector.RowCorruptor``)."""

    @property
    def name(self) -> str: ...

    @property
    def n_rows(self) -> int | None: ...

    def __iter__(self) -> Iterator[Row]: ...


class DatasetStream:
    """Rows of one dataset, in the order the scenario wants them.

    ``rows_factory`` makes a fresh one-pass iterator; ``in_memory`` says
    whether a full permutation is cheap (otherwise a bounded shuffle buffer of
    :data:`SHUFFLE_BUFFER` rows is used, so a file larger than memory still streams).
    """

    def __init__(self, name: str, rows_factory: Callable[[], Iterator[Row]], *, spec: Dataset,
                 seed: int, n_rows: int | None, in_memory: bool, infinite: bool = False) -> None:
        self.name = name
        self.target = spec.target
        self.n_rows = n_rows
        self.skipped_rows = 0
        self._factory = rows_factory
        self._spec = spec
        self._seed = seed
        self._in_memory = in_memory
        self._infinite = infinite

    def __iter__(self) -> Iterator[Row]:
        passes = 0
        while True:
            rows = self._factory()
            if self._spec.shuffle and not self._infinite:
                rng = random.Random(f"{self._seed}:{passes}")
                rows = _full_shuffle(rows, rng) if self._in_memory else _buffer_shuffle(rows, rng)
            if self._spec.pad:
                rows = _padded(rows, "x" * self._spec.pad)
            yielded = 0
            for row in rows:
                yielded += 1
                yield row
            passes += 1
            if not self._spec.loop or self._infinite or yielded == 0:
                return

    def close(self) -> None:
        """Nothing to release: every pass opens and closes its own file."""


def _padded(rows: Iterator[Row], padding: str) -> Iterator[Row]:
    for row in rows:
        yield msgspec.structs.replace(row, features={**row.features, PAD_FEATURE: padding})


def _full_shuffle(rows: Iterator[Row], rng: random.Random) -> Iterator[Row]:
    everything = list(rows)
    rng.shuffle(everything)
    return iter(everything)


def _buffer_shuffle(rows: Iterator[Row], rng: random.Random) -> Iterator[Row]:
    buffer: list[Row] = []
    for row in rows:
        if len(buffer) < SHUFFLE_BUFFER:
            buffer.append(row)
            continue
        k = rng.randrange(len(buffer))
        yield buffer[k]
        buffer[k] = row
    rng.shuffle(buffer)
    yield from buffer


def open_dataset(spec: Dataset, *, base_dir: Path, seed: int) -> DatasetStream:
    """The rows of ``spec``; DatasetError when the source cannot be opened."""
    from . import builtin, files

    if spec.source in ("csv", "jsonl", "parquet"):
        return files.open_file(spec, base_dir=base_dir, seed=seed)
    if spec.source == "sklearn":
        return builtin.open_sklearn(spec, seed=seed)
    if spec.source == "river":
        return builtin.open_river(spec, seed=seed)
    if spec.source == "synth":
        return builtin.open_synth(spec, seed=seed)
    raise DatasetError(spec.source, f"unknown dataset source {spec.source!r}")
