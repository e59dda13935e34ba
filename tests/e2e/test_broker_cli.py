"""``ppipe broker start --kind kafka --nodes 3`` as a user runs it to watch failover:
a ``ppipe run`` on the cluster, the input leader's node SIGKILLed mid-run, the
launcher keeping the other nodes up and starting the lost one again on SIGUSR1
(or after ``--restart-after``), Ctrl+C stopping everything with exit 130."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest

from ppipe_stream.brokers import describe_partitions
from tests.conftest import answer_dataset
from tests.helpers import (Dataset, Kafka, Labels, Load, Scenario, Scoring, reaped, start_ppipe,
                           summary_of)
from tests.integration.test_cluster import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

NODE_LINE = re.compile(r"^node (\d+): pid (\d+), port (\d+), data (.+)$")


class Launcher:
    """``ppipe broker start`` in a subprocess; its standard error read line by line."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.proc = start_ppipe("broker", "start", "--kind", "kafka", *args, cwd=cwd,
                                stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None and self.proc.stderr is not None  # both piped
        self.stdout, self.stderr = self.proc.stdout, self.proc.stderr
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        first = self.stdout.readline().strip()
        if not first.startswith("bootstrap="):
            self.proc.kill()
            self.close()
            raise AssertionError(f"no bootstrap line: {first!r}; {self.lines}")
        self.bootstrap = first.split("=", 1)[1]
        self.wait_for(r"running \(3 nodes")
        self.nodes = {int(m[1]): (int(m[2]), int(m[3]), Path(m[4]))
                      for m in map(NODE_LINE.match, self.lines) if m}

    def _read(self) -> None:
        for line in self.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if match := re.search(pattern, line):
                        return match
                left = deadline - time.monotonic()
                assert left > 0 and self.proc.poll() is None, (pattern, self.proc.poll(), self.lines)
                self._changed.wait(min(left, 0.5))

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.interrupt()
        self._reader.join(timeout=10)
        self.stdout.close()
        self.stderr.close()


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _input_topic(log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists():
            for line in log.read_text().splitlines():
                entry = json.loads(line)
                if entry.get("event") == "dispatch.started":
                    return entry["topic"]
        time.sleep(0.1)
    raise AssertionError(f"the run did not start dispatching within {timeout:.0f} s")


def test_run_outlives_the_input_leaders_node_and_the_node_comes_back(tmp_path):
    rate, seconds = 200, 16
    launcher = Launcher("--nodes", "3", cwd=tmp_path)
    try:
        answer_dataset(tmp_path / "rows.csv", rate * seconds + 1000)
        Scenario(name="failover-cli", seed=5, dataset=Dataset(path="rows.csv", target="label"),
                 load=Load(rate=rate, duration=f"{seconds}s", drain="20s"),
                 labels=Labels(delay="500ms"),
                 scoring=Scoring(task="classification", deadline="10s"),
                 kafka=Kafka(bootstrap=launcher.bootstrap, partitions=3, replication_factor=3,
                             acks="all", idempotent=True)).write(tmp_path, "s.toml")
        with reaped(start_ppipe("run", "s.toml", "--out", "run", "--plain", cwd=tmp_path,
                                stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT)) as run:
            topic = _input_topic(tmp_path / "run" / "log.jsonl", timeout=90)
            time.sleep(6)
            leader = anyio.run(describe_partitions, launcher.bootstrap, [topic])[topic][0]
            pid, port, _ = launcher.nodes[leader]
            subprocess.run(["kill", "-KILL", str(pid)], check=True)  # as a user would
            launcher.wait_for(rf"^node {leader} exited \(code -9; alive: ", timeout=10)
            others = [p for i, (_, p, _) in launcher.nodes.items() if i != leader]
            time.sleep(1)
            assert all(_answers(p) for p in others) and not _answers(port), launcher.lines
            launcher.proc.send_signal(signal.SIGUSR1)  # start it again on its data
            output, _ = run.communicate(timeout=240)
        assert run.returncode == 0, output[-3000:]
        summary = summary_of(tmp_path / "run")
        assert summary["complete"] is True, summary
        launcher.wait_for(rf"^node {leader} restarted: pid \d+, port {port} ", timeout=120)
        assert _answers(port)

        events: Counter[int] = Counter()
        labels: Counter[int] = Counter()
        for _, value, _ in anyio.run(read_topic, launcher.bootstrap, topic, 3):
            message = json.loads(value)
            (events if message["type"] == "event" else labels)[message["id"]] += 1
        sent, labels_sent = summary["dispatch"]["events_sent"], summary["dispatch"]["labels_sent"]
        print("\nfailover via the CLI:", json.dumps({
            "killed_node": leader, "events_sent": sent, "labels_sent": labels_sent,
            "events_in_topic": sum(events.values()), "labels_in_topic": sum(labels.values()),
            "status": summary["pipelines"]["echo"]["status"]}))
        assert sent >= rate * seconds * 0.95
        assert events == Counter(range(sent)), "every event exactly once"
        assert labels == Counter(range(labels_sent)), "every label exactly once"
        assert launcher.interrupt() == 130
        assert not any(_answers(p) for _, p, _ in launcher.nodes.values())
    finally:
        launcher.close()


def test_restart_after_starts_a_lost_node_again_on_its_data(tmp_path):
    launcher = Launcher("--nodes", "3", "--restart-after", "2", cwd=tmp_path)
    try:
        pid, port, data = launcher.nodes[2]
        meta = (data / "kraft-logs" / "meta.properties").read_text()
        subprocess.run(["kill", "-KILL", str(pid)], check=True)
        launcher.wait_for(r"^node 2 exited \(code -9; alive: \[1, 3\]\).* or in 2 s$", timeout=10)
        restarted = launcher.wait_for(rf"^node 2 restarted: pid (\d+), port {port} ", timeout=120)
        assert int(restarted[1]) != pid and _answers(port)
        assert (data / "kraft-logs" / "meta.properties").read_text() == meta  # its own data
        assert all(_answers(p) for _, p, _ in launcher.nodes.values())
        assert launcher.interrupt() == 130
        assert not any(_answers(p) for _, p, _ in launcher.nodes.values())
    finally:
        launcher.close()
