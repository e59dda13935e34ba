"""Reading scenario files: TOML text to a validated :class:`Scenario`, or one clear error.

Owns turning every problem (unreadable file, TOML syntax, msgspec's ``$.path``
validation errors, cross-field checks, a dataset file that is not there) into
a one-line :class:`~ppipe_stream.errors.ScenarioError` naming the file, the
line of the key when it can be found, the key path, and a hint (the closest
known key for a typo, the allowed values of a tag). Also writes a scenario
back as TOML with every default filled in, and gives the scenario with every
path it names made absolute (:meth:`LoadedScenario.anchored`), so a copy of it
in a run folder reads the same files from there. A scenario with ``[scoring]
calibrate = true`` is given its floor pipeline here, once (:mod:`.calibration`). It runs nothing.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import msgspec
import tomli_w

from ..errors import ScenarioError, shown
from .calibration import reserved_name_problems, with_floor, without_floor
from .model import DockerPipeline, ProcessPipeline, Scenario, dec_hook, enc_hook
from .overrides import Overrides

__all__ = ["LoadedScenario", "load_scenario", "loads_scenario", "dump_scenario", "locate_key"]

ExtraChecks = Callable[[Scenario], list[tuple[str, str]]]

_AT = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<key>[^`]+)`")
_MISSING = re.compile(r"Object missing required field `(?P<key>[^`]+)`")
_BAD_TAG = re.compile(r"Invalid value '(?P<value>[^']*)'")


class LoadedScenario(msgspec.Struct, frozen=True):
    """A validated scenario, the file it came from, and the folder paths resolve against."""

    scenario: Scenario
    path: Path
    base_dir: Path

    def resolve(self, relative: str) -> Path:
        return (self.base_dir / relative).resolve()

    def anchored(self) -> Scenario:
        """The scenario with every path it names absolute: the dataset file, the TLS
        files, each process pipeline's working folder (the scenario's folder when it
        gave none, as the runner does) and each docker build folder. It reads the same
        files wherever a copy of it is written."""
        scenario = self.scenario
        replace = msgspec.structs.replace
        dataset, kafka = scenario.dataset, scenario.kafka
        if dataset.path and dataset.source in ("csv", "jsonl", "parquet"):
            dataset = replace(dataset, path=str(self.resolve(dataset.path)))
        if kafka.security is not None:
            files = {key: str(self.resolve(value)) for key in ("ca_file", "cert_file", "key_file")
                     if (value := getattr(kafka.security, key))}
            kafka = replace(kafka, security=replace(kafka.security, **files))
        pipelines = []
        for pipeline in scenario.pipelines:
            if isinstance(pipeline, ProcessPipeline):
                pipeline = replace(pipeline, cwd=str(self.resolve(pipeline.cwd or ".")))
            elif isinstance(pipeline, DockerPipeline) and pipeline.build:
                pipeline = replace(pipeline, build=str(self.resolve(pipeline.build)))
            pipelines.append(pipeline)
        return replace(scenario, dataset=dataset, kafka=kafka, pipelines=pipelines)


def load_scenario(path: str | Path, *, extra_checks: ExtraChecks | None = None,
                  overrides: Overrides | None = None) -> LoadedScenario:
    """Read and validate a scenario file; ScenarioError on any problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(str(path), "no such scenario file") from None
    except OSError as exc:
        raise ScenarioError(str(path), f"cannot read it: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "not UTF-8 text") from None
    return loads_scenario(text, file=str(path), base_dir=path.resolve().parent,
                          extra_checks=extra_checks, overrides=overrides)


def loads_scenario(text: str, *, file: str = "<string>", base_dir: Path = Path("."),
                   extra_checks: ExtraChecks | None = None,
                   overrides: Overrides | None = None) -> LoadedScenario:
    """Validate scenario TOML ``text``; ``file`` names it in errors; ``overrides``
    (``--set``, ``-e``) are applied before validation and named in their errors."""
    if overrides:
        try:
            return _loads(text, file=file, base_dir=base_dir, extra_checks=extra_checks,
                          transform=overrides.apply)
        except ScenarioError as exc:
            raise overrides.explain(exc) from None
    return _loads(text, file=file, base_dir=base_dir, extra_checks=extra_checks)


def _loads(text: str, *, file: str, base_dir: Path, extra_checks: ExtraChecks | None,
           transform: Callable[[dict[str, Any], str], dict[str, Any]] | None = None) -> LoadedScenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(found.group(1)) if found else None
        if line is None and "at end of document" in message:  # an unclosed string or table
            line = max(len(text.splitlines()), 1)
        message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        raise ScenarioError(file, f"TOML syntax error: {message}", line=line) from None
    if transform is not None:
        data = transform(data, file)
    try:
        scenario = msgspec.convert(data, type=Scenario, dec_hook=dec_hook, strict=True)
    except msgspec.ValidationError as exc:
        raise _explain(exc, text, file) from None
    problems = reserved_name_problems(scenario)
    loaded = LoadedScenario(with_floor(scenario), Path(file), base_dir)
    problems += _dataset_problems(loaded) + _security_problems(loaded)
    if extra_checks is not None:
        problems += extra_checks(scenario)
    if problems:
        key_path, message = problems[0]
        raise ScenarioError(file, message, path=key_path, line=locate_key(text, key_path))
    return loaded


def _dataset_problems(loaded: LoadedScenario) -> list[tuple[str, str]]:
    dataset = loaded.scenario.dataset
    if dataset.path and dataset.source in ("csv", "jsonl", "parquet"):
        if "\0" in dataset.path:
            return [("$.dataset.path", "a path cannot hold a NUL character")]
        full = loaded.resolve(dataset.path)
        if not full.is_file():
            return [("$.dataset.path", f"dataset file {dataset.path!r} not found (looked at {shown(full)})")]
    return []


def _security_problems(loaded: LoadedScenario) -> list[tuple[str, str]]:
    security = loaded.scenario.kafka.security
    problems = []
    for key in ("ca_file", "cert_file", "key_file"):
        relative = getattr(security, key, None) if security is not None else None
        if relative and not loaded.resolve(relative).is_file():
            problems.append((f"$.kafka.security.{key}",
                             f"{key} {relative!r} not found (looked at {shown(loaded.resolve(relative))})"))
    return problems


def _explain(exc: msgspec.ValidationError, text: str, file: str) -> ScenarioError:
    match = _AT.match(str(exc))
    assert match is not None
    message, path = match.group("message"), match.group("path") or "$"
    hint = None
    unknown = _UNKNOWN.search(message)
    missing = _MISSING.search(message)
    bad_tag = _BAD_TAG.search(message)
    if unknown:
        key = unknown.group("key")
        known = _known_keys(path, text)
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
        message = f"unknown key `{key}`"
        hint = f"did you mean `{close[0]}`?" if close else (
            f"known keys here: {', '.join(sorted(known))}" if known else None)
        path = f"{path}.{key}"
    elif missing:
        key = missing.group("key")
        message = f"missing required key `{key}`"
        line = locate_key(text, path)
        return ScenarioError(file, message, path=f"{path}.{key}" if path != "$" else f"$.{key}",
                             line=line)
    elif bad_tag and path.rsplit(".", 1)[-1] in ("profile", "runtime", "source", "task", "acks",
                                                 "on_bad_row", "protocol", "sasl_mechanism"):
        allowed = _allowed_values(path)
        value = bad_tag.group("value")
        close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.5)
        message = f"`{value}` is not one of {', '.join(allowed)}"
        hint = f"did you mean `{close[0]}`?" if close else None
    return ScenarioError(file, message, path=path, line=locate_key(text, path), hint=hint)


