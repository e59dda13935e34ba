"""Datasets that ship inside packages, and synthetic streams.

Owns three sources: scikit-learn's bundled loaders (``load_iris`` ... never the
``fetch_*`` downloaders: no internet), river's datasets whose files ship in the
wheel (remote ones are refused with a message saying so), and river's
synthetic generators, seeded, with concept drift at the given row indices
(each point switches the generator to its next concept).
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterator
from typing import Any

from ..errors import DatasetError
from ..scenario.model import Dataset
from . import DatasetStream, Row

__all__ = ["open_sklearn", "open_river", "open_synth", "SKLEARN_DATASETS", "SYNTH_GENERATORS"]

SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "diabetes", "digits", "linnerud")


def _closest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} known: {', '.join(known)}"


def _identifier(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def open_sklearn(spec: Dataset, *, seed: int) -> DatasetStream:
    import sklearn.datasets

    name = (spec.name or "").lower()
    if name not in SKLEARN_DATASETS:
        raise DatasetError(f"sklearn:{name}", "not a bundled scikit-learn dataset" +
                           _closest(name, list(SKLEARN_DATASETS)))
    bunch = getattr(sklearn.datasets, f"load_{name}")()
    columns = [_identifier(f) for f in bunch.feature_names]
    names = getattr(bunch, "target_names", None)
    data, target = bunch.data.tolist(), bunch.target.tolist()
    # plain str, not numpy.str_: every value must encode as JSON
    classes = [str(n) for n in names] if names is not None and len(names) and isinstance(target[0], int) else None

    def rows() -> Iterator[Row]:
        for i, (values, y) in enumerate(zip(data, target, strict=True)):
            label = classes[y] if classes is not None else y
            if isinstance(label, list):
                label = label[0]
            yield Row(i, dict(zip(columns, values, strict=True)), label, None)

    return DatasetStream(f"sklearn:{name}", rows, spec=spec, seed=seed, n_rows=len(data),
                         in_memory=True)


def _river_bundled() -> dict[str, type[Any]]:  # river types neither the constructors nor __iter__
    import river.datasets as rd
    from river.datasets import base

    found = {}
    for attr in dir(rd):
        cls = getattr(rd, attr)
        if isinstance(cls, type) and issubclass(cls, base.Dataset) and attr[0].isupper():
            found[attr.lower()] = cls
    return found


def open_river(spec: Dataset, *, seed: int) -> DatasetStream:
    from river.datasets import base

    name = (spec.name or "").lower()
    known = _river_bundled()
    if name not in known:
        raise DatasetError(f"river:{name}", "not a river dataset" + _closest(name, sorted(known)))
    cls = known[name]
    if issubclass(cls, base.RemoteDataset):
        bundled = sorted(n for n, c in known.items() if not issubclass(c, base.RemoteDataset))
        raise DatasetError(f"river:{name}", "this river dataset is downloaded on first use, and "
                           f"this tool reads no data from the internet; bundled ones: {', '.join(bundled)}")
    dataset = cls()

    def rows() -> Iterator[Row]:
        for i, (x, y) in enumerate(dataset):
            yield Row(i, _jsonable(x), _jsonable_value(y), None)

    return DatasetStream(f"river:{cls.__name__}", rows, spec=spec, seed=seed,
                         n_rows=getattr(dataset, "n_samples", None), in_memory=True)


def _jsonable_value(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _jsonable(x: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _jsonable_value(v) for k, v in x.items()}


# generator name -> (river class, keyword that picks the concept, number of concepts)
SYNTH_GENERATORS: dict[str, tuple[str, str | None, int]] = {
    "sea": ("SEA", "variant", 4),
    "agrawal": ("Agrawal", "classification_function", 10),
    "stagger": ("STAGGER", "classification_function", 3),
    "sine": ("Sine", "classification_function", 4),
    "mixed": ("Mixed", "classification_function", 2),
    "hyperplane": ("Hyperplane", None, 1),
    "random_rbf": ("RandomRBF", None, 1),
    "friedman": ("Friedman", None, 1),
    "led": ("LED", None, 1),
    "waveform": ("Waveform", None, 1),
}


def open_synth(spec: Dataset, *, seed: int) -> DatasetStream:
    import river.datasets.synth as synth

    name = (spec.generator or "").lower()
    if name not in SYNTH_GENERATORS:
        raise DatasetError(f"synth:{name}", "unknown generator" + _closest(name, sorted(SYNTH_GENERATORS)))
    cls_name, concept_key, concepts = SYNTH_GENERATORS[name]
    cls = getattr(synth, cls_name)
    points = sorted(spec.drift_at)
    if points and concept_key is None:
        with_drift = sorted(n for n, v in SYNTH_GENERATORS.items() if v[1])
        raise DatasetError(f"synth:{name}", "this generator has no concepts to drift between; "
                           f"use one of {', '.join(with_drift)}")

    def generator(segment: int):
        kwargs: dict[str, Any] = {"seed": seed * 1000 + segment}
        if concept_key is not None:
            kwargs[concept_key] = segment % concepts
        return cls(**kwargs)

    def rows() -> Iterator[Row]:
        index = 0
        bounds = [*points, None]
        for segment, end in enumerate(bounds):
            take = None if end is None else max(end - index, 0)
            for x, y in itertools.islice(generator(segment), take):
                yield Row(index, _jsonable(x), _jsonable_value(y), None)
                index += 1

    return DatasetStream(f"synth:{name}", rows, spec=spec, seed=seed, n_rows=None,
                         in_memory=False, infinite=True)
