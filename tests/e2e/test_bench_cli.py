"""``ppipe bench`` as a user runs it, in a subprocess: sweeps along each axis (one
probe per value, the value recorded, the chart drawn), the bench folder refused
unless ``--force``, replicas that need a cluster, and library noise kept in the
bench's log file, off the console."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.test_validate import one_line
from tests.helpers import ppipe
from tests.integration.conftest import kafka_cluster  # noqa: F401

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SHORT = ("--seconds", "2", "--rates", "200")


def bench_json(result, folder: Path) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == str(folder)
    assert (folder / "bench.png").stat().st_size > 0
    return json.loads((folder / "bench.json").read_text())


def no_library_lines(stderr: str) -> None:
    """aiokafka's warnings (the last resort prints their bare message) are not there."""
    for noise in ("NotLeaderForPartition", "retrying", "aiokafka", "Topic ppipe."):
        assert noise not in stderr, stderr


@pytest.mark.timeout(300)
@pytest.mark.parametrize("axis, flag, values, field", [
    ("size", "--sizes", [0, 2000], "size"),
    ("partitions", "--partitions", [1, 3], "partitions"),
])
def test_a_sweep_along_an_axis_has_one_probe_per_value(tmp_path, axis, flag, values, field):
    out = tmp_path / "bench"
    result = ppipe("bench", "--kind", "tansu", "--axis", axis, flag, ",".join(map(str, values)),
                   *SHORT, "--out", str(out), cwd=tmp_path, timeout=280)
    data = bench_json(result, out)
    assert data["axis"] == axis
    probes = data["probes"]
    assert [p["value"] for p in probes] == values and [p[field] for p in probes] == values
    assert all(p["axis"] == axis and p["rate"] == 200 for p in probes)
    assert [Path(p["folder"]).name for p in probes] == [f"{axis}-{v}" for v in values]
    for p in probes:  # each probe a complete run that answered, beside its baseline
        assert p["p50_ms"] is not None and p["raw_p50_ms"] is not None, p
        scenario = (Path(p["folder"]) / "scenario.toml").read_text()
        if axis == "size":
            assert f"pad = {p['size']}" in scenario, scenario
        else:
            assert f"partitions = {p['partitions']}" in scenario
    table = result.stdout
    assert "ingestion latency against" in table and (
        "size (pad bytes)" in table if axis == "size" else "partitions" in table)
    no_library_lines(result.stderr)


@pytest.mark.timeout(200)
def test_an_earlier_bench_folder_is_refused_then_taken_with_force(tmp_path):
    """It was refused at the first probe with a hint to ``--force``, which bench lacked."""
    out = tmp_path / "bench"
    (out / "rate-200").mkdir(parents=True)
    (out / "rate-200" / "summary.json").write_text('{"run_id": "earlier"}')
    line = one_line(ppipe("bench", "--kind", "tansu", *SHORT, "--out", str(out), cwd=tmp_path))
    assert "--force" in line and str(out) in line
    data = bench_json(ppipe("bench", "--kind", "tansu", *SHORT, "--out", str(out), "--force",
                            cwd=tmp_path, timeout=180), out)
    assert [p["rate"] for p in data["probes"]] == [200]
    assert json.loads((out / "rate-200" / "summary.json").read_text())["run_id"] != "earlier"


def test_replicas_on_the_one_broker_bench_starts_is_one_line(tmp_path):
    line = one_line(ppipe("bench", "--axis", "replicas", "--replicas", "1,3", cwd=tmp_path))
    assert "--replicas 3" in line and "--bootstrap" in line and "cluster" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.timeout(400)
def test_replicas_sweep_on_a_cluster(tmp_path, kafka_cluster):  # noqa: F811
    out = tmp_path / "bench"
    result = ppipe("bench", "--bootstrap", kafka_cluster.bootstrap, "--axis", "replicas",
                   "--replicas", "1,3", *SHORT, "--out", str(out), cwd=tmp_path, timeout=380)
    data = bench_json(result, out)
    assert [(p["value"], p["replicas"]) for p in data["probes"]] == [(1, 1), (3, 3)]
    assert all(p["p50_ms"] is not None for p in data["probes"])
    no_library_lines(result.stderr)


@pytest.mark.timeout(200)
def test_aiokafka_warnings_between_probes_go_to_the_bench_log_not_the_console(tmp_path):
    """The raw baseline runs between probes, when no run's log is open: aiokafka's
    ``NotLeaderForPartitionError ... retrying`` (here raised on purpose as the baseline
    creates its topic, as a fresh broker does) was printed on standard error."""
    entry = textwrap.dedent("""
        import logging, sys
        from ppipe_stream import cli
        from ppipe_stream.bench import raw
        created = raw.create_topics
        async def noisy(*args, **kwargs):
            logging.getLogger("aiokafka.producer.sender").warning(
                "Got error produce response on topic-partition TopicPartition(topic='t', "
                "partition=0), retrying. Error: [Error 6] NotLeaderForPartitionError")
            return await created(*args, **kwargs)
        raw.create_topics = noisy
        sys.exit(cli.main(sys.argv[1:]))
    """)
    out = tmp_path / "bench"
    result = subprocess.run([sys.executable, "-c", entry, "bench", "--kind", "tansu", *SHORT,
                             "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=180)
    bench_json(result, out)
    no_library_lines(result.stderr)
    assert "NotLeaderForPartitionError" in (out / "log.jsonl").read_text()
