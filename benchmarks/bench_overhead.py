"""Harness overhead: the echo pipeline through ppipe, beside the same path in raw aiokafka.

Both sides have the same topology and client settings on the same Apache
Kafka broker (started here, KRaft, loopback): a paced producer -> an echo
process (consumer in a group, producer) -> a consumer that stamps the read.
Latency runs from the intended send time to that read (open loop) in both.

- raw: plain aiokafka in this process (producer, reader) and a plain aiokafka
  echo in a child process;
- ppipe: ``run_scenario`` with ``ppipe_stream.examples.echo`` (the SDK) as a
  process pipeline: dispatcher, scorer, run folder and all.

Target (issue "dispatcher at full range"): at 1,000 events/s the harness adds
at most 1 ms at p50 and 5 ms at p99. The last line is one JSON object.

    .venv/bin/python benchmarks/bench_overhead.py [--rate 1000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ppipe_stream.bench.raw import paced_round_trip_ms
from ppipe_stream.brokers import create_topics, start_kafka
from ppipe_stream.run.orchestration import run_scenario
from ppipe_stream.scenario import loads_scenario

PARTITIONS = 4
FETCH_WAIT_MS = 5
LINGER_MS = 1
WARMUP_S = 2.0
ROOT = Path(__file__).resolve().parents[1]


def _raw_echo(bootstrap: str, ready, topic_in: str, topic_out: str) -> None:
    async def serve() -> None:
        consumer = AIOKafkaConsumer(topic_in, bootstrap_servers=bootstrap, group_id=f"echo-{topic_in}",
                                    auto_offset_reset="earliest", fetch_max_wait_ms=FETCH_WAIT_MS,
                                    session_timeout_ms=6000, heartbeat_interval_ms=500)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=LINGER_MS, acks=1)
        await consumer.start()
        await producer.start()
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            futures = [await producer.send(topic_out, r.value, partition=r.partition)
                       for records in batches.values() for r in records]
            if futures:
                await asyncio.gather(*futures)

    asyncio.run(serve())


async def raw(bootstrap: str, rate: float, seconds: float, topic_suffix: str = "") -> np.ndarray:
    topic_in, topic_out = f"raw.in{topic_suffix}", f"raw.out{topic_suffix}"
    await create_topics(bootstrap, [(topic_in, PARTITIONS), (topic_out, PARTITIONS)])
    ready = multiprocessing.get_context("spawn").Event()
    echo = multiprocessing.get_context("spawn").Process(target=_raw_echo,
                                                        args=(bootstrap, ready, topic_in, topic_out))
    echo.start()
    try:
        ready.wait(60)
        return await paced_round_trip_ms(
            bootstrap, send_topic=topic_in, read_topic=topic_out, rate=rate, seconds=seconds,
            partitions=PARTITIONS, warmup_s=WARMUP_S, linger_ms=LINGER_MS,
            fetch_max_wait_ms=FETCH_WAIT_MS)
    finally:
        echo.terminate()
        echo.join()


async def harness(bootstrap: str, rate: float, seconds: float) -> dict:
    text = f"""
name = "overhead"
[dataset]
source = "csv"
path = "{ROOT / 'scenarios' / 'data' / 'iris.csv'}"
target = "variety"
loop = true
[load]
profile = "constant"
rate = {rate}
duration = "{seconds}s"
warmup = "{WARMUP_S}s"
drain = "3s"
[labels]
delay = "never"
[[pipelines]]
name = "echo"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.echo"]
[kafka]
bootstrap = "{bootstrap}"
partitions = {PARTITIONS}
linger = "{LINGER_MS}ms"
"""
    loaded = loads_scenario(text, base_dir=ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        outcome = await run_scenario(loaded, out=Path(tmp) / "run")
    return outcome.summary


async def main_async(rate: float, seconds: float) -> dict:
    broker = start_kafka()
    try:
        await raw(broker.bootstrap, rate, 8, topic_suffix="warmup")  # a cold JVM broker is slow
        raw_ms = await raw(broker.bootstrap, rate, seconds)
        summary = await harness(broker.bootstrap, rate, seconds)
    finally:
        broker.stop()
    ppipe = summary["pipelines"]["echo"]["latency_ms"]
    raw_p50, raw_p99 = float(np.percentile(raw_ms, 50)), float(np.percentile(raw_ms, 99))
    return {"broker": "apache-kafka-4.1.1", "rate": rate, "seconds": seconds,
            "raw_p50_ms": round(raw_p50, 3), "raw_p99_ms": round(raw_p99, 3),
            "ppipe_p50_ms": ppipe["p50"], "ppipe_p99_ms": ppipe["p99"],
            "added_p50_ms": round(ppipe["p50"] - raw_p50, 3),
            "added_p99_ms": round(ppipe["p99"] - raw_p99, 3),
            "ppipe_missing": summary["pipelines"]["echo"]["status"]["missing"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    figures = asyncio.run(main_async(args.rate, args.seconds))
    print(f"{'echo at %g events/s' % args.rate:34}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'raw aiokafka (baseline)':34}{figures['raw_p50_ms']:>10.3f}{figures['raw_p99_ms']:>10.3f}")
    print(f"{'ppipe (dispatcher, SDK, scorer)':34}{figures['ppipe_p50_ms']:>10.3f}{figures['ppipe_p99_ms']:>10.3f}")
    print(f"{'added by the harness':34}{figures['added_p50_ms']:>10.3f}{figures['added_p99_ms']:>10.3f}"
          "   (targets: <= 1 ms, <= 5 ms)")
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
