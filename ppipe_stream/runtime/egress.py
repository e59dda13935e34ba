"""Where a sandbox on an existing cluster may connect: the cluster's brokers alone.

Owns finding the broker addresses of a cluster (the bootstrap list, plus every
broker its metadata advertises, each resolved to IPv4 addresses), the name map
the containers get in place of DNS (which the sandbox does not let out), and
:class:`EgressWatch`, which re-reads the metadata while the run goes and opens
the sandbox to a broker that appears. The firewall rules themselves are
:class:`~ppipe_stream.runtime.sandbox.SandboxNetwork`'s.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import NamedTuple, Protocol

import anyio
import structlog
from aiokafka.errors import KafkaError

from ..security import PLAINTEXT, ClientSecurity
from ..watch.broker_health import split_node

__all__ = ["BrokerAddress", "Egress", "EgressWatch", "advertised", "on_loopback", "resolve"]

log = structlog.get_logger(__name__)

RECHECK_S = 5.0


class BrokerAddress(NamedTuple):
    """One broker listener a container may open a TCP connection to."""

    ip: str
    port: int


class Egress(NamedTuple):
    """What the containers may reach, and the names they reach it by."""

    addresses: frozenset[BrokerAddress]
    hosts: dict[str, str]  # a broker's host name -> the IPv4 address it resolved to


class Opens(Protocol):
    """What opens the sandbox to more addresses (a ``SandboxNetwork``)."""

    def allow(self, addresses: Iterable[BrokerAddress]) -> list[tuple[str, int]]:
        """Open to ``addresses``; returns those it had not opened before."""
        ...


def resolve(hostports: Iterable[str]) -> Egress:
    """Every ``host:port`` as IPv4 addresses (a name that does not resolve is left out)."""
    addresses: set[BrokerAddress] = set()
    hosts: dict[str, str] = {}
    for hostport in hostports:
        host, port = split_node(hostport.strip())
        try:
            ipaddress.IPv4Address(host)
            addresses.add(BrokerAddress(host, port))
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:
            log.warning("sandbox.unresolved", host=host, error=str(exc))
            continue
        for info in infos:
            ip = str(info[4][0])
            addresses.add(BrokerAddress(ip, port))
            hosts.setdefault(host, ip)
    return Egress(frozenset(addresses), hosts)


def on_loopback(addresses: Iterable[BrokerAddress]) -> list[BrokerAddress]:
    """The addresses a container cannot reach: on loopback, which in a container
    is the container's own."""
    return sorted(a for a in addresses if ipaddress.IPv4Address(a.ip).is_loopback)


async def advertised(bootstrap: str, security: ClientSecurity | None = None,
                     timeout: float = 10.0) -> list[str]:
    """The ``host:port`` of every broker the cluster's metadata advertises."""
    from aiokafka.admin import AIOKafkaAdminClient

    security = security or PLAINTEXT
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000),
                                **security.kafka_kwargs())
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return [f"{broker['host']}:{broker['port']}" for broker in cluster["brokers"]]


async def cluster_egress(bootstrap: str, security: ClientSecurity | None = None) -> Egress:
    """The bootstrap list and the advertised brokers, resolved."""
    found = await advertised(bootstrap, security)
    return await anyio.to_thread.run_sync(resolve, [*bootstrap.split(","), *found])


class EgressWatch:
    """Re-reads the cluster's metadata every ``interval`` s; a broker that appears
    (a new node, a moved listener) is allowed at once (the sandbox knows what it
    has opened already). An address is never taken away while the run goes: a
    connection a pipeline holds stays valid."""

    def __init__(self, bootstrap: str, sandbox: Opens, *, security: ClientSecurity | None = None,
                 interval: float = RECHECK_S) -> None:
        self._bootstrap = bootstrap
        self._sandbox = sandbox
        self._security = security
        self._interval = interval

    async def check(self) -> set[BrokerAddress]:
        """One re-read; returns the addresses it opened."""
        try:
            egress = await cluster_egress(self._bootstrap, self._security)
        except (KafkaError, OSError) as exc:  # the broker watch reports outages; this follows metadata
            log.info("sandbox.metadata_unread", error=repr(exc))
            return set()
        new = {BrokerAddress(*address) for address in
               await anyio.to_thread.run_sync(self._sandbox.allow, sorted(egress.addresses))}
        if new:
            log.warning("sandbox.egress_opened", addresses=[f"{a.ip}:{a.port}" for a in sorted(new)],
                        hint="the cluster's metadata advertises a broker it did not at the start")
        return new

    async def run(self) -> None:
        while True:
            await anyio.sleep(self._interval)
            await self.check()
