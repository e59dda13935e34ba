"""``ppipe bench --bootstrap`` run twice against one broker, as a user runs it: the
second run's figures are its own, of the same magnitude as the first's.

Before the fix, the raw baseline's topic was ``ppipe.bench.raw.rate-<rate>`` on every
invocation and its consumer started at ``earliest``: the second run read the first
run's records and printed a p50 of tens of seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ppipe

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RATES = (100, 1000)


def bench(bootstrap: str, cwd: Path) -> dict[str, Any]:
    """One ``ppipe bench`` with the default scenario; its bench.json."""
    result = ppipe("bench", "--bootstrap", bootstrap, "--rates", ",".join(map(str, RATES)),
                   "--seconds", "3", cwd=cwd, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = cwd / result.stdout.strip().splitlines()[-1]
    return json.loads((folder / "bench.json").read_text())


def same_magnitude(a: float, b: float, floor_ms: float = 5.0) -> bool:
    """Within 10x of each other (figures under ``floor_ms`` count as ``floor_ms``)."""
    low, high = sorted((max(a, floor_ms), max(b, floor_ms)))
    return high <= 10 * low


@pytest.mark.timeout(600)
def test_the_same_bench_twice_on_one_broker_measures_the_same(kafka_broker, tmp_path):
    first = bench(kafka_broker.bootstrap, tmp_path)
    second = bench(kafka_broker.bootstrap, tmp_path)
    for run in (first, second):  # shown with -s
        print("bench", run["bench_id"], [(p["rate"], p["p50_ms"], p["raw_p50_ms"], p["raw_p99_ms"])
                                         for p in run["probes"]])
    assert [p["rate"] for p in first["probes"]] == [p["rate"] for p in second["probes"]] == list(RATES)
    for a, b in zip(first["probes"], second["probes"], strict=True):
        for key in ("p50_ms", "p99_ms"):  # the harness's own runs: each has figures
            assert a[key] is not None and b[key] is not None, (key, a, b)
        for key in ("raw_p50_ms", "raw_p99_ms"):  # the baseline: the same magnitude both times
            assert a[key] is not None and b[key] is not None, (key, a, b)
            assert same_magnitude(a[key], b[key]), (a["rate"], key, a[key], b[key])
        # a loopback broker's plain producer-to-consumer hop costs milliseconds, never seconds
        assert b["raw_p50_ms"] < 1000, b
    # every invocation, and every run inside it, has topics of its own
    assert first["bench_id"] != second["bench_id"]
    run_ids = [json.loads((tmp_path / p["folder"] / "summary.json").read_text())["run_id"]
               for p in first["probes"] + second["probes"]]
    assert len(set(run_ids)) == len(run_ids)
    assert all(first["bench_id"] in r for r in run_ids[:len(RATES)])
    assert all(second["bench_id"] in r for r in run_ids[len(RATES):])
