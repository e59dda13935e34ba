"""Reads every pipeline's output topic and hands the raw answers to the scorer.

Owns the consumer of ``<prefix>.output.<pipeline>`` topics: assigned to all
their partitions (no consumer group, no rebalance wait), from the beginning,
stamping each fetched batch with the wall-clock ns at which it was read (the
end of the open-loop latency). Before the scorer is attached it only watches
for the readiness ping's replies. It decodes nothing else and never raises on
bad data: that is the scorer's to count.
"""

from __future__ import annotations

import time

import anyio
import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from anyio.abc import TaskStatus

from .. import protocol
from ..security import PLAINTEXT, ClientSecurity

__all__ = ["OutputReader"]

log = structlog.get_logger(__name__)

READY_COMMAND_ID = "ppipe-ready"


class OutputReader:
    """Consumes the output topics; start with ``tg.start(reader.run)``."""

    def __init__(self, bootstrap: str, topics: dict[str, str], *, partitions: int,
                 fetch_max_wait_ms: int = 5, security: ClientSecurity | None = None) -> None:
        self._bootstrap = bootstrap
        self._security = security or PLAINTEXT
        self._pipeline_of = dict(topics)  # topic -> pipeline name
        self._partitions = partitions  # every output topic has this many (the harness made them)
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._scorer = None
        self.ready: set[str] = set()
        self.messages = 0

    def attach(self, scorer) -> None:
        """From now on every fetched batch goes to ``scorer.on_output``."""
        self._scorer = scorer

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, auto_offset_reset="earliest",
            enable_auto_commit=False, fetch_max_wait_ms=self._fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024,
            **self._security.kafka_kwargs())
        await consumer.start()
        self._consumer = consumer
        partitions = [TopicPartition(topic, p) for topic in self._pipeline_of
                      for p in range(self._partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        task_status.started()
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            read_ns = time.time_ns()
            for tp, records in batches.items():
                pipeline = self._pipeline_of[tp.topic]
                values = [r.value for r in records]
                self.messages += len(values)
                if self._scorer is not None:
                    self._scorer.on_output(pipeline, values, read_ns)
                else:
                    self._watch_ready(pipeline, values)

    def _watch_ready(self, pipeline: str, values: list[bytes | None]) -> None:
        for value in values:
            try:
                message = protocol.output_decoder.decode(value or b"")
            except msgspec.DecodeError:
                continue
            if isinstance(message, protocol.Reply) and message.command_id == READY_COMMAND_ID:
                self.ready.add(pipeline)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
