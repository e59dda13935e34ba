"""Resource use as a user reads it (``ppipe run`` in a subprocess): a process
pipeline's CPU and memory, its children included, and the harness's and the
embedded broker's own, in the timeline and on the report's resources chart."""

from __future__ import annotations

import csv
import sys

import pytest

from tests.helpers import Load, Pipeline, Scenario, Scoring, ppipe

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# the model runs in a child of a shell: the child's use must count too
WRAPPED = Pipeline(name="wrapped", command=[
    "sh", "-c", f"{sys.executable} -m ppipe_stream.examples.river_online; exit $?"])


def test_process_pipeline_harness_and_broker_use_are_measured(tmp_path):
    path = Scenario(name="resources", load=Load(rate=100, duration="4s", drain="2s"),
                    pipelines=[WRAPPED], scoring=Scoring(task="classification")).write(tmp_path)
    out = tmp_path / "run"
    result = ppipe("run", str(path), "--plain", "--out", str(out), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    with open(out / "timeline.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    busy = [r for r in rows if r["cpu_percent"] not in ("", None)]
    assert len(busy) >= 3, rows
    # python with river loaded holds well over 40 MiB; the shell alone holds about 1
    assert max(float(r["memory_mib"]) for r in busy) > 40
    assert max(float(r["cpu_percent"]) for r in busy) > 0
    for who in ("harness", "broker"):
        values = [float(r[f"{who}_memory_mib"]) for r in rows if r[f"{who}_memory_mib"]]
        assert values and max(values) > 5, who
    assert (out / "charts" / "resources.png").exists()
