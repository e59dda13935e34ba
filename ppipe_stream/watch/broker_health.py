"""The broker health watch: is each bootstrap node answering the Kafka API, and how fast?

Owns probing, a few times a second, every ``host:port`` of the run's bootstrap
with the smallest Kafka request (ApiVersions; a bare TCP connect on TLS
listeners, where a plaintext request cannot be read), timing each answer (the
broker's own response time), and turning what it sees into the run's
:class:`~ppipe_stream.watch.incidents.IncidentLog`:

- **down**: the connection is refused or dropped, two probes in a row (one
  failed probe on a loaded machine is not an outage): ``broker_down`` ...
  ``broker_up``;
- **stalled**: the node is there but gives no answer within ``stall_after``
  (``[validity] max_broker_response``; a frozen or overloaded broker):
  ``broker_stall`` ... ``broker_stall_end``. A node already down stays down
  until it answers (a restarting JVM is not also a stall).

Each probe runs in a worker thread with a blocking socket, so the time it
measures is the broker's and the network's, not the harness's own event loop
being late. Its figures are a typed snapshot, :meth:`BrokerWatch.statistics`,
and per window :meth:`BrokerWatch.slowest_between`. :meth:`BrokerWatch.in_trouble`
tells the pipelines' hang watch when the broker, not a pipeline, is the one
not moving. It never touches topics, producers or consumers: the clients ride
out an outage on their own; this only says when it happened and how slow the
broker was.
"""

from __future__ import annotations

import collections
import enum
import socket
import time
from typing import NamedTuple

import anyio
from anyio.abc import TaskStatus

from ..brokers.process import api_versions_request
from ..scoring.hist import new_histogram, quantiles_ms
from .incidents import IncidentLog

__all__ = ["BrokerWatch", "ProbeOutcome", "ProbeResult", "ResponseStats", "measure", "probe",
           "probe_result", "split_node"]

INTERVAL_S = 0.25
TIMEOUT_S = 1.0  # the default stall bound: [validity] max_broker_response
FAILURES_FOR_DOWN = 2
SUSPECT_AFTER_S = 0.5  # a probe unanswered this long: the broker is a suspect (hangs wait)
_RECENT = 4096  # probes kept for the timeline's per-window figure (17 min at 4 a second)


class ProbeOutcome(enum.StrEnum):
    """What one probe saw."""

    ANSWERED = "answered"
    REFUSED = "refused"  # refused, reset or closed: nothing is serving there (down)
    NO_ANSWER = "no_answer"  # no answer (or no connection) within the timeout: stalled


class ProbeResult(NamedTuple):
    """One probe: its outcome and, when answered, the round trip in ms."""

    outcome: ProbeOutcome
    response_ms: float | None = None


class ResponseStats(NamedTuple):
    """The broker's response time to the watch's probes so far (ms; None before an answer)."""

    probes: int
    unanswered: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def summary(self) -> dict[str, float | int | None]:
        """``summary.json``'s ``broker.response_ms``."""
        return {"p50": self.p50_ms, "p99": self.p99_ms, "max": self.max_ms, "probes": self.probes,
                "unanswered": self.unanswered}


def split_node(node: str) -> tuple[str, int]:
    """``host:port`` (``[v6-address]:port`` too) as (host, port)."""
    host, _, port = node.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def measure(host: str, port: int, *, tls: bool = False, timeout: float = TIMEOUT_S) -> ProbeResult:
    """One blocking probe (run it in a thread): ApiVersions (a TCP connect with ``tls``)
    answered within ``timeout`` from the first byte sent, timed."""
    began = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if not tls:
                sock.settimeout(max(timeout - (time.monotonic() - began), 0.001))
                sock.sendall(api_versions_request())
                size = sock.recv(4)
                if len(size) < 4 or int.from_bytes(size[:4], "big") <= 0:
                    return ProbeResult(ProbeOutcome.REFUSED)
    except TimeoutError:
        return ProbeResult(ProbeOutcome.NO_ANSWER)
    except OSError:
        return ProbeResult(ProbeOutcome.REFUSED)
    return ProbeResult(ProbeOutcome.ANSWERED, (time.monotonic() - began) * 1000)


async def probe_result(host: str, port: int, *, tls: bool = False,
                       timeout: float = TIMEOUT_S) -> ProbeResult:
    """:func:`measure` in a worker thread (abandoned if the caller is cancelled)."""
    return await anyio.to_thread.run_sync(lambda: measure(host, port, tls=tls, timeout=timeout),
                                          abandon_on_cancel=True)