def _struct_at(path: str, text: str) -> list[type]:
    """The struct types a `$.a.b[0]` path may point at (several for a union)."""
    types: list[Any] = [Scenario]
    for part in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        name, index = part
        nxt: list[Any] = []
        for t in types:
            if index:
                nxt += _unwrap(t)
                continue
            fields = getattr(t, "__struct_fields__", ())
            if name in fields:
                nxt += _unwrap(msgspec.structs.fields(t)[fields.index(name)].type)
        types = nxt
    return [t for t in types if isinstance(t, type) and hasattr(t, "__struct_fields__")]


def _unwrap(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        out = []
        for arg in get_args(tp):
            out += _unwrap(arg)
        return out
    if origin in (list, tuple):
        return _unwrap(get_args(tp)[0])
    if hasattr(tp, "__origin__") and get_args(tp) and origin is not dict:  # Annotated
        return _unwrap(get_args(tp)[0])
    import types as _types

    if isinstance(tp, _types.UnionType):
        return [a for arg in get_args(tp) for a in _unwrap(arg)]
    return [tp]


def _struct_info(struct: type) -> msgspec.inspect.StructType:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType), struct  # _struct_at keeps structs only
    return info


def _known_keys(path: str, text: str) -> list[str]:
    candidates = _struct_at(path, text)
    tag_value = _tag_value_at(path, text)
    if len(candidates) > 1 and tag_value is not None:
        chosen = [c for c in candidates if _struct_info(c).tag == tag_value]
        candidates = chosen or candidates
    keys: set[str] = set()
    for struct in candidates:
        info = _struct_info(struct)
        keys.update(f.name for f in info.fields)
        if info.tag_field:
            keys.add(info.tag_field)
    return sorted(keys)


