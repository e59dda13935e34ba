"""Shared test helpers: a typed scenario builder, one ``ppipe`` CLI runner, and one
factory of the scorer's configuration.

- :class:`Scenario` and its sections (:class:`Dataset`, :class:`Load`, :class:`Labels`,
  :class:`Pipeline`, :class:`Kafka`, :class:`Security`, :class:`Scoring`,
  :class:`Validity`, :class:`Fault`, :class:`Command`) say what a test's scenario file
  holds; a field left ``None`` is not written, so the file says only what the test
  chose and the loader's own defaults apply to the rest. :meth:`Scenario.write` puts
  the TOML (written by ``tomli_w``) in a folder, :meth:`Scenario.loaded` validates it as
  ``ppipe run`` would.
- :func:`ppipe` runs ``python -m ppipe_stream ...`` in a subprocess with a timeout and
  returns a :class:`CliResult`; :func:`start_ppipe` starts one for a test that sends
  signals mid-run (locust's ``test/subprocess_utils.py`` habit).
- :func:`scoring_config` builds a :class:`~ppipe_stream.scoring.ScoringConfig` with the
  timings most unit tests use.

Scenario text a test writes on purpose (bad input, the loader's error lines) stays in
that test: it is the point of the test. This module does not start brokers (that is
``tests/integration/conftest.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
import tomli_w

from ppipe_stream.scenario import LoadedScenario, loads_scenario
from ppipe_stream.scoring import ScoringConfig
from tests.summary_check import read_summary

__all__ = [
    "ROOT", "IRIS", "MS", "example", "iris",
    "Scenario", "Dataset", "Load", "Stage", "Labels", "Pipeline", "Kafka", "Security",
    "Scoring", "Tolerance", "Validity", "Fault", "Command",
    "CliResult", "ppipe", "start_ppipe", "summary_of", "wait_for_events",
    "scoring_config",
]

ROOT = Path(__file__).resolve().parents[1]
IRIS = ROOT / "scenarios" / "data" / "iris.csv"
MS = 1_000_000

Number = int | float


def example(module: str) -> list[str]:
    """The command of one of ``ppipe_stream.examples``' pipelines (``echo``, ``faulty``...)."""
    return ["python", "-m", f"ppipe_stream.examples.{module}"]


class _Section(msgspec.Struct, frozen=True, kw_only=True):
    """A scenario table: a field left ``None`` is not written."""


def _without_none(value: Any) -> Any:
    """``value`` (built-in types) with every ``None`` left out of its tables."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


class Dataset(_Section, frozen=True, kw_only=True):
    source: Literal["csv", "jsonl", "parquet", "sklearn", "river", "synth"] = "csv"
    path: str | None = None
    name: str | None = None
    target: str | None = None
    shuffle: bool | None = None
    timestamp: str | None = None
    loop: bool | None = None
    generator: str | None = None
    drift_at: list[int] | None = None
    on_bad_row: str | None = None
    pad: int | None = None


def iris(*, shuffle: bool | None = None) -> Dataset:
    """The shipped iris csv, by its absolute path, looped: the stream most tests send."""
    return Dataset(path=str(IRIS), target="variety", shuffle=shuffle, loop=True)


class Stage(_Section, frozen=True, kw_only=True):
    rate: Number
    duration: str


class Load(_Section, frozen=True, kw_only=True):
    profile: str = "constant"
    rate: Number | None = 100
    start_rate: Number | None = None
    end_rate: Number | None = None
    stages: list[Stage] | None = None
    burstiness: float | None = None
    speedup: float | None = None
    proportions: list[float] | None = None
    interval: str | None = None
    duration: str | None = None
    count: int | None = None
    warmup: str | None = None
    drain: str | None = None
    workers: int | None = None
    max_lag: str | None = None
    on_overload: str | None = None


class Labels(_Section, frozen=True, kw_only=True):
    delay: str | None = None


class Pipeline(_Section, frozen=True, kw_only=True):
    """One ``[[pipelines]]`` table; a process pipeline given no command runs the echo example."""

    name: str = "echo"
    runtime: Literal["process", "docker", "external"] = "process"
    command: list[str] | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    image: str | None = None
    build: str | None = None
    dockerfile: str | None = None
    build_args: dict[str, str] | None = None
    replicas: int | None = None
    cpus: float | None = None
    memory: str | None = None
    pids: int | None = None
    tmpfs: str | None = None
    restart: str | None = None
    max_restarts: int | None = None
    hang_after: str | None = None
    on_hang: str | None = None
    ready_timeout: str | None = None

    def __post_init__(self) -> None:
        if self.runtime == "process" and self.command is None:
            msgspec.structs.force_setattr(self, "command", example("echo"))


class Security(_Section, frozen=True, kw_only=True):
    protocol: str
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    check_hostname: bool | None = None


class Kafka(_Section, frozen=True, kw_only=True):
    bootstrap: str | None = None
    embedded: str | None = None
    partitions: int | None = None
    replication_factor: int | None = None
    acks: str | None = None
    linger: str | None = None
    idempotent: bool | None = None
    security: Security | None = None


class Tolerance(_Section, frozen=True, kw_only=True):
    rtol: float | None = None
    atol: float | None = None


class Scoring(_Section, frozen=True, kw_only=True):
    task: str | None = None
    metrics: list[str] | None = None
    deadline: str | None = None
    window: str | None = None
    tolerance: Tolerance | None = None
    abort_on_fail: bool | None = None
    calibrate: bool | None = None


class Validity(_Section, frozen=True, kw_only=True):
    min_duration: str | None = None
    min_events: int | None = None
    min_rate_ratio: float | None = None
    max_lag_p99: str | None = None
    max_loop_lateness_p99: str | None = None


class Fault(_Section, frozen=True, kw_only=True):
    """One ``[[faults]]`` table; which keys an action takes is docs/scenario.md's."""

    at: str
    action: str
    pipeline: str | None = None
    replica: int | None = None
    duration: str | None = None
    node: int | None = None
    downtime: str | None = None
    delay: str | None = None
    loss: float | None = None
    fraction: float | None = None
    mode: str | None = None
    columns: list[str] | None = None


