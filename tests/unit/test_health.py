"""The broker watch: node addresses, probes against a real listener and a closed port,
and an outage needing two failed probes in a row (no broker needed)."""

from __future__ import annotations

import socket

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
