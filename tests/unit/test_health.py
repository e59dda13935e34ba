"""The broker watch: node addresses, probes against a real listener and a closed port,
an outage needing two refused probes in a row, and a node that accepts but never
answers being a stall, not an outage (no broker needed)."""

from __future__ import annotations

import socket
import time

import anyio
import pytest

from ppipe_stream.watch.broker_health import BrokerWatch, probe, split_node
from ppipe_stream.watch.incidents import IncidentKind, IncidentLog


def test_split_node_takes_names_v4_and_bracketed_v6():
    assert split_node("kafka-1.example:9093") == ("kafka-1.example", 9093)
    assert split_node("127.0.0.1:9092") == ("127.0.0.1", 9092)
    assert split_node("[::1]:9092") == ("::1", 9092)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.asyncio
async def test_a_closed_port_is_down_after_two_probes_and_a_listener_counts_as_up_with_tls():
    port = _closed_port()
    assert await probe("127.0.0.1", port) is False
    incidents = IncidentLog(start_ns=0)
    watch = BrokerWatch(f"127.0.0.1:{port}", incidents)
    await watch.check()
    assert incidents.items == []  # one failed probe is not an outage
    await watch.check()
    assert [i.kind for i in incidents.items] == [IncidentKind.BROKER_DOWN]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:  # a TLS listener is probed by connecting
        assert await probe("127.0.0.1", listener.getsockname()[1], tls=True) is True
    finally:
        listener.close()
    await anyio.sleep(0)


@pytest.mark.asyncio
async def test_a_listener_that_never_answers_is_a_stall_named_for_the_broker_then_down_when_gone():
    """A node that accepts connections but answers nothing (a frozen broker) is stalled
    at the first unanswered probe, not down; the hang rule is told; when the port then
    closes it is down, the stall ended; and the response time counts the unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    incidents = IncidentLog(start_ns=0)
    watch = BrokerWatch(f"127.0.0.1:{port}", incidents, stall_after=0.3)
    try:
        await watch.check()
        assert [i.kind for i in incidents.items] == [IncidentKind.BROKER_STALL]
        assert incidents.items[0].target == f"broker:127.0.0.1:{port}"
        assert "no answer" in incidents.items[0].detail
        assert watch.in_trouble(time.time_ns())
        assert incidents.outages() == [] and len(incidents.stalls()) == 1
        await watch.check()
        assert len(incidents.items) == 1  # still the same stall
    finally:
        listener.close()
    await watch.check()
    await watch.check()
    kinds = [i.kind for i in incidents.items]
    assert kinds == [IncidentKind.BROKER_STALL, IncidentKind.BROKER_STALL_END, IncidentKind.BROKER_DOWN]
    stats = watch.statistics()
    assert stats.probes == 4 and stats.unanswered == 4 and stats.p99_ms is None


@pytest.mark.asyncio
async def test_a_node_down_stays_down_while_it_comes_back_slowly():
    """Refused twice is down; a later unanswered probe (a JVM starting) is not a stall too."""
    port = _closed_port()
    incidents = IncidentLog(start_ns=0)
    watch = BrokerWatch(f"127.0.0.1:{port}", incidents, stall_after=0.3)
    await watch.check()
    await watch.check()
    listener = socket.socket()
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    try:
        await watch.check()
    finally:
        listener.close()
    assert [i.kind for i in incidents.items] == [IncidentKind.BROKER_DOWN]
    assert watch.in_trouble(time.time_ns())
