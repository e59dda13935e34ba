"""Incidents: what happened to the run's infrastructure while it ran.

Owns the record of discrete happenings a user needs beside the figures: an
injected fault, a broker node going down or coming back, stalling (there, but
not answering within ``[validity] max_broker_response``) and answering again, a pipeline replica
exiting, being restarted, hanging or recovering. Each is stamped with the
seconds since the run's start, logged, appended to ``incidents.jsonl`` in the
run folder as it happens (so a crash keeps it), and summed up for
``summary.json`` (``incidents``, ``broker.outages`` and ``broker.stalls``) and
the timeline's ``incidents`` column (:meth:`IncidentLog.statistics` is the typed
snapshot the results builder reads). It decides nothing: the health watch, the runners'
supervision and the fault injector report here.
"""

from __future__ import annotations

import enum
import json
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec
import structlog

if TYPE_CHECKING:
    from ..results.model import Outage

__all__ = ["Incident", "IncidentKind", "IncidentLog", "IncidentStatistics", "describe"]

log = structlog.get_logger(__name__)


class IncidentKind(enum.StrEnum):
    """What happened."""

    FAULT = "fault"  # an injected fault began ([[faults]])
    FAULT_END = "fault_end"  # an injected fault with a duration ended
    BROKER_DOWN = "broker_down"  # a broker node stopped answering the Kafka API
    BROKER_UP = "broker_up"  # ... and answers again
    BROKER_STALL = "broker_stall"  # a broker node is there but gave no answer within the bound
    BROKER_STALL_END = "broker_stall_end"  # ... and answers again in time
    PIPELINE_EXIT = "pipeline_exit"  # a replica ended on its own (crash, OOM, kill)
    PIPELINE_RESTART = "pipeline_restart"  # a replica was started again by policy
    PIPELINE_HANG = "pipeline_hang"  # alive, events waiting, no answer for hang_after
    PIPELINE_RECOVERED = "pipeline_recovered"  # answers again after a hang


