"""A three-node Apache Kafka cluster on loopback, and a run that loses its input leader.

The cluster fixture (conftest.py) is started once; a test that kills a node
restarts it before it ends, so the next test sees three nodes again.
"""

from __future__ import annotations

import csv
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import anyio
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ppipe_stream import protocol
from ppipe_stream.brokers import create_topics
from ppipe_stream.run.orchestration import run_scenario
from ppipe_stream.scenario import loads_scenario

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def read_topic(bootstrap: str, topic: str,
                    partitions: int) -> list[tuple[int, bytes, dict[str, bytes]]]:
    """Every record of ``topic`` as (partition, value, headers), read by a plain consumer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[tuple[int, bytes, dict[str, bytes]]] = []
        with anyio.fail_after(60):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                    records.extend((tp.partition, r.value, dict(r.headers)) for r in batch)
        return records
    finally:
        await consumer.stop()


@pytest.mark.asyncio
async def test_cluster_forms_with_three_in_sync_replicas(kafka_cluster, topic_prefix):
    assert kafka_cluster.alive() == [1, 2, 3]
    assert len(kafka_cluster.bootstrap.split(",")) == 3
    topic = f"{topic_prefix}.rf3"
    await create_topics(kafka_cluster.bootstrap, [(topic, 3)], replication_factor=3)
    states = await kafka_cluster.adescribe(topic)
    assert sorted(states) == [0, 1, 2]
    for state in states.values():
        assert sorted(state.replicas) == [1, 2, 3]
        assert sorted(state.isr) == [1, 2, 3]
        assert state.leader in state.replicas
    leader = await anyio.to_thread.run_sync(kafka_cluster.leader_of, topic, 1)
    assert leader == states[1].leader


@pytest.mark.asyncio
async def test_killed_leader_is_replaced_and_restarted_node_rejoins(kafka_cluster, topic_prefix):
    topic = f"{topic_prefix}.fail"
    bootstrap = kafka_cluster.bootstrap
    await create_topics(kafka_cluster.bootstrap, [(topic, 1)], replication_factor=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap, acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        for i in range(100):
            await producer.send(topic, b"%d" % i)
        await producer.flush()
        leader = (await kafka_cluster.adescribe(topic))[0].leader
        kafka_cluster.kill(leader)
        assert leader not in kafka_cluster.alive()
        with anyio.fail_after(30):
            while (state := (await kafka_cluster.adescribe(topic))[0]).leader in (leader, -1):
                await anyio.sleep(0.2)
        assert leader not in state.isr and len(state.isr) == 2
        for i in range(100, 200):  # min.insync.replicas = 2: still writable
            await producer.send(topic, b"%d" % i)
        await producer.flush()
    finally:
        await producer.stop()
        await anyio.to_thread.run_sync(kafka_cluster.restart, leader)
    with anyio.fail_after(60):
        while leader not in (await kafka_cluster.adescribe(topic))[0].isr:
            await anyio.sleep(0.5)
    assert kafka_cluster.bootstrap == bootstrap  # same ports
    assert kafka_cluster.alive() == [1, 2, 3]
    values = [int(v) for _, v, _ in await read_topic(kafka_cluster.bootstrap, topic, 1)]
    assert values == list(range(200))  # acks=all + idempotence: once each, in order


@pytest.mark.asyncio
async def test_clean_stop_hands_leadership_over(kafka_cluster, topic_prefix):
    topic = f"{topic_prefix}.stop"
    await create_topics(kafka_cluster.bootstrap, [(topic, 1)], replication_factor=3)
    leader = (await kafka_cluster.adescribe(topic))[0].leader
    try:
        await anyio.to_thread.run_sync(kafka_cluster.stop_node, leader)
        assert leader not in kafka_cluster.alive()
        with anyio.fail_after(2):  # moved during the shutdown, not after the 4 s session timeout
            while (await kafka_cluster.adescribe(topic))[0].leader in (leader, -1):
                await anyio.sleep(0.1)
    finally:
        await anyio.to_thread.run_sync(kafka_cluster.restart, leader)
    assert kafka_cluster.alive() == [1, 2, 3]


class _LeaderKiller(threading.Thread):
    """Waits until the run's dispatch has gone on for ``after_s``, then SIGKILLs the
    leader of partition 0 of its input topic (found in the run's log: ``topic``) or,
    with ``target="output"``, of pipeline ``echo``'s output topic (``target_topic``)."""

    def __init__(self, cluster, run_dir: Path, after_s: float, target: str = "input") -> None:
        super().__init__(daemon=True)
        self.cluster, self.run_dir, self.after_s, self.target = cluster, run_dir, after_s, target
        self.topic: str | None = None
        self.target_topic: str | None = None
        self.killed: int | None = None
        self.killed_ns: int | None = None
        self.new_leader: int | None = None
        self.failover_s: float | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _run(self) -> None:
        log = self.run_dir / "log.jsonl"
        while self.topic is None and not self._done.is_set():
            if log.exists():
                for line in log.read_text().splitlines():
                    entry = json.loads(line)
                    if entry.get("event") == "dispatch.started":
                        self.topic = entry["topic"]
            self._done.wait(0.1)
        if self._done.wait(self.after_s) or self.topic is None:
            return
        prefix = self.topic.removesuffix(".input")
        self.target_topic = (self.topic if self.target == "input"
                             else protocol.Topics(prefix).output("echo"))
        leader = self.cluster.leader_of(self.target_topic, 0)
        self.killed_ns = time.time_ns()
        self.cluster.kill(leader)
        self.killed = leader
        start = time.monotonic()
        while not self._done.is_set():
            now = self.cluster.leader_of(self.target_topic, 0)
            if now not in (leader, -1):
                self.new_leader, self.failover_s = now, time.monotonic() - start
                return
            time.sleep(0.1)


def _dataset(path: Path, rows: int) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["x", "label"])
        for i in range(rows):
            writer.writerow([i, "odd" if i % 2 else "even"])