def _tag_value_at(path: str, text: str) -> str | None:
    try:
        node: Any = tomllib.loads(text)
        for part in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
            name, index = part
            node = node[int(index)] if index else node[name]
        if isinstance(node, dict):
            for key in ("profile", "runtime"):
                value = node.get(key)
                if isinstance(value, str):
                    return value
    except (KeyError, IndexError, TypeError, tomllib.TOMLDecodeError):
        return None
    return None


def _allowed_values(path: str) -> list[str]:
    owner, _, key = path.rpartition(".")
    values: list[str] = []
    for struct in _struct_at(owner, ""):
        info = _struct_info(struct)
        if info.tag_field == key and isinstance(info.tag, str):
            values.append(info.tag)
        for field in info.fields:
            if field.name == key and isinstance(field.type, msgspec.inspect.LiteralType):
                values += [str(v) for v in field.type.values]
    return sorted(dict.fromkeys(values))


def locate_key(text: str, path: str) -> int | None:
    """The 1-based line where ``path`` (``$.load.rate``, ``$.pipelines[1].name``) is
    written in TOML ``text``; the line of its table when the key itself is absent."""
    parts = [(n, int(i) if i else None) for n, i in re.findall(r"\.([A-Za-z0-9_\-\"]+)|\[(\d+)\]", path)]
    steps: list[str | int] = []
    for name, index in parts:
        steps.append(int(index) if index is not None else name)
    steps = [s if isinstance(s, int) else s for s in steps]
    if not steps:
        return 1
    table: list[str | int] = []
    counts: dict[str, int] = {}
    best: int | None = None
    key_re = re.compile(r'^\s*("?)([A-Za-z0-9_.\-]+)\1\s*=')
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        aot = re.match(r"^\[\[\s*([A-Za-z0-9_.\-]+)\s*\]\]", stripped)
        tab = re.match(r"^\[\s*([A-Za-z0-9_.\-]+)\s*\]", stripped)
        if aot:
            name = aot.group(1)
            counts[name] = counts.get(name, -1) + 1
            table = [*name.split("."), counts[name]]
        elif tab:
            table = list(tab.group(1).split("."))
        else:
            match = key_re.match(line)
            if not match:
                continue
            full = [*table, *match.group(2).split(".")]
            if _prefix(full, steps):
                return number
            if _prefix(steps, full) is False and _prefix(full[: len(steps)], steps):
                return number
            continue
        if table == steps:
            return number
        if _prefix(table, steps) and best is None:
            best = number
    return best


def _prefix(candidate: list[Any], steps: list[Any]) -> bool:
    """Whether ``candidate`` names ``steps`` or something inside it."""
    return len(candidate) >= len(steps) and candidate[: len(steps)] == steps


def dump_scenario(scenario: Scenario) -> str:
    """TOML of the scenario as run: every default filled in, None left out, and a
    literal ``[kafka.security] password`` written as ``***`` (never the secret). The
    floor pipeline of ``[scoring] calibrate = true`` is left out: loading the text adds it."""
    scenario = without_floor(scenario)
    security = scenario.kafka.security
    if security is not None:
        kafka = msgspec.structs.replace(scenario.kafka, security=security.redacted())
        scenario = msgspec.structs.replace(scenario, kafka=kafka)
    data = msgspec.to_builtins(scenario, enc_hook=enc_hook)
    return tomli_w.dumps(_drop_none(data))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