async def probe(host: str, port: int, *, tls: bool = False, timeout: float = TIMEOUT_S) -> bool:
    """True when ``host:port`` answers an ApiVersions request (accepts a TCP
    connection, with ``tls``) within ``timeout``."""
    return (await probe_result(host, port, tls=tls, timeout=timeout)).outcome is ProbeOutcome.ANSWERED


class _State(enum.Enum):
    UP = "up"
    DOWN = "down"
    STALLED = "stalled"


class BrokerWatch:
    """Probes every node of ``bootstrap``; start with ``tg.start(watch.run)``."""

    def __init__(self, bootstrap: str, incidents: IncidentLog, *, tls: bool = False,
                 interval: float = INTERVAL_S, stall_after: float = TIMEOUT_S) -> None:
        self.nodes = [node.strip() for node in bootstrap.split(",") if node.strip()]
        self._incidents = incidents
        self._tls = tls
        self._interval = interval
        self.stall_after = stall_after
        self._failures = dict.fromkeys(self.nodes, 0)
        self._state = dict.fromkeys(self.nodes, _State.UP)
        self._last_up_ns: dict[str, int] = {}
        self._asked_ns: dict[str, int] = {}  # node -> when its probe now under way was sent
        self._histogram = new_histogram()  # response times, microseconds
        self._recent: collections.deque[tuple[int, float]] = collections.deque(maxlen=_RECENT)
        self._unanswered = 0
        self.trouble_ended_ns = 0  # when the last outage or stall of any node ended
        self.probes = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.check()
            await anyio.sleep(self._interval)

    async def check(self) -> None:
        """Probe every node once, concurrently, and record what changed."""
        results: dict[str, ProbeResult] = {}

        async def one(node: str) -> None:
            host, port = split_node(node)
            self._asked_ns[node] = time.time_ns()
            try:
                results[node] = await probe_result(host, port, tls=self._tls, timeout=self.stall_after)
            finally:
                self._asked_ns.pop(node, None)

        async with anyio.create_task_group() as tg:
            for node in self.nodes:
                tg.start_soon(one, node)
        self.probes += 1
        now = time.time_ns()
        for node, result in results.items():
            self._record(node, result, now)

    def _record(self, node: str, result: ProbeResult, now: int) -> None:
        state = self._state[node]
        if result.outcome is ProbeOutcome.ANSWERED:
            assert result.response_ms is not None
            self._histogram.record_value(max(1, int(result.response_ms * 1000)))
            self._recent.append((now, result.response_ms))
            self._failures[node] = 0
            if state is _State.STALLED:
                self._incidents.broker_stall(node, False, now_ns=now)
            self._incidents.broker_state(node, True, now_ns=now)
            if state is not _State.UP:
                self.trouble_ended_ns = now
            self._state[node] = _State.UP
            self._last_up_ns[node] = now
            return
        self._unanswered += 1
        self._failures[node] += 1
        since = self._last_up_ns.get(node, now)
        if result.outcome is ProbeOutcome.NO_ANSWER and state is _State.UP:
            self._state[node] = _State.STALLED  # one probe unanswered for stall_after is a stall
            self._incidents.broker_stall(node, True, now_ns=now, since_ns=since,
                                         bound_s=self.stall_after)
        elif result.outcome is ProbeOutcome.REFUSED and state is not _State.DOWN \
                and self._failures[node] >= FAILURES_FOR_DOWN:
            if state is _State.STALLED:  # frozen, then gone
                self._incidents.broker_stall(node, False, now_ns=now)
            self._state[node] = _State.DOWN
            self._incidents.broker_state(node, False, now_ns=now, down_since_ns=since)

    # -- what others read -------------------------------------------------------
    def in_trouble(self, now_ns: int) -> bool:
        """Whether some node is down or stalled now, or its probe under way has waited
        more than half a second (a stall may be beginning)."""
        if any(state is not _State.UP for state in self._state.values()):
            return True
        limit = int(SUSPECT_AFTER_S * 1e9)
        return any(now_ns - asked > limit for asked in list(self._asked_ns.values()))

    def statistics(self) -> ResponseStats:
        """The response-time snapshot (``summary.json``'s ``broker.response_ms``)."""
        figures = quantiles_ms(self._histogram, ("p50", "p99"))
        return ResponseStats(self._histogram.get_total_count() + self._unanswered, self._unanswered,
                             figures["p50"], figures["p99"], figures["max"])

    def slowest_between(self, start_ns: int, end_ns: int) -> float | None:
        """The slowest answer to a probe that ended in ``[start_ns, end_ns)``, in ms
        (timeline.csv's ``broker_response_ms``; None when no probe was answered then)."""
        times = [ms for at, ms in list(self._recent) if start_ns <= at < end_ns]
        return round(max(times), 3) if times else None
