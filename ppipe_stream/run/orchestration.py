"""One run of a scenario, from broker to summary: the orchestration of ``ppipe run``.

Owns the order of things (broker and topics, output reader, pipelines and their
readiness, the run's parts on one clock, the ticker, the dispatch, the drain,
the stop) and the cleanup: one AsyncExitStack whose callbacks run shielded with
a timeout, so Ctrl+C, SIGTERM or a crash still leave a readable partial result
(``"complete": false``). When the run stops, and why, is the
:class:`~ppipe_stream.run.tracker.RunTracker`'s; the broker is
:mod:`.broker_start`'s, the pipelines :mod:`.pipelines`', the parts
:mod:`.parts`', the tick :mod:`.ticker`'s, the live frame :mod:`.progress`'s,
the summary :mod:`.summary_writer`'s. It computes no figure itself.
"""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import structlog
from aiokafka import AIOKafkaProducer

from .. import protocol
from ..dispatch.dispatcher import producer_settings
from ..dispatch.workers import DispatchWorkers
from ..errors import PpipeError, RunError, ScenarioError, first_leaf
from ..results.builder import summary_dict
from ..results.model import Summary
from ..runtime import Runner
from ..scenario import LoadedScenario, dump_scenario
from ..security import ClientSecurity, SecretMissing
from ..view.live import Frame
from ..runtime.egress import EgressWatch
from ..watch.broker_health import BrokerWatch
from ..watch.incidents import IncidentLog
from ..watch.loop_lag import LoopLateness
from .broker_start import RunBroker, start_broker
from .cleanup import Shield
from .folder import RunFolder
from .logs import close_logging, configure_logging
from .metadata import RunMeta
from .output_reader import OutputReader
from .parts import RunParts, assemble
from .pipelines import start_pipelines, wait_ready
from .preflight import check_before_run, check_machine
from .progress import LiveView, Progress, RunState
from .summary_writer import SummaryWriter
from .ticker import Ticker
from .timeline import TimelineWriter
from .tracker import RunTracker

if TYPE_CHECKING:  # imported by the CLI only with --metrics-port
    from ..view.prometheus import LiveFigures

__all__ = ["LiveView", "RunOutcome", "RunState", "run_scenario"]

log = structlog.get_logger(__name__)


class RunOutcome(msgspec.Struct, kw_only=True):
    """What ``ppipe run`` reports: the folder, the summary (as written: plain data, and
    ``results``, the same as a :class:`~ppipe_stream.results.model.Summary`), and how it ended."""

    folder: Path
    summary: dict[str, Any]
    results: Summary
    passed: bool
    complete: bool
    interrupted: bool = False
    error: str | None = None


async def run_scenario(loaded: LoadedScenario, *, out: Path | None = None,
                       on_update: Callable[[Frame], None] | None = None,
                       runs_root: Path = Path("runs"), force: bool = False,
                       meta: RunMeta | None = None, metrics: LiveFigures | None = None) -> RunOutcome:
    """Run ``loaded`` to the end (or to the first Ctrl+C) and write its folder
    (``force``: into an ``out`` that holds files already; ``meta``: what the command line said;
    ``metrics``: where each summary and timeline window also goes, ``--metrics-port``'s endpoint).
    The scenario is first checked against its data and this machine (``ppipe validate``'s
    checks): a problem is a ScenarioError before any folder, broker or pipeline."""
    check_before_run(loaded)
    scenario = loaded.scenario
    security = _client_security(loaded)
    folder = RunFolder.create(scenario.name, out=out, root=runs_root, force=force, meta=meta,
                              embedded=scenario.kafka.embedded if scenario.kafka.bootstrap == "embedded" else None)
    configure_logging(folder.path, secrets=security.secrets)
    # its paths made absolute: the copy validates and runs again from the run folder
    folder.write_text("scenario.toml", dump_scenario(loaded.anchored()))
    run = _Run(loaded, folder, on_update or (lambda view: None), security, metrics)
    try:
        return await run.execute()
    finally:
        folder.close()
        close_logging()


