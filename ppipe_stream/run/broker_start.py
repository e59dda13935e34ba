"""The run's broker: which kind the scenario asks for, starting it, and its topics.

Owns :func:`broker_choice`, the one place the scenario's broker is decided
(``bootstrap = "embedded"``: the run's own Apache Kafka with ``embedded =
"kafka"``, else tansu; any other bootstrap: an existing cluster). Docker
pipelines add a sandbox network: with tansu, the broker is a container on it;
with Apache Kafka, the run's own node listens on the network's gateway; with a
cluster, the network lets through to its brokers alone. :class:`RunBroker`,
what the run knows of its broker (kind, address, start-up time, the local process
for the resource sampler and a hard stop), and :func:`start_broker`, which
starts what the choice says, pushes its cleanup on the run's exit stack and
creates the run's topics. The brokers themselves are
:mod:`ppipe_stream.brokers`' and :mod:`ppipe_stream.runtime.sandbox`'s.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import msgspec
import structlog

from .. import protocol
from ..brokers import BrokerKind, create_topics, start_tansu
from ..brokers.process import RunningBroker
from ..errors import UsageError
from ..results.model import BrokerFigures, ResponseFigures
from ..scenario import DockerPipeline
from ..scenario.model import Scenario
from ..security import ClientSecurity
from ..watch.broker_health import ResponseStats
from ..watch.incidents import IncidentStatistics
from .cleanup import Shield
from .folder import RunFolder

if TYPE_CHECKING:
    from ..brokers.restartable import RestartableKafka
    from ..runtime.egress import Egress
    from ..runtime.sandbox import SandboxNetwork

__all__ = ["BrokerChoice", "RunBroker", "broker_choice", "sandboxed", "start_broker"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
Step = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]  # Progress.step


class BrokerChoice(enum.Enum):
    """Which broker a run starts (or reaches)."""

    SANDBOX = "sandbox"  # docker pipelines on tansu: tansu in a container on the run's sandbox network
    EMBEDDED_KAFKA = "embedded-kafka"  # the run's own restartable Apache Kafka
    EMBEDDED_TANSU = "embedded-tansu"  # the run's own tansu process
    CLUSTER = "cluster"  # an existing Kafka cluster at ``bootstrap``

    @property
    def kind(self) -> BrokerKind:
        """summary.json's ``broker.kind`` for this choice."""
        if self in (BrokerChoice.SANDBOX, BrokerChoice.EMBEDDED_TANSU):
            return BrokerKind.TANSU
        return BrokerKind.KAFKA


def sandboxed(scenario: Scenario) -> bool:
    """Whether the run has docker pipelines, and so a sandbox network."""
    return any(isinstance(p, DockerPipeline) for p in scenario.pipelines)


def broker_choice(scenario: Scenario) -> BrokerChoice:
    """The broker the run will use, from the scenario alone (named even if the run fails first)."""
    if scenario.kafka.bootstrap != "embedded":
        return BrokerChoice.CLUSTER
    if scenario.kafka.embedded == "kafka":
        return BrokerChoice.EMBEDDED_KAFKA
    return BrokerChoice.SANDBOX if sandboxed(scenario) else BrokerChoice.EMBEDDED_TANSU


class RunBroker:
    """What the run knows of its broker."""

    def __init__(self, scenario: Scenario) -> None:
        self.choice = broker_choice(scenario)
        self.kind = self.choice.kind
        self.bootstrap = scenario.kafka.bootstrap
        self.started = False  # reached and serving the run's topics
        self.startup_s: float | None = None
        self.tansu: RunningBroker | None = None  # the run's own tansu process
        self.kafka: RestartableKafka | None = None  # the run's own restartable Kafka
        self.docker: Any = None  # the Docker client of a sandboxed run
        self.sandbox: SandboxNetwork | None = None
        self.base_image = ""  # the pipelines' image of a sandboxed run
        self.egress: Egress | None = None  # a sandbox on a cluster: the brokers it may reach
        self.hosts: dict[str, str] = {}  # the brokers' names, for the containers' /etc/hosts

    def node(self) -> RunningBroker | None:
        """The run's own local broker process (none for a container or a cluster)."""
        if self.tansu is not None:
            return self.tansu
        return self.kafka.node if self.kafka is not None else None

    def pids(self) -> list[int]:
        node = self.node()
        return [node.pid] if node is not None and node.alive() else []

    def kill_now(self) -> None:
        """SIGKILL the run's own broker process (a second Ctrl+C)."""
        node = self.node()
        if node is not None:
            node.kill()

    def figures(self, incidents: IncidentStatistics, response: ResponseStats | None) -> BrokerFigures:
        """summary.json's ``broker`` (``response``: the health watch's, once it runs)."""
        return BrokerFigures(kind=str(self.kind), bootstrap=self.bootstrap, started=self.started,
                             startup_s=self.startup_s, outages=list(incidents.outages),
                             downtime_s=incidents.downtime_s, stalls=list(incidents.stalls),
                             stalled_s=incidents.stalled_s,
                             response_ms=msgspec.convert(response.summary() if response else {},
                                                         ResponseFigures))


