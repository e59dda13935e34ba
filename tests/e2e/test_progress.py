"""Long set-up is never silent (``ppipe run --plain`` in a subprocess): each step
(the embedded broker, the pipelines' image, each pipeline) prints a line with the
time elapsed as it starts, and the broker's start-up time is in summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, ppipe, summary_of

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def local(text: str) -> str:
    """A scenario of scenarios/ runnable from a temporary folder, short, without thresholds
    (a loaded machine may miss them: this test is about the steps shown)."""
    text = text.replace('path = "data/iris.csv"', f'path = "{ROOT / "scenarios" / "data" / "iris.csv"}"')
    text = text.replace('"../examples/', f'"{ROOT / "examples"}/')
    text = text.replace('duration = "20s"', 'duration = "2s"').replace('warmup = "2s"', 'warmup = "0s"')
    head, _, rest = text.partition("[thresholds]")
    return head + "[kafka]" + rest.partition("[kafka]")[2] if rest else text


def run_plain(tmp_path: Path, text: str) -> tuple[str, dict[str, Any]]:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    out = tmp_path / "run"
    result = ppipe("run", str(path), "--plain", "--out", str(out), cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr
    return result.stderr, summary_of(out)


def test_embedded_kafka_start_is_shown_and_timed(tmp_path):
    text = local((ROOT / "scenarios" / "quickstart.toml").read_text())
    text = text.replace('bootstrap = "embedded"', 'bootstrap = "embedded"\nembedded = "kafka"')
    stderr, summary = run_plain(tmp_path, text)
    lines = stderr.splitlines()
    kafka = [k for k, line in enumerate(lines) if "ppipe: starting the embedded broker (Apache Kafka" in line]
    pipeline = [k for k, line in enumerate(lines) if "ppipe: starting pipeline 'river-logreg' (" in line]
    assert kafka and pipeline and kafka[0] < pipeline[0], stderr
    assert summary["broker"]["kind"] == "kafka" and summary["broker"]["started"] is True
    assert 0.5 < summary["broker"]["startup_s"] < 120


@pytest.mark.docker
def test_pipeline_image_step_is_shown(tmp_path):
    text = local((ROOT / "scenarios" / "docker-quickstart.toml").read_text())
    stderr, summary = run_plain(tmp_path, text)
    assert "ppipe: preparing the pipelines' image (" in stderr, stderr
    assert "ppipe: starting the sandbox network (" in stderr, stderr
    assert "ppipe: starting the embedded broker (Apache Kafka" in stderr, stderr
    assert summary["broker"]["startup_s"] is not None
