"""The Prometheus exporter (view/prometheus.py): the families it serves are the summary's
and the timeline's figures, the Grafana dashboard asks only for series it serves, and
its endpoint binds, serves, lingers for the final figures and frees its port."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ppipe_stream.brokers import free_port
from ppipe_stream.errors import UsageError
from ppipe_stream.results.model import TimelineRow, to_summary
from ppipe_stream.view.prometheus import METRICS, FiguresCollector, MetricsServer
from ppipe_stream.watch.incidents import IncidentKind
from tests.helpers import refused

ROOT = Path(__file__).resolve().parents[2]

SUMMARY = {
    "run_id": "r-1", "scenario": "s", "outcome": "running", "duration_s": 12.5,
    "dispatch": {"events_sent": 1200, "labels_sent": 1100, "dropped": 3, "target_rate": 100.0,
                 "achieved_rate": 99.5, "lag_ms": {"p50": 1.5, "p99": 12.0, "max": 40.0}},
    "harness": {"loop_lateness_ms": {"p50": 0.5, "p99": 4.0, "max": 9.0, "samples": 100}},
    "validity": {"valid": False, "reasons": ["starved"]},
    "pipelines": {"a": {"predictions": 1000, "throughput_eps": 98.0, "missing_ratio": 0.01,
                        "status": {"correct": 900, "incorrect": 90, "deadline_exceeded": 10, "missing": 12,
                                   "syntax_error": 2, "duplicate": 1, "unknown": 0},
                        "late_after_drain": 4,
                        "latency_ms": {"mean": 8.0, "p50": 5.0, "p90": 9.0, "p99": 20.0, "p999": 35.0},
                        "metrics": {"accuracy": 0.909, "f1": None},
                        "container": {"restarts": 2, "hung_now": True}}},
    "incidents": [{"t_s": 1.0, "kind": "fault", "target": "a"},
                  {"t_s": 2.0, "kind": "pipeline_restart", "target": "a"},
                  {"t_s": 3.0, "kind": "pipeline_restart", "target": "a"}],
}
WINDOW = TimelineRow(time_s=11.0, pipeline="a", answered=97, throughput_eps=97.0,
                     latency_p50_ms=4.0, latency_p99_ms=16.0)


def scraped(collector: FiguresCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample the collector serves, parsed as a scraper does: (name, labels) -> value."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def full() -> FiguresCollector:
    collector = FiguresCollector()
    collector.publish_summary(to_summary(SUMMARY))
    collector.publish_windows([WINDOW])
    return collector


def test_served_values_are_the_summarys_and_the_last_windows():
    s = scraped(full())
    assert s[("ppipe_run_info", (("run_id", "r-1"), ("scenario", "s")))] == 1
    assert s[("ppipe_run_outcome", (("outcome", "running"),))] == 1
    assert s[("ppipe_run_outcome", (("outcome", "complete"),))] == 0
    assert s[("ppipe_run_valid", ())] == 0
    assert s[("ppipe_events_sent_total", ())] == 1200
    assert s[("ppipe_labels_sent_total", ())] == 1100
    assert s[("ppipe_events_dropped_total", ())] == 3
    assert s[("ppipe_dispatch_lag_seconds", (("quantile", "0.99"),))] == pytest.approx(0.012)
    assert s[("ppipe_dispatch_lag_max_seconds", ())] == pytest.approx(0.040)
    assert s[("ppipe_loop_lateness_seconds", (("quantile", "0.5"),))] == pytest.approx(0.0005)
    assert s[("ppipe_answers_total", (("pipeline", "a"),))] == 1000
    status = {dict(labels)["status"]: v for (name, labels), v in s.items() if name == "ppipe_status_total"}
    assert status == {"correct": 900, "incorrect": 90, "deadline_exceeded": 10, "missing": 12,
                      "syntax_error": 2, "duplicate": 1, "unknown": 0, "late_after_drain": 4}
    latency = {dict(labels)["quantile"]: v for (name, labels), v in s.items() if name == "ppipe_latency_seconds"}
    assert latency == pytest.approx({"0.5": 0.005, "0.9": 0.009, "0.99": 0.020, "0.999": 0.035})
    window = {dict(labels)["quantile"]: v for (name, labels), v in s.items()
              if name == "ppipe_window_latency_seconds"}
    assert window == pytest.approx({"0.5": 0.004, "0.99": 0.016})
    assert s[("ppipe_window_start_seconds", (("pipeline", "a"),))] == 11.0
    assert s[("ppipe_metric_value", (("metric", "accuracy"), ("pipeline", "a")))] == pytest.approx(0.909)
    assert not any(dict(labels).get("metric") == "f1" for _, labels in s)  # no value yet: no sample
    assert s[("ppipe_pipeline_restarts_total", (("pipeline", "a"),))] == 2
    assert s[("ppipe_pipeline_hung", (("pipeline", "a"),))] == 1
    incidents = {dict(labels)["kind"]: v for (name, labels), v in s.items() if name == "ppipe_incidents_total"}
    assert incidents == {**dict.fromkeys([k.value for k in IncidentKind], 0.0), "fault": 1, "pipeline_restart": 2}


def test_before_the_first_summary_only_the_families_are_served():
    assert scraped(FiguresCollector()) == {}


def test_a_later_window_replaces_the_pipelines_last_one():
    collector = full()
    collector.publish_windows([TimelineRow(time_s=12.0, pipeline="a", answered=0)])
    s = scraped(collector)
    assert s[("ppipe_window_start_seconds", (("pipeline", "a"),))] == 12.0
    assert not any(name == "ppipe_window_latency_seconds" for name, _ in s)  # no answers in it


def test_every_dashboard_expression_names_served_series():
    served = {name for name, _ in scraped(full())}
    assert served >= {f"{n}_total" for n, f in METRICS.items() if f.kind == "counter"}
    dashboard = json.loads((ROOT / "docs" / "grafana" / "ppipe.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"]]
    assert len(exprs) > 15
    asked = set()
    for expr in exprs:
        names = set(re.findall(r"\bppipe_[a-z0-9_]+", expr))
        assert names, expr
        asked |= names
        assert names <= served, (expr, names - served)
    families = {name.removesuffix("_total").removesuffix("_info") for name in asked}
    not_shown = {"ppipe_throughput_eps", "ppipe_window_start_seconds"}  # the answers' rate shows both
    assert families == set(METRICS) - not_shown, set(METRICS) ^ families


def test_server_serves_then_frees_its_port():
    port = free_port()
    server = MetricsServer.start(port)
    with server:
        server.publish_summary(to_summary(SUMMARY))
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "ppipe_events_sent_total 1200.0" in text
    assert refused(port)


def test_a_port_in_use_is_one_usage_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UsageError) as caught:
            MetricsServer.start(port)
    assert str(caught.value) == f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}: in use"


def test_linger_serves_the_final_figures_once_then_stops():
    port = free_port()
    server = MetricsServer.start(port)
    server.publish_summary(to_summary(SUMMARY))
    final = to_summary({**SUMMARY, "outcome": "complete", "dispatch": {"events_sent": 1300}})
    server.publish_summary(final)
    last: list[str] = []

    def scrape_until_refused() -> None:
        while True:
            try:
                last.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
            except OSError:
                return

    scraper = threading.Thread(target=scrape_until_refused)
    scraper.start()
    server.close(linger_s=120)  # returns at the first scrape after the end, not after 120 s
    scraper.join(timeout=30)
    assert not scraper.is_alive()
    assert server.collector.served_after_end.is_set()
    assert "ppipe_events_sent_total 1300.0" in last[-1]
    assert 'ppipe_run_outcome{outcome="complete"} 1.0' in last[-1]
    assert refused(port)
