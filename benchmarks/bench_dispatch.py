"""Dispatcher throughput and timing on Apache Kafka, beside a raw aiokafka producer.

Five measurements in one invocation, on one Apache Kafka broker this script
starts (KRaft, loopback), with the same producer settings for all:

1. baseline: a plain aiokafka producer sending 200-byte values with
   ``create_batch`` + ``send_batch`` as fast as it can (no schedule, no stamps);
2. dispatcher max rate: the real Dispatcher (schedule, rows, JSON encoding,
   intended/sent headers, the scorer's ledger) with an unreachable target rate;
3. dispatcher at a constant target (default 100,000 events/s): achieved rate
   and dispatch lag (sent - intended) percentiles;
4. and 5. the same two with ``--workers N`` (default 2) dispatch worker
   processes (``[load] workers``), reading the same rows from a JSON-lines file
   (workers are separate processes: they open the dataset themselves).

Targets (issue "dispatcher at full range"): (3) achieved >= 99% of target and
lag p99 <= 5 ms; (2) >= half of (1). The last line is one JSON object.
Workers pay off only with cores to spare: on 2 cores shared with the broker,
three busy processes (main + 2 workers) lose time to the OS scheduler.

    .venv/bin/python benchmarks/bench_dispatch.py [--rate 100000] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from ppipe_stream.brokers import create_topics, start_kafka
from ppipe_stream.datasets import DatasetStream, Row
from ppipe_stream.dispatch.workers import DispatchWorkers
from ppipe_stream.dispatch.dispatcher import Dispatcher
from ppipe_stream.scenario import loads_scenario
from ppipe_stream.scenario.model import ConstantLoad, Dataset
from ppipe_stream.dispatch.schedule import build_schedule
from ppipe_stream.scoring import Scorer, ScoringConfig
from ppipe_stream import protocol
from ppipe_stream.units import Duration

PARTITIONS = 4
PRODUCER = dict(acks=1, linger_ms=2, max_batch_size=262_144, max_request_size=4_194_304,
                enable_idempotence=False)


def dataset(rows: int = 1000) -> DatasetStream:
    """Rows whose event message is about 200 bytes of JSON."""
    data = [Row(i, {f"feature_{k}": round(i * 0.37 + k * 1.13, 4) for k in range(10)}, f"c{i % 3}")
            for i in range(rows)]
    spec = Dataset(source="csv", path="mem", loop=True)
    return DatasetStream("memory", lambda: iter(data), spec=spec, seed=0, n_rows=rows, in_memory=True)


def write_rows(path: Path, rows: int = 1000) -> Path:
    """The rows of :func:`dataset` as a JSON-lines file (label in ``label``)."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in itertools.islice(dataset(rows), rows):  # the stream loops
            fh.write(json.dumps({**row.features, "label": row.label}) + "\n")
    return path


def event_size() -> int:
    row = next(iter(dataset(1)))
    return len(protocol.encode(protocol.Event(id=123456, features=row.features, row=row.index)))


async def baseline(bootstrap: str, topic: str, count: int) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **PRODUCER)
    await producer.start()
    value = b"x" * event_size()
    futures = []
    start = time.perf_counter()
    sent = 0
    while sent < count:
        for partition in range(PARTITIONS):
            batch = producer.create_batch()
            while sent < count and batch.append(key=str(sent).encode(), value=value, timestamp=None) is not None:
                sent += 1
            batch.close()
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - start
    await producer.stop()
    return count / elapsed


async def dispatcher(bootstrap: str, topic: str, *, rate: float, seconds: float | None,
                     count: int | None) -> dict:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **PRODUCER)
    await producer.start()
    load = ConstantLoad(rate=rate, duration=Duration(seconds) if seconds else None, count=count,
                        drain=Duration("0s"))
    scorer = Scorer(["p"], ScoringConfig(deadline_ns=10**9, window_ns=10**9, drain_ns=10**9),
                    start_ns=time.time_ns())
    d = Dispatcher(producer=producer, topic=topic, partitions=PARTITIONS, dataset=dataset(),
                   schedule=build_schedule(load, seed=1), label_delay_s=float("inf"),
                   on_sent=scorer.record_sent, drain_s=0.0)
    start = time.perf_counter()
    stats = await d.run()
    elapsed = time.perf_counter() - start
    await producer.stop()
    summary = stats.summary()
    return {"events": stats.events_sent, "seconds": round(elapsed, 3),
            "throughput_eps": round(stats.events_sent / elapsed, 1),
            "achieved_rate": summary["achieved_rate"], "lag_ms": summary["lag_ms"]}