async def start_broker(broker: RunBroker, stack: AsyncExitStack, *, scenario: Scenario,
                       folder: RunFolder, topics: protocol.Topics, security: ClientSecurity,
                       shield: Shield, step: Step) -> None:
    """Start the broker ``broker.choice`` names (its stop pushed on ``stack``), then
    create the run's topics on it."""

    async def timed(label: str, work: Callable[[], Awaitable[T]]) -> T:
        began = time.monotonic()
        result: T = await step(label, work)
        broker.startup_s = round(time.monotonic() - began, 3)
        return result

    choice = broker.choice
    if sandboxed(scenario):
        await _create_sandbox(broker, stack, scenario=scenario, folder=folder, shield=shield,
                              step=step, internal=choice is not BrokerChoice.CLUSTER)
    if choice is BrokerChoice.SANDBOX:
        sandbox = broker.sandbox
        assert sandbox is not None
        await timed("starting the sandbox's broker (tansu)",
                    lambda: anyio.to_thread.run_sync(sandbox.start_tansu))
        broker.bootstrap = sandbox.bootstrap
    elif choice is BrokerChoice.EMBEDDED_KAFKA:
        from ..brokers.kafka import kafka_jars_cached
        from ..brokers.restartable import RestartableKafka

        # with a sandbox, the node listens on its gateway: the one address on
        # the host its containers may reach (and the harness reaches too)
        host = broker.sandbox.gateway if broker.sandbox is not None else "127.0.0.1"
        kafka = broker.kafka = RestartableKafka(log_dir=folder.path, host=host)
        stack.push_async_callback(shield.in_thread, kafka.close, 30.0)
        first = "" if kafka_jars_cached() else "; fetching its jars first, once per machine"
        await timed(f"starting the embedded broker (Apache Kafka{first})",
                    lambda: anyio.to_thread.run_sync(kafka.start))
        if broker.sandbox is not None:
            assert kafka.node is not None
            await anyio.to_thread.run_sync(broker.sandbox.open_to_host, kafka.node.port)
        broker.bootstrap = kafka.bootstrap
    elif choice is BrokerChoice.EMBEDDED_TANSU:
        tansu = await timed("starting the embedded broker (tansu)", lambda: anyio.to_thread.run_sync(
            lambda: start_tansu(log_dir=folder.path)))
        broker.tansu = tansu
        stack.push_async_callback(shield.in_thread, tansu.stop)
        broker.bootstrap = tansu.bootstrap
    if choice is not BrokerChoice.CLUSTER:
        log.info("broker.started", kind=str(broker.kind), bootstrap=broker.bootstrap,
                 **({"network": broker.sandbox.name} if broker.sandbox is not None else {}))
    kafka_spec = scenario.kafka
    names = [(topics.input, kafka_spec.partitions), (topics.control, 1), (topics.scores, 1)]
    names += [(topics.output(p.name), kafka_spec.partitions) for p in scenario.pipelines]
    await create_topics(broker.bootstrap, names, replication_factor=kafka_spec.replication_factor,
                        security=security)
    if choice is BrokerChoice.CLUSTER and broker.sandbox is not None:
        await _open_to_cluster(broker, broker.sandbox, security)
    broker.started = True


async def _open_to_cluster(broker: RunBroker, sandbox: SandboxNetwork, security: ClientSecurity) -> None:
    """Let the containers reach the cluster's brokers (the bootstrap list and every
    broker the metadata advertises), and nothing else."""
    from ..runtime.egress import cluster_egress, on_loopback

    egress = await cluster_egress(broker.bootstrap, security)
    if not egress.addresses:
        raise UsageError(f"[kafka] bootstrap: none of {broker.bootstrap} resolves to an IPv4 "
                         "address a docker pipeline could be let through to")
    if looped := on_loopback(egress.addresses):
        where = ", ".join(f"{a.ip}:{a.port}" for a in looped)
        raise UsageError(f"[kafka] bootstrap: the cluster's brokers are on loopback ({where}, as "
                         "bootstrapped or advertised), which a docker pipeline cannot reach (its "
                         "loopback is its own): have them listen on and advertise an address of "
                         "this host the containers route to (the Docker bridge's, e.g. "
                         "172.17.0.1), or use bootstrap = \"embedded\"")
    await anyio.to_thread.run_sync(sandbox.allow, sorted(egress.addresses))
    broker.egress, broker.hosts = egress, egress.hosts
    log.info("sandbox.cluster", network=sandbox.name,
             brokers=sorted(f"{a.ip}:{a.port}" for a in egress.addresses))


async def _create_sandbox(broker: RunBroker, stack: AsyncExitStack, *, scenario: Scenario,
                          folder: RunFolder, shield: Shield, step: Step, internal: bool) -> None:
    """Docker pipelines live on a network whose only peer is the broker: the run's
    own (a container on an internal network, or the host's node on its gateway)
    or a cluster's brokers (a network whose forwarding lets only them through);
    the harness reaches it from the host."""
    from ..runtime.docker import docker_client
    from ..runtime.images import ensure_sdk_image
    from ..runtime.sandbox import SandboxNetwork

    client = await anyio.to_thread.run_sync(docker_client, [p.name for p in scenario.pipelines
                                                            if isinstance(p, DockerPipeline)])
    log.info("image.ensure", hint="the first run on a machine builds the base image (a minute or two)")
    broker.base_image = await step(
        "preparing the pipelines' image (the first run on a machine builds it: a minute or two)",
        lambda: anyio.to_thread.run_sync(ensure_sdk_image, client))
    sandbox = SandboxNetwork(client, folder.run_id)
    # even after a second Ctrl+C: a network or firewall rule left behind outlives the run
    stack.push_async_callback(shield.in_thread, sandbox.remove, 15.0, 15.0)
    await step("starting the sandbox network",
               lambda: anyio.to_thread.run_sync(lambda: sandbox.create_network(internal=internal)))
    broker.docker, broker.sandbox = client, sandbox
