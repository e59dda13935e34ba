"""``ppipe broker start [--kind kafka|tansu] [--nodes N]``: a local broker (or Kafka cluster) in the foreground.

Owns the foreground life of a broker for users: start it, print one line
``bootstrap=HOST:PORT`` on standard output, then, on standard error, one line
per node (``node ID: pid PID, port PORT, data DIR``), and wait for Ctrl+C
(exit 130) or SIGTERM (exit 0), which stop everything. A cluster outlives the
loss of a node, since watching failover is what a local cluster is for: the
launcher reports the lost node, keeps the others running, and starts it again
on its own data and ports on Enter, on SIGUSR1, or ``--restart-after``
seconds after it was lost. A single broker that exits ends the launcher
(exit 1). Also ``prepare-kafka`` (resolve the jars only), used by scripts/test.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from ..errors import BrokerError, UsageError
from .cluster import KafkaCluster

__all__ = ["RESTART_HELP", "add_start_arguments", "main_broker_start", "main"]

EXIT_OK, EXIT_EXITED, EXIT_INTERRUPTED = 0, 1, 130
RESTART_HELP = ("A cluster keeps running when a node is lost: the lost node starts again on its "
                "data when you press Enter, on SIGUSR1 (kill -USR1 <launcher pid>), or after "
                "--restart-after seconds; Ctrl+C stops every node (exit 130), SIGTERM too (exit 0)")


def add_start_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``broker start`` (shared by ``ppipe`` and ``python -m ppipe_stream.brokers``)."""
    parser.add_argument("--kind", choices=["kafka", "tansu"], default="kafka",
                        help="Apache Kafka (the default, as the embedded broker) or tansu")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--nodes", type=int, default=1, help="kafka only: a cluster of N nodes")
    parser.add_argument("--restart-after", type=float, default=None, metavar="SECONDS",
                        help="cluster only: start a lost node again after SECONDS "
                             "(default: only on Enter or SIGUSR1)")
    parser.epilog = RESTART_HELP


def main_broker_start(kind: str, port: int | None = None, *, nodes: int = 1,
                      restart_after: float | None = None) -> int:
    """Run a broker (or, for kafka, a cluster of ``nodes``) until SIGINT/SIGTERM;
    returns the exit code (130 on Ctrl+C, 0 on SIGTERM, 1 when a single broker exits)."""
    from .cluster import start_kafka_cluster
    from .kafka import start_kafka
    from .tansu import start_tansu

    if kind not in ("kafka", "tansu"):
        raise UsageError(f"unknown broker kind {kind!r}; use kafka or tansu")
    if nodes < 1 or (nodes > 1 and kind != "kafka"):
        raise UsageError("--nodes takes a positive count, and more than one only with --kind kafka")
    if nodes > 1 and port is not None:
        raise UsageError("--port is for one node; a cluster's nodes pick free ports")
    if restart_after is not None and (nodes == 1 or not restart_after > 0):
        raise UsageError("--restart-after takes a positive number of seconds, with --nodes 2 or more")
    stopped: list[int] = []
    stop = threading.Event()
    restart = threading.Event()

    def on_stop(signum: int, _frame: object) -> None:
        stopped.append(EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_OK)
        stop.set()

    handlers = {signal.SIGINT: on_stop, signal.SIGTERM: on_stop,
                signal.SIGUSR1: lambda *_: restart.set()}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        if nodes > 1:
            cluster = start_kafka_cluster(nodes)
            with cluster:
                print(f"bootstrap={cluster.bootstrap}", flush=True)
                for i in cluster.node_ids:
                    _say(f"node {i}: pid {cluster.node(i).pid}, port {cluster.node(i).port}, "
                         f"data {cluster.node_dir(i)}")
                _say(f"kafka cluster running ({nodes} nodes, data in {cluster.data_dir}, "
                     f"launcher pid {os.getpid()}); Ctrl+C stops it")
                _say(RESTART_HELP)
                _read_enter_presses(restart)
                _ClusterKeeper(cluster, restart, restart_after).watch(stop)
        else:
            broker = start_kafka(port=port) if kind == "kafka" else start_tansu(port=port)
            with broker:
                print(f"bootstrap={broker.bootstrap}", flush=True)
                _say(f"{kind} broker running (pid {broker.pid}, log {broker.log_path}); "
                     "Ctrl+C stops it")
                while not stop.wait(0.5):
                    if not broker.alive():
                        _say(f"the broker exited (code {broker.process.returncode})")
                        return EXIT_EXITED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stopped[0] if stopped else EXIT_OK


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _read_enter_presses(restart: threading.Event) -> None:
    """Each line typed on the launcher's terminal asks for a restart of the lost nodes.
    Only a terminal in the foreground is read: a launcher started with ``&`` that
    read its terminal would be stopped by the shell (SIGTTIN)."""
    try:
        if not sys.stdin.isatty() or os.tcgetpgrp(sys.stdin.fileno()) != os.getpgrp():
            return
    except (OSError, ValueError):
        return

    def read() -> None:
        for _ in sys.stdin:
            restart.set()

    threading.Thread(target=read, name="ppipe-broker-enter", daemon=True).start()


