"""A deliberately faulty pipeline, written against the raw protocol (no SDK), whose
misbehaviour follows fixed rules the tests know. It answers with the event's
``answer`` feature (so the truth is known) and, by ``id % 10``:

== ======================================================================
0  a correct answer
1  a correct answer, then the same answer again (a duplicate)
2  a correct answer after ``PPIPE_FAULTY_LATE_MS`` (default 1500 ms): late
3  bytes that are not JSON, and nothing else (a syntax error; the event is missing)
4  a correct answer, and an answer for an id never sent (id + 1e9: unknown)
5  a wrong answer
6  JSON of the wrong schema (a prediction without id), then a correct answer
7-9 a correct answer
== ======================================================================

It replies to ``ping`` once its input partitions are assigned, like the SDK.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ppipe_stream.security import ClientSecurity

UNKNOWN_OFFSET = 1_000_000_000


def _answers(event: dict) -> list[tuple[float, bytes]]:
    """(delay in seconds, raw value) for one event, by the rules above."""
    event_id = event["id"]
    truth = event["features"].get("answer", "?")  # datasets without the column: answers "?"
    late_s = int(os.environ.get("PPIPE_FAULTY_LATE_MS", "1500")) / 1000

    def answer(i: int, value: object) -> bytes:
        return json.dumps({"type": "prediction", "id": i, "prediction": value}).encode()

    rule = event_id % 10
    if rule == 1:
        return [(0, answer(event_id, truth)), (0, answer(event_id, truth))]
    if rule == 2:
        return [(late_s, answer(event_id, truth))]
    if rule == 3:
        return [(0, b"{this is not json")]
    if rule == 4:
        return [(0, answer(event_id, truth)), (0, answer(event_id + UNKNOWN_OFFSET, truth))]
    if rule == 5:
        return [(0, answer(event_id, f"not-{truth}"))]
    if rule == 6:
        return [(0, json.dumps({"type": "prediction", "prediction": truth}).encode()),
                (0, answer(event_id, truth))]
    return [(0, answer(event_id, truth))]


async def serve() -> None:
    env = os.environ
    bootstrap = env["PPIPE_BOOTSTRAP"]
    out_topic = env["PPIPE_OUTPUT_TOPIC"]
    secure = ClientSecurity.from_env(env).kafka_kwargs  # PPIPE_SECURITY_*: a cluster's login, if any
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, **secure())
    inputs = AIOKafkaConsumer(env["PPIPE_INPUT_TOPIC"], bootstrap_servers=bootstrap,
                              group_id=env["PPIPE_GROUP_ID"], auto_offset_reset="earliest",
                              fetch_max_wait_ms=5, session_timeout_ms=6000,
                              heartbeat_interval_ms=500, **secure())
    control = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                               fetch_max_wait_ms=20, **secure())
    await producer.start()
    await inputs.start()
    await control.start()
    control.assign([TopicPartition(env["PPIPE_CONTROL_TOPIC"], 0)])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    assigned = asyncio.Event()
    later: set[asyncio.Task] = set()

    async def send_later(delay: float, value: bytes) -> None:
        await asyncio.sleep(delay)
        await producer.send(out_topic, value)

    async def consume_inputs() -> None:
        while True:
            batches = await inputs.getmany(timeout_ms=100)
            if inputs.assignment():
                assigned.set()
            for records in batches.values():
                for record in records:
                    message = json.loads(record.value)
                    if message.get("type") != "event":
                        continue
                    for delay, value in _answers(message):
                        if delay:
                            task = asyncio.create_task(send_later(delay, value))
                            later.add(task)
                            task.add_done_callback(later.discard)
                        else:
                            await producer.send(out_topic, value)

    async def consume_control() -> None:
        while True:
            batches = await control.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    command = json.loads(record.value)
                    if command.get("command") == "ping":
                        await assigned.wait()
                        reply = {"type": "reply", "command_id": command["command_id"],
                                 "status": "ok", "result": "pong"}
                        await producer.send_and_wait(out_topic, json.dumps(reply).encode())

    tasks = [asyncio.create_task(consume_inputs()), asyncio.create_task(consume_control())]
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in [*tasks, *later]:
        task.cancel()
    await asyncio.gather(*tasks, *later, return_exceptions=True)
    await control.stop()
    await inputs.stop()
    await producer.stop()


if __name__ == "__main__":
    asyncio.run(serve())
