"""``ppipe run --metrics-port`` as a user runs it (the CLI in a subprocess, the echo
pipeline, the embedded broker): Prometheus exposition while the run goes, its counts
growing, the final figures (those of summary.json) served before the endpoint stops,
the port free once ``ppipe`` exited (after the end, Ctrl+C or a failure), and a port
in use refused in one line before anything starts."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ppipe_stream.brokers import free_port
from tests.helpers import (Load, Pipeline, Scenario, Scoring, ppipe, refused, start_ppipe,
                           summary_of)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]



def scrape(port: int) -> Samples | None:
    """The endpoint's samples, parsed as Prometheus does; None when nothing answers."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape_run(proc: subprocess.Popen[str], port: int, *, timeout: float = 240) -> list[Samples]:
    """Every successful scrape from the endpoint's first answer until it stops answering
    after ``ppipe`` ended (or began to end)."""
    scrapes: list[Samples] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples = scrape(port)
        if samples is not None:
            scrapes.append(samples)
        elif scrapes or proc.poll() is not None:
            return scrapes
        time.sleep(0.2)
    raise AssertionError("the metrics endpoint kept answering")


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def scenario(tmp_path: Path, *, duration: str, pipeline: Pipeline | None = None) -> Path:
    return Scenario(name="metrics", seed=5, load=Load(rate=100, duration=duration, drain="2s"),
                    pipelines=[pipeline or Pipeline(name="echo")],
                    scoring=Scoring(task="classification", deadline="1s",
                                    metrics=["accuracy"])).write(tmp_path)


def test_live_metrics_grow_and_end_with_the_summarys_figures(tmp_path):
    port, out = free_port(), tmp_path / "run"
    proc = start_ppipe("run", str(scenario(tmp_path, duration="4s")), "--plain", "--out", str(out),
                       "--metrics-port", str(port), "--metrics-linger", "120s", cwd=tmp_path)
    scrapes = scrape_run(proc, port)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert refused(port)
    assert f"ppipe: serving the final metrics on port {port} until scraped" in stderr

    live = [s for s in scrapes if s.get(("ppipe_run_outcome", (("outcome", "running"),))) == 1]
    sent = [value(s, "ppipe_events_sent_total") for s in live]
    assert len(set(sent)) >= 2 and sent == sorted(sent), sent  # growing while the run goes
    answered = [value(s, "ppipe_answers_total", pipeline="echo") for s in live]
    assert answered == sorted(answered) and answered[-1] > 0, answered
    assert ("ppipe_latency_seconds", (("pipeline", "echo"), ("quantile", "0.99"))) in live[-1]
    assert any(("ppipe_window_latency_seconds", (("pipeline", "echo"), ("quantile", "0.99"))) in s
               for s in live)
    assert ("ppipe_dispatch_lag_seconds", (("quantile", "0.99"),)) in live[-1]
    assert ("ppipe_incidents_total", (("kind", "pipeline_exit"),)) in live[-1]

    final, summary = scrapes[-1], summary_of(out)
    assert value(final, "ppipe_run_outcome", outcome="complete") == 1
    assert value(final, "ppipe_run_info", run_id=summary["run_id"], scenario="metrics") == 1
    dispatch, echo = summary["dispatch"], summary["pipelines"]["echo"]
    assert value(final, "ppipe_events_sent_total") == dispatch["events_sent"] > sent[0]
    assert value(final, "ppipe_labels_sent_total") == dispatch["labels_sent"]
    assert value(final, "ppipe_events_dropped_total") == dispatch["dropped"]
    assert value(final, "ppipe_answers_total", pipeline="echo") == echo["predictions"] > 0
    for status, count in echo["status"].items():
        assert value(final, "ppipe_status_total", pipeline="echo", status=status) == count, status
    assert value(final, "ppipe_latency_seconds", pipeline="echo", quantile="0.99") == \
        pytest.approx(echo["latency_ms"]["p99"] / 1000)
    assert value(final, "ppipe_metric_value", pipeline="echo", metric="accuracy") == \
        pytest.approx(echo["metrics"]["accuracy"])
    assert sum(v for (name, _), v in final.items() if name == "ppipe_incidents_total") == \
        len(summary["incidents"])


def test_ctrl_c_stops_the_endpoint_without_lingering(tmp_path):
    port, out = free_port(), tmp_path / "run"
    proc = start_ppipe("run", str(scenario(tmp_path, duration="60s")), "--plain", "--out", str(out),
                       "--metrics-port", str(port), "--metrics-linger", "120s", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        samples = scrape(port) or {}
        if samples.get(("ppipe_events_sent_total", ()), 0) > 50:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "serving the final metrics" not in stderr  # no wait for a scrape after Ctrl+C
    assert refused(port)


def test_ctrl_c_while_lingering_ends_the_wait_and_keeps_the_runs_exit_code(tmp_path):
    port, out = free_port(), tmp_path / "run"
    proc = start_ppipe("run", str(scenario(tmp_path, duration="3s")), "--plain", "--out", str(out),
                       "--metrics-port", str(port), "--metrics-linger", "600s", cwd=tmp_path)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # nothing scrapes: it waits for a scrape after the run
        lines.append(line)
        if "ppipe: serving the final metrics" in line:
            break
    assert lines and "serving the final metrics" in lines[-1], "".join(lines)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines) + stderr  # the run passed: Ctrl+C only ended the wait
    assert stdout.strip().splitlines()[-1] == str(out)
    assert refused(port)


def test_a_failed_run_serves_its_last_figures_then_stops(tmp_path):
    port, out = free_port(), tmp_path / "run"
    exits = Pipeline(name="echo", command=["python", "-c", "import sys; sys.exit(3)"])
    proc = start_ppipe("run", str(scenario(tmp_path, duration="3s", pipeline=exits)), "--plain",
                       "--out", str(out), "--metrics-port", str(port), "--metrics-linger", "120s",
                       cwd=tmp_path)
    scrapes = scrape_run(proc, port)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    assert refused(port)
    assert value(scrapes[-1], "ppipe_run_outcome", outcome="failed") == 1
    assert summary_of(out)["outcome"] == "failed"


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path):
    path, out = scenario(tmp_path, duration="3s"), tmp_path / "run"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = ppipe("run", str(path), "--plain", "--out", str(out), "--metrics-port", str(port),
                       cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.output
    assert result.error_lines() == [
        f"ppipe: error: --metrics-port {port}: cannot listen on 127.0.0.1:{port}: in use"]
    assert not out.exists()


@pytest.mark.parametrize(("args", "why"), [
    (["--metrics-port", "0"], "argument --metrics-port: '0': give a port from 1 to 65535"),
    (["--metrics-port", "http"], "argument --metrics-port: 'http': give a port from 1 to 65535"),
    (["--metrics-linger", "30s"], "--metrics-host and --metrics-linger go with --metrics-port"),
])
def test_metrics_options_misused_are_one_line(tmp_path, args, why):
    result = ppipe("run", str(scenario(tmp_path, duration="3s")), *args, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.output
    assert len(result.error_lines()) == 1 and why in result.error_lines()[0], result.stderr
