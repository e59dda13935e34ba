"""The run's ``[kafka] acks`` / ``idempotent`` reach the pipeline (``PPIPE_ACKS``,
``PPIPE_IDEMPOTENT``) and the SDK's output producer uses them: a ``ppipe run`` on
Apache Kafka, then the answers' record batches read from the broker's own log
segments with Kafka's ``DumpLogSegments``: an idempotent producer's batches carry
its producer id, a plain producer's carry -1."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from ppipe_stream import protocol
from ppipe_stream.brokers.kafka import ensure_kafka_jars, kafka_jvm
from tests.conftest import answer_dataset

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SCENARIO = """
name = "delivery"
seed = 1
[dataset]
source = "csv"
path = "rows.csv"
target = "label"
[load]
profile = "constant"
rate = 200
duration = "2s"
drain = "5s"
[[pipelines]]
name = "echo"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.echo"]
[scoring]
task = "classification"
deadline = "2s"
[kafka]
bootstrap = "{bootstrap}"
partitions = 2
{delivery}
"""


def _producer_ids(kafka_broker, topic: str, partitions: int) -> list[int]:
    """The producer id of every record batch of ``topic``, from the broker's log segments."""
    log_dir = kafka_broker.log_path.parent / "kraft-logs"
    segments = sorted(str(p) for i in range(partitions) for p in (log_dir / f"{topic}-{i}").glob("*.log"))
    assert segments, f"no log segment of {topic} in {log_dir}"
    dump = subprocess.run([*kafka_jvm(ensure_kafka_jars(), heap="256m"), "kafka.tools.DumpLogSegments",
                           f"--files={','.join(segments)}"], capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr[-2000:]
    return [int(i) for i in re.findall(r"producerId: (-?\d+)", dump.stdout)]


@pytest.mark.parametrize("delivery, idempotent", [('acks = "all"\nidempotent = true', True),
                                                  ('acks = "1"', False)])
def test_the_runs_acks_and_idempotence_reach_the_sdks_output_producer(kafka_broker, tmp_path,
                                                                       delivery, idempotent):
    answer_dataset(tmp_path / "rows.csv", 1000)
    (tmp_path / "s.toml").write_text(SCENARIO.format(bootstrap=kafka_broker.bootstrap,
                                                     delivery=delivery))
    run = subprocess.run([sys.executable, "-m", "ppipe_stream", "run", "s.toml", "--out", "run",
                          "--plain"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["pipelines"]["echo"]["status"]["missing"] == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    topic = next(entry["topic"] for entry in log if entry.get("event") == "dispatch.started")
    output = protocol.Topics(topic.removesuffix(".input")).output("echo")
    ids = _producer_ids(kafka_broker, output, 2)
    assert ids, "no record batch in the output topic"
    if idempotent:
        assert min(ids) >= 0, ids[:20]  # every answer batch from an idempotent producer
    else:
        assert set(ids) == {-1}, ids[:20]


@pytest.mark.parametrize("env, message", [
    ({"PPIPE_ACKS": "2"}, "PPIPE_ACKS is '2'; use one of all, 1, 0"),
    ({"PPIPE_ACKS": "1", "PPIPE_IDEMPOTENT": "true"}, "PPIPE_IDEMPOTENT=true needs PPIPE_ACKS=all"),
    ({"PPIPE_ACKS": "all", "PPIPE_IDEMPOTENT": "yes"}, "PPIPE_IDEMPOTENT is 'yes'; use true or false"),
])
def test_a_pipeline_given_bad_delivery_settings_says_so_in_one_line(env, message):
    base = protocol.pipeline_env(bootstrap="127.0.0.1:9", topics=protocol.Topics("p"), pipeline="echo",
                                 run_id="r", task="classification")
    result = subprocess.run([sys.executable, "-m", "ppipe_stream.examples.echo"],
                            env={**base, **env, "PATH": "/usr/bin:/bin"}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ppipe pipeline: {message}"), result.stderr
