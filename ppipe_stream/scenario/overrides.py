"""Command-line overrides of a scenario: ``--set KEY.PATH=VALUE`` and ``-e NAME=VALUE``.

Owns parsing the overrides, applying them to the scenario's TOML data before
it is validated (so an override is checked exactly like the file), and naming
the override in the error when the value it set is what is wrong. A path is
dotted keys with ``[n]`` for the n-th table of an array (``pipelines[0].env``),
or a pipeline's name in place of its index (``pipelines.echo.env``). A value
is read as a TOML value (``500``, ``true``, ``["a", "b"]``, ``"text"``) and as
a plain string when it is not one (``30s``). ``-e`` adds a variable to every
process and docker pipeline's ``env``. It reads no file and runs nothing.
"""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

import msgspec

from ..errors import ScenarioError, UsageError

__all__ = ["Override", "Overrides"]

_STEP = re.compile(r"([A-Za-z0-9_-]+)((?:\[\d+\])*)")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_RUNTIMES = ("process", "docker")


class Override(msgspec.Struct, frozen=True):
    """One ``--set``: the key path as given, its value, and the text it came from."""

    key: str
    value: Any
    text: str

    @classmethod
    def parse(cls, text: str) -> Override:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {text!r}: give KEY.PATH=VALUE, e.g. --set load.rate=500")
        if not all(_STEP.fullmatch(part) for part in key.split(".")):
            raise UsageError(f"--set {text!r}: {key!r} is not a key path (keys joined by dots, "
                             "[n] for an array's n-th table)")
        return cls(key, _value(raw.strip()), text)


def _value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


class Overrides:
    """The ``--set`` and ``-e`` of one command line; empty when none were given."""

    def __init__(self, sets: list[str] | None = None, env: list[str] | None = None) -> None:
        self.sets = [Override.parse(text) for text in sets or []]
        self.env: dict[str, str] = {}
        for pair in env or []:
            name, sep, value = pair.partition("=")
            if not sep or not _ENV_NAME.fullmatch(name):
                raise UsageError(f"-e {pair!r}: give NAME=VALUE (NAME: letters, digits, _)")
            self.env[name] = value
        self._paths: list[tuple[str, str]] = []  # ($.path it set, what to call it in errors)

    def __bool__(self) -> bool:
        return bool(self.sets or self.env)

    def describe(self) -> list[str]:
        """What the run folder records: each ``--set`` as given."""
        return [o.text for o in self.sets]

    def apply(self, data: dict[str, Any], file: str) -> dict[str, Any]:
        """A copy of the TOML ``data`` with every override applied, in order."""
        data = copy.deepcopy(data)
        self._paths = []
        for override in self.sets:
            path = _assign(data, override, file)
            self._paths.append((path, f"--set {override.text}"))
        if self.env:
            tables = [(i, p) for i, p in enumerate(data.get("pipelines") or [])
                      if isinstance(p, dict) and p.get("runtime") in _ENV_RUNTIMES]
            if not tables:
                raise UsageError("-e: the scenario has no process or docker pipeline to give "
                                 "the variables to")
            for index, table in tables:
                env = table.setdefault("env", {})
                if not isinstance(env, dict):
                    continue  # the loader names the bad `env` itself
                env.update(self.env)
                for name in self.env:
                    self._paths.append((f"$.pipelines[{index}].env.{name}", f"-e {name}"))
        return data

    def explain(self, error: ScenarioError) -> ScenarioError:
        """The loader's error, told as the override's when an override set that key."""
        if not error.path:
            return error
        for path, given in reversed(self._paths):
            if error.path == path or error.path.startswith(path + ".") or error.path.startswith(path + "["):
                return ScenarioError(given, error.message, path=error.path, hint=error.hint)
        return error


def _assign(data: dict[str, Any], override: Override, file: str) -> str:
    """Set ``override`` in ``data``; returns the ``$`` path it set."""
    node: Any = data
    done = "$"
    parts = override.key.split(".")

    def fail(message: str) -> ScenarioError:
        return ScenarioError(f"--set {override.text}", message, path=done)

    for number, part in enumerate(parts):
        match = _STEP.fullmatch(part)
        assert match is not None
        name, indexes = match.group(1), [int(i) for i in re.findall(r"\d+", match.group(2))]
        last = number == len(parts) - 1
        if isinstance(node, list):  # a pipeline (or any named table) by its name
            found = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("name") == name]
            if not found:
                names = [str(item.get("name")) for item in node if isinstance(item, dict)]
                raise fail(f"no table named {name!r} in {done} (names: {', '.join(names) or 'none'})")
            done = f"{done}[{found[0]}]"
            node = node[found[0]]
            if not indexes and last:
                raise fail("a whole table cannot be set; name a key inside it")
        else:
            if not isinstance(node, dict):
                raise fail(f"{done} is a value, not a table: {override.key!r} cannot go inside it")
            done = f"{done}.{name}"
            if not indexes and last:
                node[name] = override.value
                return done
            node = node.setdefault(name, [] if indexes else {})
        for position, index in enumerate(indexes):
            if not isinstance(node, list):
                raise fail(f"{done} is not an array of tables")
            if index >= len(node):
                raise fail(f"{done} has {len(node)} table(s): [{index}] is not one of them")
            done = f"{done}[{index}]"
            if last and position == len(indexes) - 1:
                node[index] = override.value
                return done
            node = node[index]
    return done
