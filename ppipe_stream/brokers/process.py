"""A broker process this package started: its handle, readiness, and stopping.

Owns what tansu and Apache Kafka have in common once started: the process, its
log file, free-port picking, waiting until the Kafka API answers, and a stop
that never leaves a process behind. Broker-specific command lines live in
``tansu.py`` and ``kafka.py``.
"""

from __future__ import annotations

import enum
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from ..errors import BrokerError
from ..runtime.procutil import signal_group, tail_lines

__all__ = ["BrokerKind", "RunningBroker", "api_versions_request", "free_port", "launch", "spawn",
           "wait_for_kafka_api", "wait_ready"]


class BrokerKind(enum.StrEnum):
    """What kind of broker a run used (``summary.json``'s ``broker.kind``)."""

    TANSU = "embedded-tansu"
    KAFKA = "kafka"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api_versions_request() -> bytes:
    # ApiVersions v0: the smallest request every Kafka-compatible broker answers.
    client_id = b"ppipe-probe"
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big")
    body += len(client_id).to_bytes(2, "big") + client_id
    return len(body).to_bytes(4, "big") + body


def wait_for_kafka_api(host: str, port: int, *, timeout: float,
                       process: subprocess.Popen | None = None, log_path: Path | None = None) -> None:
    """Block until the broker at host:port answers an ApiVersions request.
    BrokerError with the log's tail when it does not in ``timeout`` or exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"the broker exited with code {process.returncode} while starting",
                              log_tail=_tail(log_path))
        try:
            with socket.create_connection((host, port), timeout=1) as sock:
                sock.settimeout(2)
                sock.sendall(api_versions_request())
                size = sock.recv(4)
                if len(size) == 4 and int.from_bytes(size, "big") > 0:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise BrokerError(f"no broker answered on {host}:{port} within {timeout:.0f} s",
                      log_tail=_tail(log_path))


def _tail(path: Path | None, lines: int = 15) -> str:
    return tail_lines(path, lines)


class RunningBroker:
    """A broker process started by this package; ``stop()`` (or ``with``) ends it."""

    def __init__(self, kind: BrokerKind, bootstrap: str, process: subprocess.Popen,
                 log_path: Path, *, cleanup: list[Path] | None = None) -> None:
        self.kind = kind
        self.bootstrap = bootstrap
        self.process = process
        self.log_path = log_path
        self._cleanup = cleanup or []

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def host(self) -> str:
        return self.bootstrap.split(",")[0].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.bootstrap.split(",")[0].rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; idempotent."""
        if self.process.poll() is None:
            signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                signal_group(self.process, signal.SIGKILL)
                self.process.wait(timeout=10)
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)
        self._cleanup.clear()

    def kill(self) -> None:
        """SIGKILL at once (a crash, for fault tests); keeps data dirs."""
        if self.process.poll() is None:
            signal_group(self.process, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> RunningBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningBroker({self.kind.value}, {self.bootstrap}, pid={self.pid})"


def spawn(kind: BrokerKind, command: list[str], *, port: int, log_path: Path,
          cleanup: list[Path] | None = None, host: str = "127.0.0.1") -> RunningBroker:
    """Start ``command`` (its output to ``log_path``) in its own process group and
    return at once, without waiting for readiness (a cluster's nodes must all be
    started before any of them answers). ``host``: the address it listens on."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return RunningBroker(kind, f"{host}:{port}", process, log_path, cleanup=cleanup)


def wait_ready(broker: RunningBroker, timeout: float) -> None:
    """Block until ``broker`` answers on its address; on failure it is stopped."""
    try:
        wait_for_kafka_api(broker.host, broker.port, timeout=timeout, process=broker.process,
                           log_path=broker.log_path)
    except BaseException:
        broker.stop()
        raise


def launch(kind: BrokerKind, command: list[str], *, port: int, log_path: Path,
           ready_timeout: float, cleanup: list[Path] | None = None,
           host: str = "127.0.0.1") -> RunningBroker:
    """Start ``command`` (its output to ``log_path``) and return once the Kafka API
    answers on ``host``:``port``; on failure nothing is left running."""
    broker = spawn(kind, command, port=port, log_path=log_path, cleanup=cleanup, host=host)
    wait_ready(broker, ready_timeout)
    return broker
