"""Live figures for Prometheus: what ``ppipe run --metrics-port PORT`` serves.

Owns :class:`LiveFigures`, the seam the run's writers hand their figures to
(each second's partial ``summary.json`` as a :class:`~ppipe_stream.results.model.Summary`,
the final one last, and each closed timeline window as a
:class:`~ppipe_stream.results.model.TimelineRow`); :class:`FiguresCollector`,
which turns the latest of them into Prometheus metric families when scraped;
and :class:`MetricsServer`, the HTTP endpoint on a registry of its own (never
prometheus_client's global one), bound before the run starts and shut down
with it. It computes no figure: every value is one the summary or the timeline
holds, converted to Prometheus' base units (ms to seconds). ``METRICS`` names
every family served; docs/results.md describes them.

Threads: the writers publish on the run's event loop, the server collects on
its own threads. A publish replaces one frozen snapshot, so a scrape reads
one moment's figures, never half of two.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator, Sequence
from socketserver import ThreadingMixIn
from typing import Literal, NamedTuple, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import msgspec
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from ..errors import UsageError
from ..results.model import UNSET, Outcome, StatusCounts, Summary, TimelineRow
from ..watch.incidents import IncidentKind

__all__ = ["Family", "FiguresCollector", "LiveFigures", "METRICS", "MetricsServer"]


class Family(NamedTuple):
    """One metric family served: its type, its labels, its help text."""

    kind: Literal["counter", "gauge", "info"]
    labels: tuple[str, ...]
    help: str


_P, _Q = ("pipeline",), ("quantile",)

# every family served, by name; a counter's samples end in _total, an info's in _info
METRICS: dict[str, Family] = {
    "ppipe_run": Family("info", (), "the run: its id and scenario"),
    "ppipe_run_outcome": Family("gauge", ("outcome",),
                                "1 for the run's outcome so far (running, then complete, interrupted or failed)"),
    "ppipe_run_elapsed_seconds": Family("gauge", (), "seconds since the run's clock started"),
    "ppipe_run_valid": Family("gauge", (), "1 while nothing makes the figures invalid, 0 once something does"),
    "ppipe_events_sent": Family("counter", (), "events the dispatcher sent, warm-up included"),
    "ppipe_labels_sent": Family("counter", (), "labels the dispatcher sent"),
    "ppipe_events_dropped": Family("counter", (), "events not sent within max_lag of their time"),
    "ppipe_dispatch_lag_seconds": Family("gauge", _Q, "dispatch lag (sent minus intended time), cumulative"),
    "ppipe_dispatch_lag_max_seconds": Family("gauge", (), "the largest dispatch lag so far"),
    "ppipe_dispatch_target_rate_eps": Family("gauge", (), "the schedule's rate, events per second"),
    "ppipe_dispatch_achieved_rate_eps": Family("gauge", (), "the rate sent so far, events per second"),
    "ppipe_loop_lateness_seconds": Family("gauge", _Q, "how late the harness's event loop woke"),
    "ppipe_answers": Family("counter", _P, "scored answers (correct + incorrect + deadline_exceeded)"),
    "ppipe_status": Family("counter", ("pipeline", "status"),
                           "scored events and bad answers by status (summary.json's status, late_after_drain)"),
    "ppipe_throughput_eps": Family("gauge", _P, "scored answers per second over the scored period"),
    "ppipe_latency_seconds": Family("gauge", ("pipeline", "quantile"),
                                    "latency from intended send to answer read, cumulative"),
    "ppipe_latency_mean_seconds": Family("gauge", _P, "mean latency, cumulative"),
    "ppipe_window_latency_seconds": Family("gauge", ("pipeline", "quantile"),
                                           "latency in the last closed timeline window"),
    "ppipe_window_throughput_eps": Family("gauge", _P, "answers per second in the last closed timeline window"),
    "ppipe_window_start_seconds": Family("gauge", _P,
                                         "start of the last closed timeline window, seconds after the run's start"),
    "ppipe_metric_value": Family("gauge", ("pipeline", "metric"), "the scenario's metrics (e.g. accuracy), cumulative"),
    "ppipe_missing_ratio": Family("gauge", _P, "missing events over scored events"),
    "ppipe_pipeline_restarts": Family("counter", _P, "restarts of the pipeline's replicas"),
    "ppipe_pipeline_hung": Family("gauge", _P, "1 while the pipeline is hung"),
    "ppipe_incidents": Family("counter", ("kind",),
                              "incidents by kind (faults, broker outages and stalls, exits, restarts, hangs)"),
}

_QUANTILES = {"p50": "0.5", "p90": "0.9", "p99": "0.99", "p999": "0.999"}
_STATUSES = tuple(field.name for field in msgspec.structs.fields(StatusCounts))


class LiveFigures(Protocol):
    """Where the run's writers hand their figures as they write them (never blocks)."""

    def publish_summary(self, summary: Summary) -> None:
        """The summary just written (partial each second, the final one last)."""
        ...

    def publish_windows(self, rows: Sequence[TimelineRow]) -> None:
        """Timeline rows just written: closed windows, one row per pipeline."""
        ...


