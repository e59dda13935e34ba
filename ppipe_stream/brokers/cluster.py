"""A local Apache Kafka cluster: N KRaft nodes on 127.0.0.1, for replication and broker loss.

Owns laying out N combined broker+controller nodes (distinct ports and log
dirs, one cluster id, every node a voter), formatting and starting them all at
once (no node answers before a quorum of controllers is up, so they cannot be
started one after the other), and the faults a test plays on them: ``kill``
(SIGKILL), ``stop_node`` (a clean stop), ``restart`` (same ports, same data).
``leader_of`` asks the cluster which node leads a partition. Internal topics
(consumer offsets, transactions, share groups) are replicated like the data,
so consumer groups survive the loss of a node.

Nodes are named by their KRaft node id, 1..N, which is also what the cluster
reports as a partition's leader: ``cluster.kill(cluster.leader_of(topic, 0))``.
Command lines and readiness come from ``kafka.py`` and ``process.py``; this
module adds only what a cluster needs on top.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import anyio
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from ..errors import BrokerError
from .kafka import ensure_kafka_jars, format_storage, kafka_jvm, new_cluster_id, server_properties
from .process import BrokerKind, RunningBroker, free_port, spawn, wait_ready

__all__ = ["KafkaCluster", "PartitionState", "start_kafka_cluster"]

DEFAULT_NODES = 3
DEFAULT_HEAP = "512m"  # per node: three nodes share two cores and other people's tests


def cluster_config(nodes: int) -> dict[str, str]:
    """Broker settings every node of an ``nodes``-node cluster shares: internal
    topics replicated like the data, ``min.insync.replicas`` one below the
    replication factor, and a broker declared dead within a few seconds."""
    rf = min(nodes, 3)
    min_isr = max(rf - 1, 1)
    return {
        "default.replication.factor": str(rf),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(rf),
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": str(rf),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(rf),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "unclean.leader.election.enable": "false",
        # the controller fences a silent broker after this; Kafka's default (9 s)
        # would stall every produce to a killed leader's partitions that long
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "4000",
    }


class PartitionState(NamedTuple):
    """One partition as the cluster's metadata has it; leader -1 when it has none."""

    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class KafkaCluster:
    """N running Kafka nodes; ``stop()`` (or ``with``) ends all of them."""

    def __init__(self, *, commands: dict[int, list[str]], ports: dict[int, int],
                 log_paths: dict[int, Path], brokers: dict[int, RunningBroker],
                 cluster_id: str, data_dir: Path, cleanup: list[Path]) -> None:
        self._commands = commands
        self._ports = ports
        self._log_paths = log_paths
        self._brokers = brokers
        self.cluster_id = cluster_id
        self.data_dir = data_dir
        self._cleanup = cleanup

    @property
    def node_ids(self) -> list[int]:
        return sorted(self._commands)

    @property
    def bootstrap(self) -> str:
        """Every node's address, comma-separated (clients need only one alive)."""
        return ",".join(f"127.0.0.1:{self._ports[i]}" for i in self.node_ids)

    def node(self, node_id: int) -> RunningBroker:
        """The process of node ``node_id`` (1..N)."""
        try:
            return self._brokers[node_id]
        except KeyError:
            raise BrokerError(f"the cluster has no node {node_id} (nodes: {self.node_ids})") from None

    def node_dir(self, node_id: int) -> Path:
        """The folder of node ``node_id``'s config and log dir (``DATA_DIR/node-<id>``)."""
        self.node(node_id)
        return self.data_dir / f"node-{node_id}"

    def alive(self) -> list[int]:
        """The ids of the nodes whose process is running."""
        return [i for i in self.node_ids if self._brokers[i].alive()]

    def kill(self, node_id: int) -> None:
        """SIGKILL node ``node_id`` (a crash); its data stays for ``restart``."""
        self.node(node_id).kill()

    def stop_node(self, node_id: int, timeout: float = 30.0) -> None:
        """Stop node ``node_id`` cleanly (SIGTERM: it hands its leaderships over)."""
        broker = self.node(node_id)
        broker.stop(timeout=timeout)

    def restart(self, node_id: int, *, ready_timeout: float = 90) -> RunningBroker:
        """Start node ``node_id`` again on the same ports with the same data."""
        old = self.node(node_id)
        if old.alive():
            old.stop()
        broker = spawn(BrokerKind.KAFKA, self._commands[node_id], port=self._ports[node_id],
                       log_path=self._log_paths[node_id])
        self._brokers[node_id] = broker
        wait_ready(broker, ready_timeout)
        return broker

    async def adescribe(self, topic: str, *, timeout: float = 30) -> dict[int, PartitionState]:
        """{partition: (leader, replicas, isr)} of ``topic``, from the cluster's metadata.

        Asked again (until ``timeout``) while the client cannot reach the node it
        picked: right after a start or a kill the metadata still names nodes that
        do not answer."""
        last: Exception | None = None
        with anyio.move_on_after(timeout):
            while True:
                try:
                    return await self._describe_once(topic, timeout)
                except (KafkaError, OSError) as exc:
                    last = exc
                await anyio.sleep(0.2)
        raise BrokerError(f"cannot describe {topic!r} on {self.bootstrap} within "
                          f"{timeout:.0f} s: {last}")

    async def _describe_once(self, topic: str, timeout: float) -> dict[int, PartitionState]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._live_bootstrap(),
                                    request_timeout_ms=int(min(timeout, 10) * 1000))
        try:
            await admin.start()
            described = await admin.describe_topics([topic])
        finally:
            await admin.close()
        for entry in described:
            if entry.get("error_code", 0) != 0:
                raise BrokerError(f"cannot describe {topic!r}: error {entry['error_code']}")
            return {p["partition"]: PartitionState(p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
                    for p in entry["partitions"]}
        raise BrokerError(f"the cluster does not know topic {topic!r}")

    def describe(self, topic: str, *, timeout: float = 30) -> dict[int, PartitionState]:
        """:meth:`adescribe` for code outside an event loop (a test's fault thread)."""
        return anyio.run(lambda: self.adescribe(topic, timeout=timeout))

    def leader_of(self, topic: str, partition: int, *, timeout: float = 30) -> int:
        """The node id leading ``topic``'s ``partition`` (-1 while it has none)."""
        states = self.describe(topic, timeout=timeout)
        if partition not in states:
            raise BrokerError(f"topic {topic!r} has no partition {partition}")
        return states[partition].leader

    def _live_bootstrap(self) -> str:
        # a dead node in the bootstrap list costs a connection timeout first
        live = [i for i in self.node_ids if self._brokers[i].alive()] or self.node_ids
        return ",".join(f"127.0.0.1:{self._ports[i]}" for i in live)

    def stop(self) -> None:
        """Stop every node (in parallel) and remove the temporary data; idempotent."""
        with ThreadPoolExecutor(max_workers=len(self._brokers) or 1) as pool:
            list(pool.map(lambda b: b.stop(), self._brokers.values()))
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)
        self._cleanup.clear()

    def __enter__(self) -> KafkaCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaCluster({self.bootstrap}, alive={self.alive()})"