@pytest.mark.asyncio
@pytest.mark.parametrize("target", ["input", "output"])
async def test_leader_killed_mid_run_loses_and_duplicates_nothing(kafka_cluster, tmp_path, target):
    """The leader of input partition 0 (events and labels) or of the pipeline's output
    partition 0 (its answers: the SDK's producer takes the run's acks = "all" and
    idempotence from PPIPE_ACKS / PPIPE_IDEMPOTENT) is SIGKILLed mid-run."""
    rate, seconds, partitions = 250, 18, 3
    _dataset(tmp_path / "rows.csv", rate * seconds + 1000)
    name = f"failover-{uuid.uuid4().hex[:8]}"
    loaded = loads_scenario(f"""
name = "{name}"
seed = 3
[dataset]
source = "csv"
path = "rows.csv"
target = "label"
[load]
profile = "constant"
rate = {rate}
duration = "{seconds}s"
drain = "15s"
[labels]
delay = "500ms"
[[pipelines]]
name = "echo"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.echo"]
[scoring]
task = "classification"
deadline = "10s"
[kafka]
bootstrap = "{kafka_cluster.bootstrap}"
partitions = {partitions}
replication_factor = 3
acks = "all"
idempotent = true
""", file=str(tmp_path / "s.toml"), base_dir=tmp_path)
    run_dir = tmp_path / "run"
    killer = _LeaderKiller(kafka_cluster, run_dir, after_s=4, target=target)
    killer.start()
    try:
        outcome = await run_scenario(loaded, out=run_dir)
    finally:
        killer.stop()
        await anyio.to_thread.run_sync(killer.join, 30)
        if killer.killed is not None:
            await anyio.to_thread.run_sync(kafka_cluster.restart, killer.killed)
    assert killer.error is None, killer.error
    assert killer.killed is not None and killer.new_leader is not None, "the leader was not killed"
    summary = outcome.summary
    assert outcome.complete, summary

    records = await read_topic(kafka_cluster.bootstrap, killer.topic, partitions)
    events: Counter[int] = Counter()
    labels: Counter[int] = Counter()
    for _, value, _ in records:
        message = json.loads(value)
        (events if message["type"] == "event" else labels)[message["id"]] += 1
    sent = summary["dispatch"]["events_sent"]
    lost = sorted(set(range(sent)) - set(events))
    duplicated = {i: n for i, n in events.items() if n > 1}
    labels_lost = sorted(set(range(summary["dispatch"]["labels_sent"])) - set(labels))
    labels_duplicated = {i: n for i, n in labels.items() if n > 1}

    answered: Counter[int] = Counter()
    for _, value, _ in await read_topic(kafka_cluster.bootstrap, protocol.Topics(
            killer.topic.removesuffix(".input")).output("echo"), partitions):
        message = json.loads(value)
        if message["type"] == "prediction":
            answered[message["id"]] += 1
    answers_lost = sorted(set(range(sent)) - set(answered))

    status = summary["pipelines"]["echo"]["status"]
    with open(run_dir / "timeline.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    started_ns = _started_ns(records)
    kill_s = (killer.killed_ns - started_ns) / 1e9
    after = [r for r in rows if float(r["time_s"]) >= kill_s + killer.failover_s + 1
             and float(r["time_s"]) < seconds]
    figures = {
        "events_sent": sent, "labels_sent": summary["dispatch"]["labels_sent"],
        "events_in_topic": sum(events.values()), "lost": len(lost), "duplicated": len(duplicated),
        "labels_lost": len(labels_lost), "labels_duplicated": len(labels_duplicated),
        "killed": f"{target} partition 0 leader", "answers_in_topic": sum(answered.values()),
        "answers_lost": len(answers_lost), "killed_node": killer.killed, "new_leader": killer.new_leader,
        "kill_at_s": round(kill_s, 2), "failover_s": round(killer.failover_s, 2),
        "dispatch_lag_ms": summary["dispatch"]["lag_ms"], "status": status,
        "answered_per_window_after_failover": [int(r["answered"]) for r in after],
    }
    print("\nfailover figures:", json.dumps(figures))
    assert sent >= rate * seconds * 0.95
    assert 1 < kill_s < seconds - 5, figures  # mid-run
    assert lost == [] and duplicated == {} and sum(events.values()) == sent
    assert labels_lost == [] and labels_duplicated == {}
    assert after and all(int(r["answered"]) > 0 for r in after), figures
    assert status["missing"] <= sent * 0.001, figures
    if target == "output":  # acks = "all" reached the pipeline: no acknowledged answer lost
        assert answers_lost == [] and status["missing"] == 0, figures


def _started_ns(records: list[tuple[int, bytes, dict[str, bytes]]]) -> int:
    """The run's start (its windows' origin), within one interval of the schedule:
    the intended send time of event 0, from its header."""
    for _, value, headers in records:
        message = json.loads(value)
        if message["type"] == "event" and message["id"] == 0:
            return int(headers[protocol.HEADER_INTENDED_NS])
    raise AssertionError("event 0 is not in the input topic")


def test_ppipe_broker_start_three_nodes_and_stop_leaves_nothing(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "ppipe_stream", "broker", "start", "--kind",
                             "kafka", "--nodes", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("bootstrap="), (line, proc.stderr.read() if proc.poll() else "")
        bootstrap = line.split("=", 1)[1]
        addresses = bootstrap.split(",")
        assert len(addresses) == 3
        anyio.run(lambda: create_topics(bootstrap, [("cli-rf3", 2)], replication_factor=3))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 130  # Ctrl+C: interrupted
    for address in addresses:  # every node is gone
        host, port = address.rsplit(":", 1)
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=1).close()


@pytest.mark.parametrize("argv", [["--kind", "tansu", "--nodes", "3"], ["--kind", "kafka", "--nodes", "0"],
                                  ["--kind", "kafka", "--nodes", "3", "--port", "9092"]])
def test_ppipe_broker_start_rejects_bad_node_counts(argv):
    result = subprocess.run([sys.executable, "-m", "ppipe_stream", "broker", "start", *argv],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--nodes" in result.stderr or "--port" in result.stderr
