"""Shared test helpers: infrastructure that must exist in CI, per-test topic prefixes."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import NoReturn

import pytest


def require_infra(reason: str) -> NoReturn:
    """Skip on a developer machine without the infrastructure; fail in CI
    (``PPIPE_REQUIRE_INFRA=1``, set by scripts/test), so CI never passes by skipping."""
    if os.environ.get("PPIPE_REQUIRE_INFRA") == "1":
        pytest.fail(f"required infrastructure missing: {reason}")
    pytest.skip(reason)


def compose_tool() -> list[str]:
    """The compose command: the docker CLI's compose plugin, else Debian's docker-compose."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    require_infra("no compose tool (apt-get install docker-compose)")


@pytest.fixture
def topic_prefix(request) -> str:
    """A topic prefix of this test's own."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40]
    return f"t.{name}.{uuid.uuid4().hex[:8]}"


def answer_dataset(path: Path, rows: int) -> Path:
    """A csv whose row ``i`` carries its own truth (``odd``/``even``) as a feature, so
    a pipeline's right and wrong answers are known exactly."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["x", "answer", "label"])
        for i in range(rows):
            truth = "odd" if i % 2 else "even"
            writer.writerow([i, truth, truth])
    return path


@pytest.fixture(autouse=True)
def _summaries_fit_the_results_model(request):
    """Every summary.json an integration or e2e test leaves in its tmp_path fits the
    results model (and so docs/results.schema.json): checked after the test."""
    checked = ("tmp_path" in request.fixturenames
               and request.node.path.parent.name in ("integration", "e2e"))
    tmp_path = request.getfixturevalue("tmp_path") if checked else None
    yield
    if tmp_path is None:
        return
    from tests.summary_check import read_summary

    for path in sorted(tmp_path.rglob("summary.json")):
        read_summary(path)