def start_kafka_cluster(nodes: int = DEFAULT_NODES, *, data_dir: Path | None = None,
                        log_dir: Path | None = None, heap: str = DEFAULT_HEAP,
                        ready_timeout: float = 120,
                        extra_config: dict[str, str] | None = None) -> KafkaCluster:
    """Start ``nodes`` Apache Kafka nodes on 127.0.0.1; returns once every one answers.

    ``data_dir`` (kept after stop) holds each node's config and log dir under
    ``node-<id>/``; without it a temporary dir is made and removed on stop.
    On failure nothing is left running.
    """
    if nodes < 1:
        raise BrokerError(f"a cluster needs at least one node, not {nodes}")
    libs = ensure_kafka_jars()
    cleanup: list[Path] = []
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="ppipe-kafka-cluster-"))
        cleanup.append(data_dir)
    ids = list(range(1, nodes + 1))
    ports = _distinct_ports(2 * nodes)
    broker_port = dict(zip(ids, ports[:nodes], strict=True))
    controller_port = dict(zip(ids, ports[nodes:], strict=True))
    voters = ",".join(f"{i}@127.0.0.1:{controller_port[i]}" for i in ids)
    settings = {**cluster_config(nodes), **(extra_config or {})}
    jvm = kafka_jvm(libs, heap=heap)
    cluster_id = new_cluster_id()
    commands: dict[int, list[str]] = {}
    log_paths: dict[int, Path] = {}
    configs: dict[int, Path] = {}
    for i in ids:
        node_dir = data_dir / f"node-{i}"
        node_dir.mkdir(parents=True, exist_ok=True)
        configs[i] = node_dir / "server.properties"
        configs[i].write_text(server_properties(
            node_id=i, port=broker_port[i], controller_port=controller_port[i],
            log_dir=node_dir / "kraft-logs", voters=voters, extra=settings))
        commands[i] = [*jvm, "kafka.Kafka", str(configs[i])]
        log_paths[i] = (log_dir or node_dir) / f"broker-kafka-{i}.log"
    brokers: dict[int, RunningBroker] = {}
    cluster = KafkaCluster(commands=commands, ports=broker_port, log_paths=log_paths,
                           brokers=brokers, cluster_id=cluster_id, data_dir=data_dir,
                           cleanup=cleanup)
    try:
        with ThreadPoolExecutor(max_workers=nodes) as pool:
            list(pool.map(lambda i: format_storage(jvm, configs[i], cluster_id), ids))
        for i in ids:
            brokers[i] = spawn(BrokerKind.KAFKA, commands[i], port=broker_port[i],
                               log_path=log_paths[i])
        with ThreadPoolExecutor(max_workers=nodes) as pool:
            list(pool.map(lambda i: wait_ready(brokers[i], ready_timeout), ids))
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