class Command(_Section, frozen=True, kw_only=True):
    """One ``[[commands]]`` table (a proctor command)."""

    command: str
    at: str | None = None
    every: str | None = None
    min_gap: str | None = None
    max_gap: str | None = None
    sample: int | None = None
    deadline: str | None = None
    pipeline: str | None = None
    feature: str | None = None
    expression: str | None = None


def _default_load() -> Load:
    return Load(duration="3s")


def _default_pipelines() -> list[Pipeline]:
    return [Pipeline()]


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """A whole scenario file; by default the iris stream at 100/s for 3 s to one echo
    pipeline on the embedded broker."""

    name: str = "test"
    seed: int | None = None
    dataset: Dataset = msgspec.field(default_factory=iris)
    load: Load = msgspec.field(default_factory=_default_load)
    labels: Labels | None = None
    pipelines: list[Pipeline] = msgspec.field(default_factory=_default_pipelines)
    scoring: Scoring | None = None
    thresholds: dict[str, str] | None = None
    validity: Validity | None = None
    kafka: Kafka | None = None
    faults: list[Fault] | None = None
    commands: list[Command] | None = None

    def text(self) -> str:
        """The scenario as TOML."""
        return tomli_w.dumps(_without_none(msgspec.to_builtins(self)))

    def write(self, folder: Path, filename: str = "scenario.toml") -> Path:
        """Writes ``folder/filename``; its path."""
        path = folder / filename
        path.write_text(self.text())
        return path

    def loaded(self, folder: Path, *, filename: str = "scenario.toml",
             base_dir: Path | None = None) -> LoadedScenario:
        """Validated as if it were ``folder/filename`` (relative paths resolve against
        ``base_dir``, by default ``folder``), without writing it."""
        return loads_scenario(self.text(), file=str(folder / filename),
                              base_dir=folder if base_dir is None else base_dir)


# -- the ppipe command in a subprocess --------------------------------------------

PPIPE = [sys.executable, "-m", "ppipe_stream"]


class CliResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one ``ppipe`` invocation did."""

    args: list[str]
    cwd: Path | None
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def last_line(self) -> str:
        """The last line of standard output (``ppipe run`` prints its folder there)."""
        return self.stdout.strip().splitlines()[-1]

    def error_lines(self) -> list[str]:
        """The lines of standard error that are not blank."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if env is None else {**os.environ, **env}


def ppipe(*args: str, cwd: Path | None = None, timeout: float = 120,
          env: Mapping[str, str] | None = None,
          preexec_fn: Callable[[], None] | None = None) -> CliResult:
    """``python -m ppipe_stream *args`` to its end; ``env`` is added to this process's
    environment. ``subprocess.TimeoutExpired`` past ``timeout``."""
    done = subprocess.run([*PPIPE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_env(env), preexec_fn=preexec_fn)
    return CliResult(args=list(args), cwd=cwd, returncode=done.returncode, stdout=done.stdout,
                     stderr=done.stderr)


def start_ppipe(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                stdin: int | None = None, stdout: int | None = subprocess.PIPE,
                stderr: int | None = subprocess.PIPE) -> subprocess.Popen[str]:
    """``python -m ppipe_stream *args`` started and left running (text streams piped
    unless told otherwise), for a test that signals it or reads it as it goes."""
    return subprocess.Popen([*PPIPE, *args], cwd=cwd, stdin=stdin, stdout=stdout,
                            stderr=stderr, text=True, env=_env(env))


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``with reaped(start_ppipe(...)) as run:``: on the way out a process still running
    (an assertion failed mid-test) is killed and reaped, so no test leaves one behind."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def refused(port: int) -> bool:
    """Whether a connection to 127.0.0.1:``port`` is refused (nothing listens there)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def summary_of(folder: Path) -> dict[str, Any]:
    """A finished run folder's summary.json, checked strictly against the results model
    (tests/summary_check.py), as the JSON it is."""
    read_summary(folder)
    return json.loads((folder / "summary.json").read_text())


def wait_for_events(summary: Path, more_than: int = 50, timeout: float = 60) -> None:
    """Waits (at most ``timeout`` seconds) until the running run whose summary.json is
    ``summary`` has sent more than ``more_than`` events."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if summary.exists() and \
                json.loads(summary.read_text())["dispatch"].get("events_sent", 0) > more_than:
            return
        time.sleep(0.2)


# -- the scorer's configuration --------------------------------------------------

def scoring_config(*, deadline_ns: int = 500 * MS, window_ns: int = 1000 * MS,
                   drain_ns: int = 1000 * MS, task: str = "classification",
                   metrics: Sequence[str] = (), **changes: Any) -> ScoringConfig:
    """A ScoringConfig: a 500 ms deadline, 1 s windows and drain, unless told otherwise
    (``warmup_end_ns``, ``rtol``, ``atol`` among ``changes``)."""
    return ScoringConfig(task=task, metrics=list(metrics), deadline_ns=deadline_ns,
                         window_ns=window_ns, drain_ns=drain_ns, **changes)