class _Snapshot(msgspec.Struct, frozen=True):
    summary: Summary | None = None
    windows: dict[str, TimelineRow] = {}  # the last closed window of each pipeline


def _s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


class FiguresCollector(Collector):
    """A prometheus_client collector over the latest figures published; a :class:`LiveFigures`."""

    def __init__(self) -> None:
        self._snapshot = _Snapshot()
        self._ended = False
        self.served_after_end = threading.Event()  # a scrape read the figures after end()

    def publish_summary(self, summary: Summary) -> None:
        self._snapshot = msgspec.structs.replace(self._snapshot, summary=summary)

    def publish_windows(self, rows: Sequence[TimelineRow]) -> None:
        if rows:
            windows = {**self._snapshot.windows, **{row.pipeline: row for row in rows}}
            self._snapshot = msgspec.structs.replace(self._snapshot, windows=windows)

    def end(self) -> None:
        """No more figures will come: the next scrape reads the final ones."""
        self._ended = True

    def describe(self) -> Iterator[Metric]:
        """The families served (names only; registration checks them against clashes)."""
        return iter(_families().values())

    def collect(self) -> Iterator[Metric]:
        ended = self._ended  # read before the figures: when set, they are the last
        snap = self._snapshot
        families = _families()
        if snap.summary is not None:
            _fill(families, snap.summary)
        _fill_windows(families, snap.windows)
        if ended:
            self.served_after_end.set()
        return iter(families.values())


def _families() -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for name, family in METRICS.items():
        kind = {"info": InfoMetricFamily, "counter": CounterMetricFamily, "gauge": GaugeMetricFamily}[family.kind]
        out[name] = kind(name, family.help, labels=list(family.labels))
    return out


def _add(family: Metric, labels: Sequence[str], value: float | None) -> None:
    if value is not None:
        assert isinstance(family, CounterMetricFamily | GaugeMetricFamily)
        family.add_metric(list(labels), float(value))


def _quantiles(family: Metric, head: Sequence[str], figures: msgspec.Struct) -> None:
    """The figures' p50, p90, p99, p999 (those it has), ms as seconds."""
    for key, quantile in _QUANTILES.items():
        value = getattr(figures, key, None)
        _add(family, [*head, quantile], _s(value))


