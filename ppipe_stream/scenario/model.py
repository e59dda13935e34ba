"""The scenario structs: what a TOML scenario file may say (docs/scenario.md).

Owns the shape and the defaults of a scenario and the cross-field checks in
``__post_init__``. It does not read files (that is ``loader.py``) and does not
resolve paths. Structs are frozen, keyword-only and forbid unknown fields
(:mod:`.base`); pipeline runtimes are a tagged union on ``runtime``, and the
load profiles (a tagged union on ``profile``) are :mod:`.load`'s.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..security import REDACTED
from ..units import Duration
from .base import Name, PositiveInt, PositiveRate, _Base
from .faults import Fault, check_faults
from .load import (
    BurstyLoad,
    ConstantLoad,
    Load,
    PoissonLoad,
    RampLoad,
    ReleasesLoad,
    ReplayLoad,
    Stage,
    StepsLoad,
)

__all__ = [
    "Scenario",
    "Dataset",
    "Load",
    "ConstantLoad",
    "PoissonLoad",
    "RampLoad",
    "StepsLoad",
    "Stage",
    "BurstyLoad",
    "ReplayLoad",
    "ReleasesLoad",
    "Labels",
    "Pipeline",
    "ProcessPipeline",
    "DockerPipeline",
    "ExternalPipeline",
    "Scoring",
    "Tolerance",
    "KafkaSettings",
    "Security",
    "CommandSpec",
    "Validity",
    "PositiveRate",
]

class Dataset(_Base, frozen=True):
    """Where the rows come from and which column is the label."""

    source: Literal["csv", "jsonl", "parquet", "sklearn", "river", "synth"]
    path: str | None = None
    name: str | None = None
    target: str | None = None
    shuffle: bool = False
    timestamp: str | None = None
    loop: bool = False
    generator: str | None = None
    drift_at: list[int] = []
    on_bad_row: Literal["error", "skip"] = "error"
    pad: Annotated[int, Meta(ge=0)] = 0  # bytes of padding per event (feature `_pad`): ppipe bench --axis size

    def __post_init__(self) -> None:
        if self.source in ("csv", "jsonl", "parquet") and not self.path:
            raise ValueError(f"source {self.source!r} needs `path`")
        if self.source in ("sklearn", "river") and not self.name:
            raise ValueError(f"source {self.source!r} needs `name`")
        if self.source == "synth" and not self.generator:
            raise ValueError("source 'synth' needs `generator`")




class Labels(_Base, frozen=True):
    """When ground truth follows its event: ``delay`` after it, or ``never``."""

    delay: Duration = Duration("1s")


class _Supervised(_Base, frozen=True):
    """What every pipeline has: a name, and how a hang is told and handled.

    A pipeline is *hung* when it has events waiting longer than ``hang_after``
    and has answered nothing for that long; ``on_hang = "restart"`` then kills
    its replicas so the restart policy brings them back."""

    name: Name
    hang_after: Duration = Duration("1s")
    on_hang: Literal["report", "restart"] = "report"

    def _check_supervision(self) -> None:
        if self.hang_after <= 0 or math.isinf(self.hang_after):
            raise ValueError("`hang_after` must be a positive, finite duration")


class ProcessPipeline(_Supervised, tag_field="runtime", tag="process", kw_only=True, frozen=True):
    """A pipeline started as a local process with ``command``; ``restart`` says
    whether a replica that ends on its own is started again (as Docker's policy)."""

    command: list[str]
    env: dict[str, str] = {}

    @property
    def runtime(self) -> str:
        return str(type(self).__struct_config__.tag)
    cwd: str | None = None
    replicas: PositiveInt = 1
    restart: Literal["no", "on-failure", "always"] = "no"
    max_restarts: Annotated[int, Meta(ge=0)] = 3

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("`command` must name a program")
        self._check_supervision()
        if self.on_hang == "restart" and self.restart == "no":
            raise ValueError("`on_hang = \"restart\"` needs a `restart` policy other than \"no\"")


class DockerPipeline(_Supervised, tag_field="runtime", tag="docker", kw_only=True, frozen=True):
    """A pipeline run as sandboxed containers: from ``image``, or built from the
    folder ``build`` (its Dockerfile takes ``ARG BASE_IMAGE``)."""

    image: str | None = None
    build: str | None = None
    dockerfile: str | None = None
    build_args: dict[str, str] = {}
    command: list[str] = []
    env: dict[str, str] = {}
    replicas: PositiveInt = 1
    cpus: Annotated[float, Meta(gt=0)] | None = 1.0
    memory: str = "512m"
    pids: PositiveInt = 256
    tmpfs: str = "64m"
    restart: Literal["no", "on-failure", "always", "unless-stopped"] = "no"
    max_restarts: Annotated[int, Meta(ge=0)] = 3

    def __post_init__(self) -> None:
        if (self.image is None) == (self.build is None):
            raise ValueError("give exactly one of `image` and `build`")
        self._check_supervision()
        if self.on_hang == "restart" and self.restart == "no":
            raise ValueError("`on_hang = \"restart\"` needs a `restart` policy other than \"no\"")
        from ..units import parse_size

        for key in ("memory", "tmpfs"):
            try:
                parse_size(getattr(self, key))
            except ValueError as exc:
                raise ValueError(f"`{key}`: {exc}") from None

    @property
    def runtime(self) -> str:
        return str(type(self).__struct_config__.tag)


class ExternalPipeline(_Supervised, tag_field="runtime", tag="external", kw_only=True, frozen=True):
    """A pipeline started elsewhere by the user: the harness creates the topics,
    prints the environment to use, waits for its readiness reply, and scores it.
    A hang is reported; the harness cannot restart it."""

    ready_timeout: Duration = Duration("300s")

    def __post_init__(self) -> None:
        self._check_supervision()
        if self.on_hang == "restart":
            raise ValueError("an external pipeline cannot be restarted by the harness: "
                             "`on_hang` must be \"report\"")

    @property
    def runtime(self) -> str:
        return str(type(self).__struct_config__.tag)


Pipeline = ProcessPipeline | DockerPipeline | ExternalPipeline


class Tolerance(_Base, frozen=True):
    """Numbers compare equal when ``|a-b| <= atol + rtol*|b|``."""

    rtol: Annotated[float, Meta(ge=0)] = 1e-6
    atol: Annotated[float, Meta(ge=0)] = 1e-6


class Validity(_Base, frozen=True):
    """When a run's figures can be trusted (as MLPerf LoadGen reports validity):
    long enough, the harness itself kept the schedule, and the broker kept answering."""

    min_duration: Duration = Duration("0s")
    min_events: Annotated[int, Meta(ge=0)] = 0
    min_rate_ratio: Annotated[float, Meta(ge=0, le=1)] = 0.99
    max_lag_p99: Duration = Duration("20ms")
    max_loop_lateness_p99: Duration = Duration("5ms")  # the harness's own loop woke this late: starved
    # the broker's answer to the health watch's probe took longer: it stalled, and the
    # run's missing and late answers from then on are the broker's
    max_broker_response: Duration = Duration("1s")

    def __post_init__(self) -> None:
        if not 0 < self.max_broker_response < math.inf:
            raise ValueError("`max_broker_response` must be a positive, finite duration")


class Scoring(_Base, frozen=True):
    """How answers are judged."""

    task: Literal["classification", "regression"] = "classification"
    metrics: list[str] = []
    deadline: Duration = Duration("1s")
    window: Duration = Duration("1s")
    tolerance: Tolerance = Tolerance()
    abort_on_fail: bool = False
    # add the echo pipeline `ppipe-floor` on the same stream: its latency is the run's floor
    # (scenario/calibration.py adds it; results/builder.py reports it as `floor`)
    calibrate: bool = False

    def __post_init__(self) -> None:
        if self.window <= 0 or math.isinf(self.window):
            raise ValueError("`window` must be a positive, finite duration")
        if self.deadline <= 0:
            raise ValueError("`deadline` must be positive")


class CommandSpec(_Base, frozen=True):
    """A proctor command (P-Pipe's requests, streamed): sent at ``at``, every
    ``every``, or at random gaps between ``min_gap`` and ``max_gap`` (seeded)."""

    command: Literal["retrain", "validate", "batch_predict", "feature", "ping"]
    at: Duration | None = None
    every: Duration | None = None
    min_gap: Duration | None = None
    max_gap: Duration | None = None
    sample: PositiveInt = 10
    deadline: Duration = Duration("2s")
    pipeline: str | None = None
    feature: str | None = None
    expression: str | None = None

    def __post_init__(self) -> None:
        ways = sum(x is not None for x in (self.at, self.every, self.min_gap))
        if ways != 1 or (self.min_gap is None) != (self.max_gap is None):
            raise ValueError("give exactly one of `at`, `every`, or `min_gap` with `max_gap`")
        if self.every is not None and self.every <= 0:
            raise ValueError("`every` must be positive")
        if self.min_gap is not None and not (self.max_gap is not None and 0 < self.min_gap <= self.max_gap):
            raise ValueError("need 0 < `min_gap` <= `max_gap`")
        if self.command == "feature" and not (self.feature and self.expression):
            raise ValueError("command 'feature' needs `feature` (its name) and `expression` "
                             "(how to compute it from a row, e.g. \"petal_length / petal_width\")")
        if self.expression is not None:
            from ..proctor.expressions import compile_expression

            compile_expression(self.expression)


class Security(_Base, frozen=True):
    """How every Kafka client of the run (the harness's and the pipelines') logs
    in: Kafka's ``security.protocol``, SASL PLAIN or SCRAM, and TLS. The password
    is best named by ``password_env`` (read from the environment at run time) so
    the scenario file can be shared; ``repr`` never shows it. Paths are as
    written (relative to the scenario's folder), resolved by ``security.py``."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = None
    password: str | None = None
    password_env: Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    check_hostname: bool = True

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def __post_init__(self) -> None:
        # messages name keys, never values: a password must not reach an error
        if self.password is not None and self.password_env is not None:
            raise ValueError("give `password` or `password_env`, not both")
        if self.sasl:
            lacking = [key for key, value in (("sasl_mechanism", self.sasl_mechanism),
                                              ("username", self.username)) if not value]
            if self.password is None and self.password_env is None:
                lacking.append("password_env (or password)")
            if lacking:
                raise ValueError(f"protocol {self.protocol!r} needs {', '.join(lacking)}")
        else:
            given = [key for key in ("sasl_mechanism", "username", "password", "password_env")
                     if getattr(self, key) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: only for protocol SASL_PLAINTEXT or SASL_SSL")
        if not self.tls:
            given = [key for key in ("ca_file", "cert_file", "key_file") if getattr(self, key)]
            if given:
                raise ValueError(f"{', '.join(given)}: only for protocol SSL or SASL_SSL")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("`key_file` needs `cert_file` (the client certificate)")

    def redacted(self) -> Security:
        """The same settings with a literal password replaced by ``***``."""
        if self.password is None:
            return self
        return msgspec.structs.replace(self, password=REDACTED)

    def __repr__(self) -> str:
        shown = msgspec.structs.asdict(self.redacted())
        return "Security(" + ", ".join(f"{k}={v!r}" for k, v in shown.items() if v is not None) + ")"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return list(msgspec.structs.asdict(self.redacted()).items())


class KafkaSettings(_Base, frozen=True):
    """Which broker, and how the run's topics and producers are set up."""

    bootstrap: str = "embedded"
    # what bootstrap = "embedded" starts: the run's own Apache Kafka (docs/deployment.md
    # says why), or tansu (an instant start, memory only: not for sustained load)
    embedded: Literal["tansu", "kafka"] = "kafka"
    partitions: PositiveInt = 4
    replication_factor: PositiveInt = 1
    acks: Literal["all", "1", "0"] = "1"
    linger: Duration = Duration("2ms")
    idempotent: bool = False  # the input producer: no duplicates when a send is retried
    security: Security | None = None

    def __post_init__(self) -> None:
        if self.idempotent and self.acks != "all":
            raise ValueError("`$.kafka.idempotent = true` needs `acks = \"all\"` "
                             f"(Kafka's idempotent producer requires it; acks is {self.acks!r})")
        if self.security is not None and self.security.protocol != "PLAINTEXT" \
                and self.bootstrap == "embedded":
            raise ValueError("`security` is for an existing cluster: the embedded broker is "
                             "plaintext on loopback; set `bootstrap`")


class Scenario(_Base, frozen=True):
    """One run: what data, at what pace, to which pipelines, judged how."""

    name: Name
    dataset: Dataset
    load: Load
    pipelines: Annotated[list[Pipeline], Meta(min_length=1)]
    seed: int = 0
    labels: Labels = Labels()
    scoring: Scoring = Scoring()
    thresholds: dict[str, str] = {}
    commands: list[CommandSpec] = []
    validity: Validity = Validity()
    kafka: KafkaSettings = KafkaSettings()
    faults: list[Fault] = []

    def __post_init__(self) -> None:
        names = [p.name for p in self.pipelines]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pipeline names must be unique; repeated: {', '.join(dupes)}")
        check_faults(self.faults, self.pipelines, self.kafka, workers=self.load.workers)
        if self.load.workers > self.kafka.partitions:
            raise ValueError(f"`$.load.workers` ({self.load.workers}) must not exceed "
                             f"`$.kafka.partitions` ({self.kafka.partitions}): each dispatch "
                             "worker owns at least one partition")


def dec_hook(type_: type, obj: Any) -> Any:
    """msgspec hook: build :class:`Duration` from TOML strings and numbers."""
    if type_ is Duration:
        if isinstance(obj, (str, int, float)) and not isinstance(obj, bool):
            return Duration(obj)
        raise TypeError(f"expected a duration like \"500ms\", got {type(obj).__name__}")
    raise TypeError(f"no conversion to {type_!r}")  # only Duration is custom


def enc_hook(obj: Any) -> Any:
    """msgspec hook: write :class:`Duration` back as its text."""
    if isinstance(obj, Duration):
        return str(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")
