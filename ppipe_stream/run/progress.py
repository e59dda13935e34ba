"""What a run shows while it goes: its state, its long set-up steps, its live frame.

Owns :class:`RunState`, the :class:`LiveView` the ticker updates, and
:class:`Progress`: the live :class:`~ppipe_stream.view.live.Frame` (the
display's, and what the scores topic carries for ``ppipe tail``), handing it to
the display (a display bug is logged, never stops a run), and :meth:`Progress.step`,
a long set-up shown with its time while it goes. It reads the dispatch, the
runners, the incidents and the loop lateness; it changes none of them.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import msgspec
import structlog

from ..dispatch.base import Dispatch
from ..results.model import DispatchFigures, HarnessFigures, LagFigures, LatenessFigures
from ..results.validity import schedule_verdict
from ..runtime import Runner
from ..scenario.calibration import floor_name
from ..scenario.model import Scenario
from ..scoring.hist import quantiles_ms
from ..view.live import Frame
from ..watch.incidents import IncidentLog
from ..watch.loop_lag import LoopLateness
from .tracker import planned_seconds

__all__ = ["LiveView", "Progress", "RunState"]

log = structlog.get_logger(__name__)

T = TypeVar("T")


class RunState(enum.StrEnum):
    """Where a run is; shown by the live display."""

    STARTING = "starting"
    READY = "waiting for pipelines"
    DISPATCHING = "dispatching"
    DRAINING = "draining"
    STOPPING = "stopping"
    DONE = "done"


class LiveView(msgspec.Struct, kw_only=True):
    """What the display reads while the run goes (updated every tick)."""

    state: RunState = RunState.STARTING
    started_ns: int = 0
    planned_s: float | None = None
    planned_events: int | None = None
    pipelines: dict[str, dict[str, Any]] = {}


class Progress:
    """The run's live view and frame; ``dispatch`` is set once the dispatcher exists."""

    def __init__(self, scenario: Scenario, *, run_id: str, on_update: Callable[[Frame], None],
                 runners: Sequence[Runner], incidents: IncidentLog, lateness: LoopLateness) -> None:
        self.view = LiveView(planned_s=planned_seconds(scenario), planned_events=scenario.load.count)
        self.dispatch: Dispatch | None = None
        self._scenario = scenario
        self._run_id = run_id
        self._on_update = on_update
        self._runners = runners
        self._incidents = incidents
        self._lateness = lateness
        self._step_label: str | None = None  # long set-up shown while it goes

    def set_state(self, state: RunState) -> None:
        self.view.state = state

    def frame(self) -> Frame:
        """The live view's frame: also what the scores topic carries for ``ppipe tail``."""
        stats = self.dispatch.stats if self.dispatch is not None else None
        lateness = self._lateness.statistics()
        lag_p99 = quantiles_ms(stats.lag_us, ("p99",))["p99"] if stats else None
        dispatch = DispatchFigures(
            lag_ms=LagFigures(p99=lag_p99), dropped=stats.dropped,
            schedule_lost_at_s=stats.schedule_lost_s,
            stopped_on_overload=stats.overloaded) if stats else DispatchFigures()
        harness = HarnessFigures(loop_lateness_ms=msgspec.convert(lateness.summary(), LatenessFigures))
        view = self.view
        return Frame(
            run_id=self._run_id, state=str(view.state),
            elapsed_s=(time.time_ns() - view.started_ns) / 1e9 if view.started_ns else 0.0,
            planned_s=view.planned_s, events_sent=stats.events_sent if stats else 0,
            target_rate=stats.target_rate if stats else None,
            achieved_rate=round(stats.achieved_rate, 1) if stats else None,
            lag_p99_ms=lag_p99,
            pipelines=view.pipelines or {},
            resources={r.name: None if (use := r.stats()) is None else use.to_dict()
                       for r in self._runners},
            incidents=self._incidents.recent(), dropped=stats.dropped if stats else 0,
            loop_lateness_p99_ms=lateness.p99_ms,
            invalid=schedule_verdict(self._scenario.validity, dispatch, harness, final=False).reasons,
            floor=floor_name(self._scenario))

    def emit(self) -> None:
        """Hand the current frame to the display."""
        try:
            frame = self.frame()
            if self._step_label is not None:
                frame = msgspec.structs.replace(frame, state=self._step_label)
            self._on_update(frame)
        except Exception:
            log.exception("display.failed")

    async def step(self, label: str, work: Callable[[], Awaitable[T]]) -> T:
        """Await ``work()`` while the display shows ``label`` and the time elapsed
        (a spinner's worth of frames: long set-up is never silent); log its time."""
        began = time.monotonic()

        async def show() -> None:
            while True:
                self._step_label = f"{label} ({time.monotonic() - began:.0f}s)"
                self.emit()
                await anyio.sleep(0.25)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(show)
                result = await work()
                tg.cancel_scope.cancel()
        finally:
            self._step_label = None
            log.info("run.step", step=label, seconds=round(time.monotonic() - began, 3))
        return result
