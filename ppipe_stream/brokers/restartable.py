"""The run's own Apache Kafka (``[kafka] embedded = "kafka"``): one node whose data
outlives a crash or a stop, so broker faults can be injected and survived.

Owns the node's data folder (a temporary folder removed by :meth:`close`), and
crashing (SIGKILL), stopping (SIGTERM) and starting it again on the same
ports and data. Starting is ``start_kafka``'s; this only keeps the node's
identity across restarts.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .kafka import start_kafka
from .process import BrokerKind, RunningBroker

__all__ = ["FAST_RECOVERY", "RestartableKafka"]

# After an unclean stop, KRaft keeps the node fenced until its previous broker
# session expires (9 s by default): on a loopback node the session can be short.
FAST_RECOVERY = {"broker.session.timeout.ms": "2000", "broker.heartbeat.interval.ms": "500"}


class RestartableKafka:
    """A single Apache Kafka node that can go down and come back with its data."""

    kind = BrokerKind.KAFKA

    def __init__(self, *, log_dir: Path | None = None, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="ppipe-kafka-run-"))
        self._log_dir = log_dir
        self.host = host  # where its clients' listener is: loopback, or a sandbox network's gateway
        self.node: RunningBroker | None = None
        self.bootstrap = ""
        self.restarts = 0

    def start(self) -> RestartableKafka:
        """Start the node (again, on the same port and data, after a crash or stop)."""
        if self.node is not None and self.node.alive():
            return self
        again = self.node is not None
        self.node = start_kafka(data_dir=self.data_dir, log_dir=self._log_dir,
                                extra_config=FAST_RECOVERY, host=self.host)
        self.bootstrap = self.node.bootstrap
        self.restarts += again
        return self

    def crash(self) -> None:
        """SIGKILL: the broker dies as in a power cut (its log stays on disk)."""
        if self.node is not None:
            self.node.kill()

    def stop_clean(self) -> None:
        """SIGTERM and wait: a controlled shutdown."""
        if self.node is not None:
            self.node.stop()

    def alive(self) -> bool:
        return self.node is not None and self.node.alive()

    def close(self) -> None:
        """Stop the node and remove its data."""
        if self.node is not None:
            self.node.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
