"""Watching runs as a person does: the live view in a real terminal (tmux), ``ppipe tail``
from another terminal (folder and scores topic), ``ppipe runs``, and the report
rendered in headless Chromium and looked at."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import require_infra
from tests.helpers import (Kafka, Labels, Load, Pipeline, Scenario, Scoring, example, iris, ppipe,
                           start_ppipe, summary_of)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]



def write_scenario(folder: Path, duration: str = "4s", bootstrap: str = "embedded") -> Path:
    return Scenario(name="watch", seed=2, dataset=iris(shuffle=True),
                    load=Load(rate=100, duration=duration, warmup="500ms", drain="3s"),
                    labels=Labels(delay="200ms"),
                    pipelines=[Pipeline(name="river", command=example("river_online")),
                               Pipeline(name="echo", command=example("echo"))],
                    scoring=Scoring(metrics=["accuracy"]),
                    kafka=Kafka(bootstrap=bootstrap)).write(folder, "watch.toml")


@pytest.fixture(scope="module")
def finished_run():
    """One real, short run shared by the report tests."""
    folder = Path(tempfile.mkdtemp(prefix="ppipe-watch-"))
    result = ppipe("run", str(write_scenario(folder)), "--plain", "--out", str(folder / "run"),
                   timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    yield folder / "run"
    shutil.rmtree(folder, ignore_errors=True)


def screenshot(page: Path, png: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        require_infra("headless Chromium is needed to look at the report (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="ppipe-chromium-")
    try:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", f"--user-data-dir={profile}", "--window-size=1200,3000",
                        f"--screenshot={png}", page.resolve().as_uri()],
                       capture_output=True, timeout=120, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_report_is_written_and_renders_with_its_charts(finished_run, tmp_path):
    page = finished_run / "report.html"
    assert page.exists(), "every run writes its report"
    html = page.read_text()
    assert html.count('src="data:image/png;base64,') >= 5  # self-contained charts
    for needle in ("Leaderboard", "Scenario as run", "river", "echo", 'alt="latency_over_time"',
                   'alt="statuses"'):
        assert needle in html, needle
    png = tmp_path / "report.png"
    screenshot(page, png)
    from PIL import Image

    image = Image.open(png).convert("RGB")
    assert image.size == (1200, 3000)
    top = image.crop((0, 0, 1200, 2400))
    colors = top.getcolors(maxcolors=1_000_000)
    assert len(colors) > 500, "charts were drawn (a blank or text-only page has few colours)"
    white = sum(count for count, rgb in colors if min(rgb) > 245)
    assert white / (1200 * 2400) < 0.9, "the page is not mostly empty"
    charts = sorted(p.name for p in (finished_run / "charts").glob("*.png"))
    assert {"latency_over_time.png", "throughput.png", "metric_over_time.png",
            "latency_distribution.png", "statuses.png"} <= set(charts)


def test_report_overlays_two_runs(finished_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(finished_run, other)
    summary = summary_of(other)
    summary["run_id"] = "the-other-run"
    (other / "summary.json").write_text(json.dumps(summary))
    result = ppipe("report", str(finished_run), str(other), "--out", str(tmp_path / "both.html"),
                   timeout=120)
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "both.html").read_text()
    assert "the-other-run" in html and summary["run_id"] in html and "(dashed)" in html


def test_runs_lists_past_runs(finished_run):
    result = ppipe("runs", "--runs-dir", str(finished_run.parent), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout and "accuracy" in result.stdout and "yes" in result.stdout


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def test_live_view_in_a_real_terminal(tmp_path):
    if shutil.which("tmux") is None:
        require_infra("tmux is needed to test the live view (apt-get install tmux)")
    scenario = write_scenario(tmp_path, duration="8s")
    session = f"ppipe-{tmp_path.name[-12:]}"
    _tmux("new-session", "-d", "-s", session, "-x", "170", "-y", "45",
          f"cd {tmp_path} && env -u COLUMNS -u LINES {sys.executable} -m ppipe_stream run {scenario} "
          f"--out {tmp_path / 'run'}; sleep 60")
    try:
        seen_live = None
        screen = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            screen = _tmux("capture-pane", "-p", "-t", session)
            if "dispatching" in screen and "river" in screen and "answered" in screen and "p99 trend" in screen:
                seen_live = screen
            if str(tmp_path / "run") in screen.splitlines()[-1:] or (tmp_path / "run" / "report.html").exists():
                break
            time.sleep(0.5)
        assert seen_live is not None, f"the live view never showed the leaderboard:\n{screen}"
        assert "sent" in seen_live and "dispatch lag p99" in seen_live
        time.sleep(2)
        final = _tmux("capture-pane", "-p", "-t", session, "-S", "-60")
        assert str(tmp_path / "run") in final
        assert "correct" in final and "missing" in final
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_tail_follows_a_running_folder(tmp_path):
    scenario = write_scenario(tmp_path, duration="6s")
    run = start_ppipe("run", str(scenario), "--plain", "--out", str(tmp_path / "run"),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        tail = ppipe("tail", "--wait", str(tmp_path / "run"), timeout=120)
    finally:
        run.wait(timeout=120)
    assert tail.returncode == 0, tail.stderr
    assert "done" in tail.stdout and "river" in tail.stdout and "echo" in tail.stdout


def test_tail_reads_the_scores_topic(tansu_broker, tmp_path):
    scenario = write_scenario(tmp_path, duration="6s", bootstrap=tansu_broker.bootstrap)
    run = start_ppipe("run", str(scenario), "--plain", "--out", str(tmp_path / "run"),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        summary = tmp_path / "run" / "summary.json"
        deadline = time.monotonic() + 60
        while not summary.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        run_id = json.loads(summary.read_text())["run_id"]
        tail = ppipe("tail", "--bootstrap", tansu_broker.bootstrap, "--run-id", run_id, timeout=120)
    finally:
        run.wait(timeout=120)
    assert tail.returncode == 0, tail.stderr
    assert run_id in tail.stdout and "river" in tail.stdout and "answered" in tail.stdout


def test_rendered_report_leads_with_its_verdict(finished_run, tmp_path):
    """What Chromium renders reads verdict first: outcome, thresholds, validity, the
    leaderboard, then the charts (the split among them); no Python reprs."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        require_infra("headless Chromium is needed to look at the report (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="ppipe-chromium-")
    try:
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update",
                              f"--user-data-dir={profile}", "--dump-dom",
                              (finished_run / "report.html").resolve().as_uri()],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    parser = Text()
    parser.feed(dom)
    text = " ".join(parser.parts)
    assert text.index("outcome") < text.index("validity") < text.index("Leaderboard") \
        < text.index("Charts") < text.index("Details of"), text[:400]
    assert 'alt="latency_split"' in dom and 'alt="resources"' in dom
    head = text.split("Scenario as run")[0]
    for repr_ in ("None", "True", "False"):
        assert repr_ not in head, repr_
