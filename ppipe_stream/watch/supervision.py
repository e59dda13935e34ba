"""Pipeline supervision: telling a hung pipeline from a slow one, and acting on it.

Owns the hang rule. A pipeline is *hung* when an event sent **after its last
output** (answer, reply, even garbage) has waited longer than the pipeline's
``hang_after`` with nothing coming out: a slow pipeline still answers, so it is
never hung, only late; an idle one was sent nothing since it last spoke (an
event it answered with garbage waits forever, yet it was answered), so it is
never hung either. The hang began when the oldest such event was sent; the time
from then to the check that saw it is reported as ``detected_after_s``. ``on_hang = "restart"`` kills the
replicas so their restart policy starts them again. A hung pipeline that
answers again has *recovered*. A pipeline is never called hung while the
broker is the one not moving: when the broker watch says the broker is down,
stalled or slow to answer right now, the check waits, and after the broker is
back a pipeline's waiting is counted from then (the broker's incident names it;
the pipeline is not blamed for what the broker held up). Exits and restarts are the runners' to report;
the figures are the scorer's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import structlog

from .incidents import IncidentKind, IncidentLog

if TYPE_CHECKING:
    from ..runtime.base import Runner


class BrokerHealth(Protocol):
    """What the hang rule reads from the broker watch (``broker_health.BrokerWatch``)."""

    trouble_ended_ns: int  # when the broker's last outage or stall ended (0: none yet)

    def in_trouble(self, now_ns: int) -> bool:
        """Whether the broker is down, stalled, or slow to answer a probe right now."""
        ...

__all__ = ["BrokerHealth", "HangWatch"]

log = structlog.get_logger(__name__)


class HangWatch:
    """Checks every pipeline for hangs; call :meth:`check` a few times a second."""

    def __init__(self, specs: list[Any], *, scorer: Any, runners: dict[str, Runner],
                 incidents: IncidentLog, start_ns: int, broker: BrokerHealth | None = None) -> None:
        self._specs = specs
        self._scorer = scorer
        self._runners = runners
        self._incidents = incidents
        self._start_ns = start_ns
        self._broker = broker
        self._hung_since: dict[str, int] = {}  # pipeline -> when its hang began
        self.hangs: dict[str, int] = {s.name: 0 for s in specs}

    async def check(self, now_ns: int) -> None:
        broker_held_up = self._broker is not None and self._broker.in_trouble(now_ns)
        for spec in self._specs:
            name = spec.name
            last = self._scorer.last_output_ns(name)
            if name in self._hung_since:
                if last is not None and last > self._hung_since[name]:
                    began = self._hung_since.pop(name)
                    self._incidents.record(IncidentKind.PIPELINE_RECOVERED, name, "answers again",
                                           duration_s=(last - began) / 1e9)
                continue
            began = self._scorer.waiting_after(name, last)
            if began is None or broker_held_up:
                continue
            if self._broker is not None:  # waiting while the broker was out is not the pipeline's
                began = max(began, self._broker.trouble_ended_ns)
            if now_ns - began <= int(float(spec.hang_after) * 1e9):
                continue
            runner = self._runners.get(name)
            if runner is not None and runner.running == 0:
                continue  # not hung but gone: its runner reported the exit
            self._hung_since[name] = began
            self.hangs[name] += 1
            self._incidents.record(IncidentKind.PIPELINE_HANG, name,
                                   f"events waiting, no output for {spec.hang_after}", at_ns=now_ns,
                                   detected_after_s=(now_ns - began) / 1e9)
            if spec.on_hang == "restart" and runner is not None:
                log.warning("pipeline.restart_hung", pipeline=name)
                await runner.kill(None)

    def summary(self, name: str) -> dict[str, Any]:
        return {"hangs": self.hangs.get(name, 0), "hung_now": name in self._hung_since}