class _Run:
    """The start order and the cleanup of one run."""

    def __init__(self, loaded: LoadedScenario, folder: RunFolder,
                 on_update: Callable[[Frame], None], security: ClientSecurity,
                 metrics: LiveFigures | None = None) -> None:
        scenario = self.scenario = loaded.scenario
        self.loaded, self.folder, self.security = loaded, folder, security
        self.topics = protocol.Topics(prefix=f"ppipe.{folder.run_id}")
        self.tracker = RunTracker(scenario)
        self.shield = Shield(self.tracker)
        self.broker = RunBroker(scenario)  # its kind named even if the run fails first
        self.runners: list[Runner] = []
        self.workers: DispatchWorkers | None = None
        self.incidents = IncidentLog(time.time_ns(), folder.file("incidents.jsonl"))
        self.lateness = LoopLateness()
        self.progress = Progress(scenario, run_id=folder.run_id, on_update=on_update,
                                 runners=self.runners, incidents=self.incidents, lateness=self.lateness)
        self.timeline = TimelineWriter(folder=folder, runners=self.runners, incidents=self.incidents,
                                       window_ns=scenario.scoring.window.ns,
                                       worker_pids=lambda: self.workers.pids if self.workers else [],
                                       broker_pids=self.broker.pids, metrics=metrics)
        self.summary = SummaryWriter(scenario, folder=folder, broker=self.broker, runners=self.runners,
                                     incidents=self.incidents, tracker=self.tracker,
                                     lateness=self.lateness, timeline=self.timeline, metrics=metrics)
        self.parts: RunParts | None = None

    # -- the run ------------------------------------------------------------
    async def execute(self) -> RunOutcome:
        complete = False
        tracker = self.tracker
        try:
            # the signal watch outlives the body, so a second Ctrl+C is heard during the
            # cleanup too (the run's Apache Kafka takes seconds to stop cleanly)
            async with anyio.create_task_group() as watch:
                body = anyio.CancelScope()
                watch.start_soon(self._watch_signals, body)
                try:
                    async with AsyncExitStack() as stack:
                        with body:
                            check_machine(self.scenario)
                            await start_broker(self.broker, stack, scenario=self.scenario,
                                               folder=self.folder, topics=self.topics,
                                               security=self.security, shield=self.shield,
                                               step=self.progress.step)
                            await self._run_body(stack)
                            complete = True
                finally:
                    watch.cancel_scope.cancel()
        except Exception as exc:  # any crash still writes a partial result
            leaf = first_leaf(exc)
            if isinstance(leaf, PpipeError):
                self.summary.error = str(leaf).splitlines()[0]
                raise leaf from None
            log.error("run.failed", exc_info=exc)
            self.summary.error = f"{type(leaf).__name__}: {leaf}"
            raise RunError(f"the run failed: {self.summary.error} (details in "
                           f"{self.folder.file('log.jsonl')}; partial results in {self.folder.path})") from exc
        finally:
            summary = self.summary.write(complete=complete and not tracker.interrupted)
            self.incidents.close()
            if self.parts is not None:  # a failed or interrupted run closes them too
                self.parts.hlogs.close()
                if self.parts.proctor is not None:
                    self.parts.proctor.close()
        complete = complete and not tracker.interrupted
        return RunOutcome(folder=self.folder.path, summary=summary_dict(summary), results=summary,
                          passed=summary.passed and complete, complete=complete,
                          interrupted=tracker.interrupted, error=self.summary.error)

    async def _watch_signals(self, scope: anyio.CancelScope) -> None:
        # SIGHUP too: a closed terminal must not orphan the broker and the pipelines
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            async for signum in signals:
                was_hard = self.tracker.hard_stop
                if self.tracker.interrupt(signal.Signals(signum).name):  # the second: stop at once,
                    if not was_hard:                                     # the cleanup under way too
                        self._kill_everything()
                        self.shield.cut_short()
                    continue
                scope.cancel()

    def _kill_everything(self) -> None:
        """SIGKILL the pipelines and the run's broker now; cleanup then finds them gone
        and waits for nothing (its timeouts shrink too)."""
        for runner in self.runners:
            try:
                runner.kill_now()
            except Exception:  # keep killing the others
                log.exception("run.hard_stop_failed", pipeline=runner.name)
        self.broker.kill_now()

    async def _run_body(self, stack: AsyncExitStack) -> None:
        scenario, kafka, shield, bootstrap = self.scenario, self.scenario.kafka, self.shield, self.broker.bootstrap
        producer = AIOKafkaProducer(**producer_settings(kafka, bootstrap, self.security))
        await producer.start()
        stack.push_async_callback(shield.call, producer.stop)
        reader = OutputReader(bootstrap, {self.topics.output(p.name): p.name for p in scenario.pipelines},
                              partitions=kafka.partitions, security=self.security)
        if scenario.load.workers > 1:  # processes take a while: started before the clock is fixed
            self.workers = DispatchWorkers(self.loaded, bootstrap=bootstrap, topic=self.topics.input,
                                           log_dir=self.folder.path, with_rows=bool(scenario.commands))
            stack.push_async_callback(self.workers.stop)
            await self.workers.start()
        async with anyio.create_task_group() as tg:
            # a TLS listener cannot read a plaintext probe: it is probed by connecting
            broker_watch = BrokerWatch(bootstrap, self.incidents, tls=self.security.tls,
                                       stall_after=float(scenario.validity.max_broker_response))
            await tg.start(broker_watch.run)
            if self.broker.egress is not None and self.broker.sandbox is not None:
                # a broker the cluster's metadata comes to advertise is let through too
                tg.start_soon(EgressWatch(bootstrap, self.broker.sandbox, security=self.security).run)
            await tg.start(reader.run)
            stack.push_async_callback(shield.call, reader.stop)
            await start_pipelines(self.runners, stack, loaded=self.loaded, folder=self.folder,
                                  topics=self.topics, broker=self.broker, security=self.security,
                                  incidents=self.incidents, shield=shield, step=self.progress.step)
            for runner in self.runners:
                tg.start_soon(runner.supervise)
            self.progress.set_state(RunState.READY)
            self.progress.emit()
            await wait_ready(self.runners, ready=reader.ready, commands=producer,
                             control_topic=self.topics.control)
            parts = self._assemble(reader, producer, broker_watch)
            await tg.start(self.lateness.run)  # the harness's own loop, for the whole run
            tg.start_soon(Ticker(parts, runners=self.runners, progress=self.progress, timeline=self.timeline,
                                 summary=self.summary, tracker=self.tracker, publisher=producer,
                                 scores_topic=self.topics.scores).run)
            self.progress.set_state(RunState.DISPATCHING)
            dispatch_done = anyio.Event()

            async def dispatch() -> None:
                await parts.dispatch.run(clock=parts.clock)
                dispatch_done.set()

            tg.start_soon(dispatch)
            if parts.injector is not None:
                stack.push_async_callback(shield.call, parts.injector.undo, 60.0)
                tg.start_soon(parts.injector.run, parts.clock)
            if parts.proctor is not None:
                tg.start_soon(parts.proctor.run, producer, parts.clock)
            wall_end = self.tracker.wall_bound(parts.dispatch)
            await self.tracker.dispatching(parts.dispatch, wall_end)
            self.progress.set_state(RunState.DRAINING)
            await self.tracker.draining(scorer=parts.scorer, proctor=parts.proctor, runners=self.runners,
                                        dispatch_done=dispatch_done, wall_end=wall_end)
            self.progress.set_state(RunState.STOPPING)
            final = msgspec.structs.replace(self.progress.frame(), state=str(RunState.DONE))
            await producer.send_and_wait(self.topics.scores, msgspec.json.encode(final))
            tg.cancel_scope.cancel()

    def _assemble(self, reader: OutputReader, producer: AIOKafkaProducer,
                  broker_watch: BrokerWatch) -> RunParts:
        """Build the run's parts on its clock; from now on the writers and the view read them."""
        # What exists now (imports, clients, the plan) lives until the end: collected once here and
        # frozen, a full collection during the run does not walk it (50-100 ms with the loop held)
        gc.collect()
        gc.freeze()
        parts = self.parts = assemble(
            self.loaded, folder=self.folder, topic=self.topics.input, reader=reader, producer=producer,
            workers=self.workers, runners=self.runners, incidents=self.incidents, broker=self.broker,
            broker_watch=broker_watch, control_topic=self.topics.control)
        self.summary.parts, self.summary.started_ns = parts, parts.started_ns
        self.timeline.hlogs, self.timeline.started_ns = parts.hlogs, parts.started_ns
        self.timeline.broker_watch = broker_watch
        self.progress.dispatch, self.progress.view.started_ns = parts.dispatch, parts.started_ns
        return parts


def _client_security(loaded: LoadedScenario) -> ClientSecurity:
    """The run's resolved [kafka.security]; a missing password_env is a one-line error."""
    try:
        return ClientSecurity.resolve(loaded.scenario.kafka.security, base_dir=loaded.base_dir)
    except SecretMissing as exc:
        raise ScenarioError(str(loaded.path), str(exc), path=f"$.kafka.security.{exc.key}",
                            hint=f"export {exc.variable}=... before the run" if exc.variable
                            else None) from None