class _ClusterKeeper:
    """Watches a cluster's nodes: reports each one lost, and starts lost ones again
    (each in its own thread, so Ctrl+C is heard while a node comes up) when asked
    (``restart`` set) or ``restart_after`` seconds after it was lost."""

    def __init__(self, cluster: KafkaCluster, restart: threading.Event, restart_after: float | None) -> None:
        self.cluster = cluster
        self.restart = restart
        self.restart_after = restart_after
        self.lost: dict[int, float] = {}  # node id -> when it was seen lost (monotonic)
        self.restarting: dict[int, threading.Thread] = {}
        self.stopping = False

    def watch(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Until ``stop`` is set; on return no restart is under way (the caller stops the nodes)."""
        try:
            while not stop.wait(interval):
                self._step(time.monotonic())
        finally:
            self._abandon_restarts()

    def _step(self, now: float) -> None:
        for i in self.cluster.node_ids:
            if i not in self.lost and i not in self.restarting and not self.cluster.node(i).alive():
                self.lost[i] = now
                code = self.cluster.node(i).process.returncode
                when = f", or in {self.restart_after:g} s" if self.restart_after else ""
                _say(f"node {i} exited (code {code}; alive: {self.cluster.alive()}); the others "
                     f"keep running. It starts again on its data on Enter or SIGUSR1{when}")
        asked = self.restart.is_set()
        self.restart.clear()
        due = [i for i, since in self.lost.items()
               if asked or (self.restart_after is not None and now - since >= self.restart_after)]
        for i in due:
            del self.lost[i]
            thread = threading.Thread(target=self._restart, args=(i,), name=f"ppipe-restart-{i}",
                                      daemon=True)
            self.restarting[i] = thread
            thread.start()
        if asked and not due:
            _say(f"no node to restart (alive: {self.cluster.alive()})")

    def _restart(self, node_id: int) -> None:
        _say(f"node {node_id} restarting on its data")
        try:
            broker = self.cluster.restart(node_id)
            _say(f"node {node_id} restarted: pid {broker.pid}, port {broker.port} "
                 f"(alive: {self.cluster.alive()})")
        except BrokerError as exc:
            if not self.stopping:  # else it was stopped on purpose
                _say(f"node {node_id} did not restart: {exc}")
        finally:
            self.restarting.pop(node_id, None)

    def _abandon_restarts(self) -> None:
        """Stop every node (a node being restarted included), then wait for the restart
        threads, which end once their node is gone; stop again whatever one started meanwhile."""
        self.stopping = True
        if not self.restarting:
            return
        self.cluster.stop()
        for thread in list(self.restarting.values()):
            thread.join(timeout=5)
        self.cluster.stop()


def main(argv: list[str] | None = None) -> int:
    from ..errors import PpipeError

    parser = argparse.ArgumentParser(prog="python -m ppipe_stream.brokers")
    sub = parser.add_subparsers(dest="command", required=True)
    add_start_arguments(sub.add_parser("start", help="start a broker in the foreground"))
    sub.add_parser("prepare-kafka", help="resolve Apache Kafka's jars into the cache")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare-kafka":
            from .kafka import ensure_kafka_jars

            print(ensure_kafka_jars())
            return 0
        return main_broker_start(args.kind, args.port, nodes=args.nodes,
                                 restart_after=args.restart_after)
    except PpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
