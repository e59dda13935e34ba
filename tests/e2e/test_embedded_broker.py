"""The embedded broker as a user meets it (``ppipe run`` in a subprocess, the default
``bootstrap = "embedded"``: the run's own Apache Kafka):

- a minute of sustained load loses nothing, and the broker's and the harness's
  memory stay bounded (read from the run's own timeline.csv);
- a broker frozen mid-run (SIGSTOP, as an overloaded or swapping broker) is
  named in a ``broker_stall`` incident, no pipeline is called hung for what the
  broker held up, and the run is invalid with that reason;
- Kafka's jars with a wrong checksum are refused in one line, nothing installed.

Counts, not timings: no assertion here depends on how fast this machine is.
"""

from __future__ import annotations

import csv
import http.server
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import answer_dataset
from tests.helpers import (Dataset, Labels, Load, Pipeline, Scenario, Scoring, reaped,
                           start_ppipe)
from tests.helpers import ppipe as run_ppipe

def _write(tmp_path: Path, *, name: str, rate: int, duration: str, drain: str, deadline: str) -> Path:
    data = answer_dataset(tmp_path / "answers.csv", 1000)
    return Scenario(
        name=name, seed=3, dataset=Dataset(path=str(data), target="label", loop=True),
        load=Load(rate=rate, duration=duration, warmup="1s", drain=drain), labels=Labels(delay="1s"),
        pipelines=[Pipeline(name="echo", command=[sys.executable, "-m", "ppipe_stream.examples.echo"],
                            hang_after="1s")],
        scoring=Scoring(task="classification", deadline=deadline, window="1s")).write(tmp_path)


def _timeline(folder: Path) -> list[dict[str, str]]:
    with open(folder / "timeline.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _summary_now(out: Path) -> dict:
    try:
        return json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_minute_of_sustained_load_on_the_embedded_default_loses_nothing_in_bounded_memory(tmp_path):
    """5,000 events/s for 60 s on the default embedded broker: every event is answered,
    the broker's RSS stays under 1 GiB and stops growing (its last quarter no more
    than 1.25x its first quarter's plus 64 MiB: tansu's memory store, which keeps
    every event, grows about 4 MiB/s at this rate and fails it), and the harness's too."""
    path = _write(tmp_path, name="sustained", rate=5000, duration="60s", drain="10s", deadline="2s")
    out = tmp_path / "run"
    result = run_ppipe("run", str(path), "--plain", "--out", str(out), cwd=tmp_path, timeout=360)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["broker"]["kind"] == "kafka" and summary["broker"]["started"] is True
    assert summary["broker"]["startup_s"] > 0
    assert summary["dispatch"]["events_sent"] == 300_000
    status = summary["pipelines"]["echo"]["status"]
    assert status["missing"] == 0, status
    echo = summary["pipelines"]["echo"]
    assert echo["predictions"] + echo["warmup_events"] == 300_000
    rows = _timeline(out)
    for column in ("broker_memory_mib", "harness_memory_mib"):
        series = [float(r[column]) for r in rows if r[column]]
        assert len(series) >= 40, (column, len(series))
        quarter = len(series) // 4
        first, last = max(series[:quarter]), max(series[-quarter:])
        assert max(series) < 1024, (column, max(series))
        assert last <= 1.25 * first + 64, (column, first, last)
    assert summary["broker"]["response_ms"]["probes"] > 0
    assert summary["broker"]["response_ms"]["p50"] is not None


def _kafka_child(ppipe: subprocess.Popen, timeout: float = 120) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(ppipe.pid).children(recursive=True):
            try:
                if "kafka.Kafka" in child.cmdline():
                    return child
            except psutil.Error:
                continue
        if ppipe.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError("the run's Apache Kafka was not found among ppipe's children")


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_frozen_broker_is_named_not_the_pipeline_and_the_run_is_invalid(tmp_path):
    """The run's own Kafka is frozen (SIGSTOP) for 4 s a few seconds into dispatching,
    then let go: a broker_stall incident names the broker and ends; the echo
    pipeline (hang_after 1 s), which waited on the broker, is never called hung;
    the summary and the timeline carry the stall; the run is invalid, saying why;
    nothing is missing once the broker answers again."""
    path = _write(tmp_path, name="stall", rate=200, duration="16s", drain="20s", deadline="30s")
    out = tmp_path / "run"
    with reaped(start_ppipe("run", str(path), "--plain", "--out", str(out), cwd=tmp_path)) as ppipe:
        kafka = _kafka_child(ppipe)
        deadline = time.monotonic() + 120
        while _summary_now(out).get("dispatch", {}).get("events_sent", 0) < 600:  # 3 s in
            assert ppipe.poll() is None and time.monotonic() < deadline, "the run did not dispatch"
            time.sleep(0.1)
        kafka.send_signal(signal.SIGSTOP)
        try:
            time.sleep(4)
        finally:
            kafka.send_signal(signal.SIGCONT)
        stdout, stderr = ppipe.communicate(timeout=180)
    assert ppipe.returncode == 0, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    kinds = [(i["kind"], i["target"]) for i in summary["incidents"]]
    node = summary["broker"]["bootstrap"]
    assert ("broker_stall", f"broker:{node}") in kinds, kinds
    assert ("broker_stall_end", f"broker:{node}") in kinds, kinds
    assert not [k for k in kinds if k[0] == "pipeline_hang"], kinds
    stalls = summary["broker"]["stalls"]
    assert stalls and all(s["ended"] for s in stalls) and summary["broker"]["stalled_s"] >= 2, stalls
    assert summary["broker"]["outages"] == [] and summary["broker"]["response_ms"]["unanswered"] >= 1
    assert summary["validity"]["valid"] is False
    assert any(r.startswith("the broker stalled") for r in summary["validity"]["reasons"]), summary["validity"]
    assert summary["pipelines"]["echo"]["status"]["missing"] == 0
    rows = _timeline(out)
    assert any(float(r["broker_stalled_s"]) > 0 for r in rows)
    assert any("broker_stall" in r["incidents"] for r in rows)
    assert any(r["broker_response_ms"] for r in rows)


class _WrongJars(http.server.BaseHTTPRequestHandler):
    """A Maven repository on loopback whose every file is the same wrong bytes."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"these are not Kafka's jar bytes")

    def log_message(self, *args: object) -> None:
        pass


def test_kafka_jars_with_a_wrong_checksum_are_refused_in_one_line(tmp_path):
    """``ppipe run`` on a machine with no Kafka jars yet, from a repository serving the
    wrong bytes: exit 1, one error line naming the jar and the checksum, no traceback,
    no jar installed (the next run fetches again)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WrongJars)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cache = tmp_path / "cache"
    env = {"PPIPE_CACHE_DIR": str(cache),
           "PPIPE_MAVEN_REPO": f"http://127.0.0.1:{server.server_address[1]}/maven2"}
    path = _write(tmp_path, name="nojars", rate=10, duration="2s", drain="1s", deadline="1s")
    try:
        result = run_ppipe("run", str(path), "--plain", "--out", str(tmp_path / "run"),
                           cwd=tmp_path, timeout=120, env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert "refusing " in errors[0] and ".jar" in errors[0] and " is " in errors[0], errors[0]
    assert "sha" in errors[0]
    from ppipe_stream.brokers import KAFKA_VERSION

    libs = cache / f"kafka-{KAFKA_VERSION}" / "libs"
    assert not any(libs.glob("*.jar")) and not (libs.parent / ".complete").exists()