class Incident(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One happening: when (seconds since the run's start and wall-clock ns), what, to whom."""

    t_s: float
    wall_ns: int  # when it began
    seen_ns: int  # when it was recorded (the timeline places it by this: rows already written stay)
    kind: IncidentKind
    target: str  # a pipeline's name, "broker" or "broker:<host:port>", or "rows"
    detail: str = ""
    detected_after_s: float | None = None  # for failures: from when it began to when it was seen
    duration_s: float | None = None  # for ends and recoveries: how long it lasted


class IncidentStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A typed snapshot of the incident log at one moment."""

    incidents: tuple[Incident, ...]
    outages: tuple[Outage, ...]  # each broker node's down intervals, an open one ending now
    downtime_s: float  # the outages' durations summed
    stalls: tuple[Outage, ...] = ()  # each node's stalled intervals (up, answering too slowly)
    stalled_s: float = 0.0


class IncidentLog:
    """The run's incidents, in order; also written to ``incidents.jsonl`` as they come."""

    def __init__(self, start_ns: int, path: Path | None = None) -> None:
        self.start_ns = start_ns
        self.items: list[Incident] = []
        self._out: IO[str] | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self._down_since: dict[str, int] = {}  # broker node -> wall ns it went down
        self._stalled_since: dict[str, int] = {}  # broker node -> wall ns it last answered in time

    def record(self, kind: IncidentKind, target: str, detail: str = "", *,
               at_ns: int | None = None, detected_after_s: float | None = None,
               duration_s: float | None = None) -> Incident:
        seen = time.time_ns()
        now = at_ns if at_ns is not None else seen
        incident = Incident(t_s=round((now - self.start_ns) / 1e9, 3), wall_ns=now, seen_ns=seen, kind=kind,
                            target=target, detail=detail,
                            detected_after_s=None if detected_after_s is None else round(detected_after_s, 3),
                            duration_s=None if duration_s is None else round(duration_s, 3))
        self.items.append(incident)
        log.warning(f"incident.{kind}", target=target,  # noqa: G004 - the event is named for its kind detail=detail, t_s=incident.t_s,
                    detected_after_s=incident.detected_after_s, duration_s=incident.duration_s)
        if self._out is not None:
            self._out.write(json.dumps(msgspec.to_builtins(incident)) + "\n")
            self._out.flush()
        return incident

    # -- broker availability ---------------------------------------------------
    def broker_state(self, node: str, up: bool, *, now_ns: int, down_since_ns: int | None = None) -> None:
        """A node's availability as the health watch saw it; records only changes.
        ``down_since_ns`` is the last moment it was seen up (the outage began after it)."""
        if not up and node not in self._down_since:
            began = down_since_ns if down_since_ns is not None else now_ns
            self._down_since[node] = began
            self.record(IncidentKind.BROKER_DOWN, f"broker:{node}", "no answer to the Kafka API",
                        at_ns=began, detected_after_s=(now_ns - began) / 1e9)
        elif up and node in self._down_since:
            began = self._down_since.pop(node)
            self.record(IncidentKind.BROKER_UP, f"broker:{node}", "answers again", at_ns=now_ns,
                        duration_s=(now_ns - began) / 1e9)

    def broker_stall(self, node: str, stalled: bool, *, now_ns: int, since_ns: int | None = None,
                     bound_s: float | None = None) -> None:
        """A node stalled (``stalled``: there, but no answer within ``bound_s`` since
        ``since_ns``, its last answer) or answers again; records only changes."""
        if stalled and node not in self._stalled_since:
            began = since_ns if since_ns is not None else now_ns
            self._stalled_since[node] = began
            bound = f" within {bound_s:g} s" if bound_s is not None else ""
            self.record(IncidentKind.BROKER_STALL, f"broker:{node}",
                        f"the broker is there but gave no answer to the Kafka API{bound}: "
                        "missing and late answers from now on are the broker's",
                        at_ns=began, detected_after_s=(now_ns - began) / 1e9)
        elif not stalled and node in self._stalled_since:
            began = self._stalled_since.pop(node)
            self.record(IncidentKind.BROKER_STALL_END, f"broker:{node}", "answers again",
                        at_ns=now_ns, duration_s=(now_ns - began) / 1e9)

    def outages(self, now_ns: int | None = None) -> list[dict[str, Any]]:
        """Each node's down intervals (an open one ends at ``now_ns``)."""
        return self._intervals(IncidentKind.BROKER_DOWN, IncidentKind.BROKER_UP, now_ns)

    def stalls(self, now_ns: int | None = None) -> list[dict[str, Any]]:
        """Each node's stalled intervals (an open one ends at ``now_ns``), shaped as outages."""
        return self._intervals(IncidentKind.BROKER_STALL, IncidentKind.BROKER_STALL_END, now_ns)

    def _intervals(self, begin: IncidentKind, end: IncidentKind,
                   now_ns: int | None) -> list[dict[str, Any]]:
        out = []
        opened: dict[str, Incident] = {}
        for item in self.items:
            if item.kind is begin:
                opened[item.target] = item
            elif item.kind is end and item.target in opened:
                down = opened.pop(item.target)
                out.append(_outage(down, item.wall_ns, self.start_ns, ended=True))
        last = now_ns if now_ns is not None else time.time_ns()
        out.extend(_outage(down, last, self.start_ns, ended=False) for down in opened.values())
        return sorted(out, key=lambda o: o["start_s"])

    # -- views ----------------------------------------------------------------
    def statistics(self, now_ns: int | None = None) -> IncidentStatistics:
        """The incidents and the broker's outages so far (an open one ends at ``now_ns``)."""
        from ..results.model import Outage  # results.model reads IncidentKind from here

        outages = tuple(msgspec.convert(o, Outage) for o in self.outages(now_ns))
        stalls = tuple(msgspec.convert(o, Outage) for o in self.stalls(now_ns))
        return IncidentStatistics(incidents=tuple(self.items), outages=outages,
                                  downtime_s=round(sum(o.duration_s for o in outages), 3),
                                  stalls=stalls, stalled_s=round(sum(o.duration_s for o in stalls), 3))

    def between(self, start_ns: int, end_ns: int) -> str:
        """The incidents of ``[start_ns, end_ns)`` as one short text (a timeline cell)."""
        return "; ".join(f"{i.kind} {i.target}" + (f" ({i.detail})" if i.detail else "")
                         for i in self.items if start_ns <= i.seen_ns < end_ns)

    def summary(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in msgspec.to_builtins(i).items() if k not in ("wall_ns", "seen_ns")}
                for i in self.items]

    def recent(self, n: int = 4) -> list[str]:
        """The last ``n`` incidents as one line each (the live view shows them)."""
        return [describe(i) for i in self.summary()[-n:]]

    def count(self, kind: IncidentKind, target: str | None = None) -> int:
        return sum(1 for i in self.items if i.kind is kind and (target is None or i.target == target))

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def describe(incident: dict[str, Any]) -> str:
    """One line for an incident as ``summary.json`` holds it."""
    text = f"{incident['t_s']:7.2f}s  {incident['kind']}  {incident['target']}"
    if incident.get("detail"):
        text += f": {incident['detail']}"
    if incident.get("detected_after_s") is not None:
        text += f" (seen after {incident['detected_after_s']:.2f} s)"
    if incident.get("duration_s") is not None:
        text += f" (lasted {incident['duration_s']:.2f} s)"
    return text


def _outage(down: Incident, end_ns: int, start_ns: int, *, ended: bool) -> dict[str, Any]:
    return {"node": down.target.removeprefix("broker:"),
            "start_s": round((down.wall_ns - start_ns) / 1e9, 3),
            "end_s": round((end_ns - start_ns) / 1e9, 3),
            "duration_s": round((end_ns - down.wall_ns) / 1e9, 3),
            "ended": ended}
