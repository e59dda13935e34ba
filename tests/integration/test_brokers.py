"""The brokers the project starts: topics, a produce/consume round trip, clean stops,
and ``ppipe broker start`` as a user runs it."""

from __future__ import annotations

import base64
import os
import signal
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ppipe_stream.brokers import create_topics, describe_partitions, start_tansu
from ppipe_stream.brokers.kafka import (ensure_kafka_jars, format_storage, kafka_jvm, new_cluster_id,
                                        server_properties)
from ppipe_stream.errors import BrokerError
from tests.helpers import start_ppipe

pytestmark = pytest.mark.kafka


@pytest.mark.asyncio
async def test_topics_and_round_trip(broker, topic_prefix):
    topic = f"{topic_prefix}.data"
    await create_topics(broker.bootstrap, [(topic, 3)])
    await create_topics(broker.bootstrap, [(topic, 3)])  # the same again is fine
    leaders = await describe_partitions(broker.bootstrap, [topic])
    assert sorted(leaders[topic]) == [0, 1, 2] and all(v >= 0 for v in leaders[topic].values())
    with pytest.raises(BrokerError, match="partitions"):
        await create_topics(broker.bootstrap, [(topic, 5)])
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=2)
    await producer.start()
    for i in range(300):
        await producer.send(topic, str(i).encode(), partition=i % 3)
    await producer.flush()
    await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(3)])
    seen: set[int] = set()
    deadline = time.monotonic() + 20
    while len(seen) < 300 and time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            seen.update(int(r.value) for r in records)
    await consumer.stop()
    assert seen == set(range(300))


def test_stop_leaves_no_process():
    broker = start_tansu()
    pid = broker.pid
    broker.stop()
    broker.stop()  # idempotent
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("kind", ["tansu", "kafka"])
def test_ppipe_broker_start_cli(kind):
    proc = start_ppipe("broker", "start", "--kind", kind)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("bootstrap=127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        import asyncio

        asyncio.run(create_topics(line.split("=", 1)[1], [("cli-check", 1)]))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 130  # Ctrl+C: interrupted


def _formatted_id(folder: Path, cluster_id: str) -> str:
    """Format a fresh log dir under ``folder`` for ``cluster_id`` with Kafka's own
    storage tool; the cluster id its meta.properties records."""
    folder.mkdir()
    config = folder / "server.properties"
    config.write_text(server_properties(node_id=1, port=19092, controller_port=19093,
                                        log_dir=folder / "kraft-logs"))
    format_storage(kafka_jvm(ensure_kafka_jars()), config, cluster_id)
    meta = dict(line.split("=", 1) for line in (folder / "kraft-logs" / "meta.properties")
                .read_text().splitlines() if "=" in line and not line.startswith("#"))
    return meta["cluster.id"]


def test_log_dirs_format_for_ids_that_once_started_with_a_dash(tmp_path):
    failed_in_ci = "-CkvEMJVQQK_-L9OWcN5vA"  # "formatting the Kafka log dir failed"
    # the draw that made that id is drawn again; the next one is formatted
    draws = iter([base64.urlsafe_b64decode(failed_in_ci + "=="), bytes(range(16))])
    fresh = new_cluster_id(lambda: next(draws))
    assert not fresh.startswith("-")
    assert _formatted_id(tmp_path / "fresh", fresh) == fresh
    # and an id given by the caller that starts with "-" is not read as an option
    assert _formatted_id(tmp_path / "given", failed_in_ci) == failed_in_ci
