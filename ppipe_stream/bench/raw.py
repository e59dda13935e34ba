"""The raw baseline of ``ppipe bench``: a plain aiokafka producer to a plain consumer.

Owns one measurement: at a given rate, open loop, values stamped with their
intended send time, read back by an assigned consumer with the harness's own
client settings (producer linger, fetch wait). What it reports is what Kafka
and the client alone cost; the harness's figures are read beside it.

Each measurement reads only what it wrote: every value carries a tag of its own
(``<tag>:<intended send ns>``) and records of any other tag on the topic (an
earlier measurement's, another bench's) are skipped and counted, never timed.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import numpy as np
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ..brokers import create_topics
from ..security import PLAINTEXT, ClientSecurity

__all__ = ["paced_round_trip_ms", "raw_latency_ms"]

log = structlog.get_logger(__name__)


async def paced_round_trip_ms(bootstrap: str, *, send_topic: str, read_topic: str, rate: float,
                              seconds: float, partitions: int = 4, warmup_s: float = 1.0,
                              linger_ms: int = 2, fetch_max_wait_ms: int = 5,
                              security: ClientSecurity = PLAINTEXT, pad: int = 0) -> np.ndarray:
    """Send ``rate * seconds`` values to ``send_topic`` open loop, each its intended send
    time, and read them back from ``read_topic`` (the same topic, or what an echo in
    between writes, values unchanged); latencies in ms, warm-up left out. Records
    this call did not send (another tag) are skipped, never timed; ``pad`` bytes make
    each value that much longer (the size axis of ``ppipe bench``)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                fetch_max_wait_ms=fetch_max_wait_ms, **security.kafka_kwargs())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms, acks=1,
                                **security.kafka_kwargs())
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([TopicPartition(read_topic, p) for p in range(partitions)])
        count = max(int(rate * seconds), 1)
        latencies: list[int] = []
        tag = secrets.token_hex(8).encode()
        padding = b":" + b"x" * pad if pad else b""
        foreign = 0
        start_wall, start_mono = time.time_ns(), time.perf_counter_ns()

        async def produce() -> None:
            for i in range(count):
                offset = int(i * 1e9 / rate)
                wait = (offset - (time.perf_counter_ns() - start_mono)) / 1e9
                if wait > 0:
                    await asyncio.sleep(wait)
                await producer.send(send_topic, b"%s:%d%s" % (tag, start_wall + offset, padding),
                                    partition=i % partitions)

        async def read() -> None:
            nonlocal foreign
            while len(latencies) < count:
                batches = await consumer.getmany(timeout_ms=100)
                now = time.time_ns()
                for records in batches.values():
                    for record in records:
                        own, _, stamp = (record.value or b"").partition(b":")
                        if own != tag:
                            foreign += 1
                            continue
                        latencies.append(now - int(stamp.partition(b":")[0]))

        await asyncio.wait_for(asyncio.gather(produce(), read()), timeout=seconds + 60)
    finally:
        await producer.stop()
        await consumer.stop()
    if foreign:
        log.warning("bench.raw.foreign_records", topic=read_topic, skipped=foreign)
    skip = int(rate * warmup_s)
    return np.asarray(latencies[skip:] or latencies, dtype=np.float64) / 1e6


async def raw_latency_ms(bootstrap: str, *, topic: str, rate: float, seconds: float,
                         partitions: int = 4, warmup_s: float = 1.0, linger_ms: int = 2,
                         fetch_max_wait_ms: int = 5, security: ClientSecurity = PLAINTEXT,
                         pad: int = 0, replication_factor: int = 1) -> np.ndarray:
    """One hop: a plain producer to a plain consumer on ``topic`` (created here, with
    ``replication_factor`` replicas), values ``pad`` bytes longer."""
    await create_topics(bootstrap, [(topic, partitions)], security=security,
                        replication_factor=replication_factor)
    return await paced_round_trip_ms(bootstrap, send_topic=topic, read_topic=topic, rate=rate,
                                     seconds=seconds, partitions=partitions, warmup_s=warmup_s,
                                     linger_ms=linger_ms, fetch_max_wait_ms=fetch_max_wait_ms,
                                     security=security, pad=pad)
