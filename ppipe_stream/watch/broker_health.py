"""The broker health watch: is each bootstrap node answering the Kafka API right now?

Owns probing, a few times a second, every ``host:port`` of the run's bootstrap
with the smallest Kafka request (ApiVersions; a bare TCP connect on TLS
listeners, where a plaintext request cannot be read) and turning the answers
into availability changes in the run's :class:`~ppipe_stream.watch.incidents.IncidentLog`
(an outage is two failed probes in a row: one slow answer on a loaded machine
is not an outage). It never touches topics, producers or consumers: the
clients ride out an outage on their own; this only says when it happened.
"""

from __future__ import annotations

import time

import anyio
from anyio.abc import TaskStatus

from ..brokers.process import api_versions_request
from .incidents import IncidentLog

__all__ = ["BrokerWatch", "probe", "split_node"]

INTERVAL_S = 0.25
TIMEOUT_S = 1.0
FAILURES_FOR_DOWN = 2


def split_node(node: str) -> tuple[str, int]:
    """``host:port`` (``[v6-address]:port`` too) as (host, port)."""
    host, _, port = node.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


async def probe(host: str, port: int, *, tls: bool = False, timeout: float = TIMEOUT_S) -> bool:
    """True when ``host:port`` answers an ApiVersions request (accepts a TCP
    connection, with ``tls``) within ``timeout``."""
    try:
        with anyio.fail_after(timeout):
            async with await anyio.connect_tcp(host, port) as stream:
                if tls:
                    return True
                await stream.send(api_versions_request())
                size = await stream.receive(4)
                return len(size) >= 4 and int.from_bytes(size[:4], "big") > 0
    except (OSError, TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError):
        return False


class BrokerWatch:
    """Probes every node of ``bootstrap``; start with ``tg.start(watch.run)``."""

    def __init__(self, bootstrap: str, incidents: IncidentLog, *, tls: bool = False,
                 interval: float = INTERVAL_S) -> None:
        self.nodes = [node.strip() for node in bootstrap.split(",") if node.strip()]
        self._incidents = incidents
        self._tls = tls
        self._interval = interval
        self._failures = dict.fromkeys(self.nodes, 0)
        self._last_up_ns: dict[str, int] = {}
        self.probes = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.check()
            await anyio.sleep(self._interval)

    async def check(self) -> None:
        """Probe every node once, concurrently, and record what changed."""
        results: dict[str, bool] = {}

        async def one(node: str) -> None:
            host, port = split_node(node)
            results[node] = await probe(host, port, tls=self._tls)

        async with anyio.create_task_group() as tg:
            for node in self.nodes:
                tg.start_soon(one, node)
        self.probes += 1
        now = time.time_ns()
        for node, up in results.items():
            if up:
                self._failures[node] = 0
                self._incidents.broker_state(node, True, now_ns=now)
                self._last_up_ns[node] = now
                continue
            self._failures[node] += 1
            if self._failures[node] >= FAILURES_FOR_DOWN:
                self._incidents.broker_state(node, False, now_ns=now,
                                             down_since_ns=self._last_up_ns.get(node, now))