async def workers(bootstrap: str, topic: str, rows: Path, *, n: int, rate: float,
                  seconds: float | None, count: int | None) -> dict:
    """The run's own dispatch workers (same producer settings), merged into a scorer."""
    stop = f'duration = "{seconds}s"' if seconds else f"count = {count}"
    loaded = loads_scenario(f"""
name = "bench"
seed = 1
[dataset]
source = "jsonl"
path = "{rows}"
target = "label"
loop = true
[load]
profile = "constant"
rate = {rate}
{stop}
drain = "0s"
workers = {n}
[labels]
delay = "never"
[[pipelines]]
name = "p"
runtime = "external"
[kafka]
partitions = {PARTITIONS}
acks = "1"
linger = "2ms"
""", base_dir=rows.parent)
    scorer = Scorer(["p"], ScoringConfig(deadline_ns=10**9, window_ns=10**9, drain_ns=10**9),
                    start_ns=time.time_ns(), hold_unrecorded=True)
    pool = DispatchWorkers(loaded, bootstrap=bootstrap, topic=topic)
    try:
        await pool.start()
        pool.bind(on_sent=scorer.record_sent, target_rate=rate)
        start = time.perf_counter()
        stats = await pool.run()
        elapsed = time.perf_counter() - start
    finally:
        await pool.stop()
    summary = stats.summary()
    return {"events": stats.events_sent, "seconds": round(elapsed, 3),
            "throughput_eps": round(stats.events_sent / elapsed, 1),
            "achieved_rate": summary["achieved_rate"], "lag_ms": summary["lag_ms"]}


async def main_async(args) -> dict:
    broker = start_kafka()
    try:
        topics = [(f"bench.{name}", PARTITIONS)
                  for name in ("baseline", "max", "paced", "wmax", "wpaced")]
        await create_topics(broker.bootstrap, topics)
        base = await baseline(broker.bootstrap, "bench.baseline", args.count)
        top = await dispatcher(broker.bootstrap, "bench.max", rate=10_000_000, seconds=None,
                               count=args.count)
        paced = await dispatcher(broker.bootstrap, "bench.paced", rate=args.rate,
                                 seconds=args.seconds, count=None)
        with tempfile.TemporaryDirectory() as tmp:
            rows = write_rows(Path(tmp) / "rows.jsonl")
            wtop = await workers(broker.bootstrap, "bench.wmax", rows, n=args.workers,
                                 rate=10_000_000, seconds=None, count=args.count)
            wpaced = await workers(broker.bootstrap, "bench.wpaced", rows, n=args.workers,
                                   rate=args.rate, seconds=args.seconds, count=None)
    finally:
        broker.stop()
    return {"broker": "apache-kafka-4.1.1", "value_bytes": event_size(),
            "baseline_send_batch_eps": round(base, 1), "dispatcher_max_eps": top["throughput_eps"],
            "dispatcher_max_vs_baseline": round(top["throughput_eps"] / base, 3),
            "paced_target_eps": args.rate, "paced_achieved_eps": paced["achieved_rate"],
            "paced_achieved_ratio": round(paced["achieved_rate"] / args.rate, 4),
            "paced_lag_ms_p50": paced["lag_ms"]["p50"], "paced_lag_ms_p99": paced["lag_ms"]["p99"],
            "paced_lag_ms_max": paced["lag_ms"]["max"],
            "workers": args.workers, "workers_max_eps": wtop["throughput_eps"],
            "workers_max_vs_baseline": round(wtop["throughput_eps"] / base, 3),
            "workers_paced_achieved_eps": wpaced["achieved_rate"],
            "workers_paced_achieved_ratio": round(wpaced["achieved_rate"] / args.rate, 4),
            "workers_paced_lag_ms_p50": wpaced["lag_ms"]["p50"],
            "workers_paced_lag_ms_p99": wpaced["lag_ms"]["p99"],
            "workers_paced_lag_ms_max": wpaced["lag_ms"]["max"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--count", type=int, default=500_000, help="events for the max-rate runs")
    parser.add_argument("--workers", type=int, default=2, help="dispatch worker processes (row 4, 5)")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args))
    print(f"{'':38}{'events/s':>12}")
    print(f"{'raw aiokafka send_batch (baseline)':38}{figures['baseline_send_batch_eps']:>12,.0f}")
    print(f"{'ppipe dispatcher, as fast as it can':38}{figures['dispatcher_max_eps']:>12,.0f}"
          f"   ({figures['dispatcher_max_vs_baseline']:.0%} of baseline; target >= 50%)")
    print(f"{'ppipe dispatcher, paced':38}{figures['paced_achieved_eps']:>12,.0f}"
          f"   (target {args.rate:,.0f}: {figures['paced_achieved_ratio']:.2%}; needs >= 99%)")
    print(f"dispatch lag at {args.rate:,.0f}/s: p50 {figures['paced_lag_ms_p50']} ms, "
          f"p99 {figures['paced_lag_ms_p99']} ms (needs <= 5 ms), max {figures['paced_lag_ms_max']} ms")
    n = figures["workers"]
    print(f"{f'{n} dispatch workers, as fast as they can':38}{figures['workers_max_eps']:>12,.0f}"
          f"   ({figures['workers_max_vs_baseline']:.0%} of baseline)")
    print(f"{f'{n} dispatch workers, paced':38}{figures['workers_paced_achieved_eps']:>12,.0f}"
          f"   (target {args.rate:,.0f}: {figures['workers_paced_achieved_ratio']:.2%})")
    print(f"dispatch lag with {n} workers: p50 {figures['workers_paced_lag_ms_p50']} ms, "
          f"p99 {figures['workers_paced_lag_ms_p99']} ms, max {figures['workers_paced_lag_ms_max']} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