def _fill(f: dict[str, Metric], summary: Summary) -> None:
    info = f["ppipe_run"]
    assert isinstance(info, InfoMetricFamily)
    info.add_metric([], {"run_id": summary.run_id, "scenario": summary.scenario})
    outcome = summary.outcome if summary.outcome is not UNSET else Outcome.RUNNING
    for state in Outcome:
        _add(f["ppipe_run_outcome"], [state.value], 1.0 if state == outcome else 0.0)
    _add(f["ppipe_run_elapsed_seconds"], [], summary.duration_s)
    _add(f["ppipe_run_valid"], [], 1.0 if summary.validity.valid else 0.0)
    d = summary.dispatch
    _add(f["ppipe_events_sent"], [], d.events_sent)
    _add(f["ppipe_labels_sent"], [], d.labels_sent)
    _add(f["ppipe_events_dropped"], [], d.dropped)
    _quantiles(f["ppipe_dispatch_lag_seconds"], [], d.lag_ms)
    _add(f["ppipe_dispatch_lag_max_seconds"], [], _s(d.lag_ms.max))
    _add(f["ppipe_dispatch_target_rate_eps"], [], d.target_rate)
    _add(f["ppipe_dispatch_achieved_rate_eps"], [], d.achieved_rate)
    if summary.harness is not UNSET:
        _quantiles(f["ppipe_loop_lateness_seconds"], [], summary.harness.loop_lateness_ms)
    for name, p in summary.pipelines.items():
        _add(f["ppipe_answers"], [name], p.predictions)
        for status in _STATUSES:
            _add(f["ppipe_status"], [name, status], getattr(p.status, status))
        _add(f["ppipe_status"], [name, "late_after_drain"], p.late_after_drain)
        _add(f["ppipe_throughput_eps"], [name], p.throughput_eps)
        _quantiles(f["ppipe_latency_seconds"], [name], p.latency_ms)
        _add(f["ppipe_latency_mean_seconds"], [name], _s(p.latency_ms.mean))
        for metric, value in p.metrics.items():
            _add(f["ppipe_metric_value"], [name, metric], value)
        if p.missing_ratio is not UNSET:
            _add(f["ppipe_missing_ratio"], [name], p.missing_ratio)
        if p.container is not UNSET:
            _add(f["ppipe_pipeline_restarts"], [name], p.container.restarts)
            _add(f["ppipe_pipeline_hung"], [name], 1.0 if p.container.hung_now else 0.0)
    counts = dict.fromkeys(IncidentKind, 0)
    for incident in summary.incidents:
        counts[incident.kind] += 1
    for kind, count in counts.items():
        _add(f["ppipe_incidents"], [kind.value], count)


def _fill_windows(f: dict[str, Metric], windows: dict[str, TimelineRow]) -> None:
    for name, row in windows.items():
        _add(f["ppipe_window_latency_seconds"], [name, "0.5"], _s(row.latency_p50_ms))
        _add(f["ppipe_window_latency_seconds"], [name, "0.99"], _s(row.latency_p99_ms))
        _add(f["ppipe_window_throughput_eps"], [name], row.throughput_eps)
        _add(f["ppipe_window_start_seconds"], [name], row.time_s)


# -- the endpoint ----------------------------------------------------------------------

class _Handler(WSGIRequestHandler):
    timeout = 5.0  # a client that connects and sends nothing cannot hold the run's exit

    def log_message(self, format: str, *args: object) -> None:
        pass  # the live view owns the terminal


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = False  # server_close() waits for each response under way: none is cut off


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """The exposition endpoint over a :class:`FiguresCollector`; a :class:`LiveFigures` too.

    :meth:`start` binds at once (a :class:`~ppipe_stream.errors.UsageError` when it cannot:
    a port in use, a host not of this machine); :meth:`close` shuts it down, once the final
    figures were scraped or ``linger_s`` passed, whichever comes first.
    """

    def __init__(self, server: WSGIServer, collector: FiguresCollector) -> None:
        self.collector = collector
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="ppipe-metrics", daemon=True)
        self._thread.start()
        self._closed = False

    @classmethod
    def start(cls, port: int, host: str = "127.0.0.1") -> MetricsServer:
        registry = CollectorRegistry(auto_describe=False)
        collector = FiguresCollector()
        registry.register(collector)
        kind = _Server6 if ":" in host else _Server
        try:
            server = make_server(host, port, make_wsgi_app(registry), server_class=kind, handler_class=_Handler)
        except OSError as exc:
            why = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise UsageError(f"--metrics-port {port}: cannot listen on {host}:{port}: {why}") from None
        return cls(server, collector)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def publish_summary(self, summary: Summary) -> None:
        self.collector.publish_summary(summary)

    def publish_windows(self, rows: Sequence[TimelineRow]) -> None:
        self.collector.publish_windows(rows)

    def close(self, linger_s: float = 0.0) -> None:
        """Stop serving; with ``linger_s``, first wait (at most that long) for one scrape of
        the final figures: Ctrl+C ends the wait (the run is over; its exit code stands).
        The port is free when this returns."""
        if self._closed:
            return
        self._closed = True
        self.collector.end()
        try:
            if linger_s > 0:
                self.collector.served_after_end.wait(linger_s)
        except KeyboardInterrupt:
            pass
        finally:
            self._server.shutdown()
            self._server.server_close()  # joins the responses under way
            self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
