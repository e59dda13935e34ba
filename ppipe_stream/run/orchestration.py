"""One run of a scenario, from broker to summary: the orchestration of ``ppipe run``.

Owns the order of things (broker, topics, output reader, pipelines and their
readiness, dispatcher, drain, stop) and the run folder's contents as the run
goes. Components are started with ``tg.start`` so each is ready before the
next; cleanup runs in ``finally`` under a shielded cancel scope with a timeout,
so Ctrl+C, SIGTERM or a crash still leave a readable partial result
(``"complete": false``). It also runs the run's watchers (broker health, pipeline
hangs) and the fault injector, and puts their incidents into the timeline and
the summary. It computes no figure itself: the dispatcher, the scorer and the
thresholds do.
"""

from __future__ import annotations

import enum
import math
import os
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import msgspec
import structlog
from aiokafka import AIOKafkaProducer

from .. import protocol
from ..brokers import BrokerKind, create_topics, start_tansu
from ..dispatch.workers import DispatchWorkers
from ..dispatch.base import Dispatch, open_plan
from ..dispatch.dispatcher import Dispatcher, producer_settings
from ..errors import PipelineError, PpipeError, RunError, ScenarioError, UsageError, first_leaf
from ..watch.fault_injector import FaultInjector, RowCorruptor
from ..watch.broker_health import BrokerWatch
from ..watch.incidents import IncidentLog
from .logs import close_logging, configure_logging
from ..watch.loop_lag import LoopLateness, lateness_stats
from .metadata import RunMeta
from ..scoring.hist import quantiles_ms
from ..view.live import Frame
from ..results.outcome import Outcome
from .output_reader import READY_COMMAND_ID, OutputReader
from ..proctor import Proctor
from ..watch.resources import TreeSampler
from .folder import RunFolder, iso_utc
from ..results.model import BrokerFigures, DispatchFigures, HarnessFigures, LagFigures, Summary
from ..runtime import ExternalRunner, ProcessRunner, Runner
from ..scenario import DockerPipeline, ExternalPipeline, LoadedScenario, dump_scenario
from ..scenario.faults import CorruptFault, NetworkFault
from ..scoring import HlogFiles, Scorer, ScoringConfig, make_metrics
from ..scoring.thresholds import settled_failures
from ..security import ClientSecurity, SecretMissing
from ..results.builder import RunSnapshots, build_summary, summary_dict
from ..watch.supervision import HangWatch
from ..results.validity import schedule_verdict

__all__ = ["RunOutcome", "RunState", "run_scenario"]

log = structlog.get_logger(__name__)

READY_TIMEOUT_S = 60.0
TICK_S = 0.1
SUMMARY_EVERY_S = 1.0
POLL_EVERY_S = 0.5  # how often pipelines are checked for exits, OOM kills, restarts
WALL_MARGIN_S = 5.0  # a run ends by planned duration + max_lag + drain + this


class RunState(enum.StrEnum):
    """Where a run is; shown by the live display."""

    STARTING = "starting"
    READY = "waiting for pipelines"
    DISPATCHING = "dispatching"
    DRAINING = "draining"
    STOPPING = "stopping"
    DONE = "done"


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


class LiveView(msgspec.Struct, kw_only=True):
    """What the display reads while the run goes (updated every tick)."""

    state: RunState = RunState.STARTING
    started_ns: int = 0
    planned_s: float | None = None
    planned_events: int | None = None
    dispatch: Any = None
    pipelines: dict[str, Any] = {}


async def run_scenario(loaded: LoadedScenario, *, out: Path | None = None,
                       on_update: Callable[[Frame], None] | None = None,
                       runs_root: Path = Path("runs"), force: bool = False,
                       meta: RunMeta | None = None) -> RunOutcome:
    """Run ``loaded`` to the end (or to the first Ctrl+C) and write its folder
    (``force``: into an ``out`` that holds files already; ``meta``: what the command line said).
    The scenario is first checked against its data and this machine (``ppipe validate``'s
    checks): a problem is a ScenarioError before any folder, broker or pipeline."""
    from .preflight import check_before_run

    check_before_run(loaded)
    scenario = loaded.scenario
    security = _client_security(loaded)
    folder = RunFolder.create(scenario.name, out=out, root=runs_root, force=force, meta=meta,
                              embedded=scenario.kafka.embedded if scenario.kafka.bootstrap == "embedded" else None)
    configure_logging(folder.path, secrets=security.secrets)
    # its paths made absolute: the copy validates and runs again from the run folder
    folder.write_text("scenario.toml", dump_scenario(loaded.anchored()))
    run = _Run(loaded, folder, on_update or (lambda view: None), security)
    try:
        return await run.execute()
    finally:
        folder.close()
        close_logging()


class _Run:
    def __init__(self, loaded: LoadedScenario, folder: RunFolder,
                 on_update: Callable[[Frame], None], security: ClientSecurity) -> None:
        self.loaded = loaded
        self.security = security
        self.scenario = loaded.scenario
        self.folder = folder
        self.on_update = on_update
        self.topics = protocol.Topics(prefix=f"ppipe.{folder.run_id}")
        self.view = LiveView(planned_s=_planned_seconds(self.scenario),
                             planned_events=self.scenario.load.count)
        self.broker_kind = _planned_broker(self.scenario)  # named even if the run fails first
        self.broker_started = False
        self.bootstrap = self.scenario.kafka.bootstrap
        self.runners: list[Runner] = []
        self.scorer: Scorer | None = None
        self.dispatcher: Dispatch | None = None
        self.started_ns = time.time_ns()
        self._hlogs: HlogFiles | None = None
        self._clock: tuple[int, int] | None = None
        self._docker: Any = None
        self._sandbox: Any = None
        self._base_image = ""
        self.proctor: Proctor | None = None
        self.aborted: str | None = None
        self._abort = anyio.Event()
        self.interrupted = False
        self.hard_stop = False  # a second Ctrl+C: kill everything, wait for nothing
        self._stopping: set[anyio.CancelScope] = set()  # the clean stops under way (_shielded)
        self._tansu: Any = None
        self.error: str | None = None
        self.incidents = IncidentLog(self.started_ns, folder.file("incidents.jsonl"))
        self.broker: Any = None  # the run's own restartable Kafka, when embedded = "kafka"
        self.hang_watch: HangWatch | None = None
        self.injector: FaultInjector | None = None
        self.broker_watch: BrokerWatch | None = None
        self._workers: DispatchWorkers | None = None
        self._step_label: str | None = None  # long set-up shown while it goes
        self.broker_startup_s: float | None = None
        self._harness_use = TreeSampler(self._harness_pids, children=False)
        self._broker_use = TreeSampler(self._broker_pids)
        self.loop_lateness = LoopLateness()

    # -- the run ------------------------------------------------------------
    async def execute(self) -> RunOutcome:
        complete = False
        try:
            # the signal watch outlives the body, so a second Ctrl+C is heard during the
            # cleanup too (the run's Apache Kafka takes seconds to stop cleanly)
            async with anyio.create_task_group() as watch:
                body = anyio.CancelScope()
                watch.start_soon(self._watch_signals, body)
                try:
                    async with AsyncExitStack() as stack:
                        with body:
                            self._preflight()
                            await self._start_broker(stack)
                            await self._run_body(stack)
                            complete = True
                finally:
                    watch.cancel_scope.cancel()
        except Exception as exc:  # noqa: BLE001 - any crash still writes a partial result
            leaf = first_leaf(exc)
            if isinstance(leaf, PpipeError):
                self.error = str(leaf).splitlines()[0]
                raise leaf from None
            log.error("run.failed", exc_info=exc)
            self.error = f"{type(leaf).__name__}: {leaf}"
            raise RunError(f"the run failed: {self.error} (details in {self.folder.file('log.jsonl')}; "
                           f"partial results in {self.folder.path})") from exc
        finally:
            summary = self._write_summary(complete=complete and not self.interrupted)
            self.incidents.close()
            if self._hlogs is not None:  # a failed or interrupted run closes them too
                self._hlogs.close()
        passed = summary.passed and complete and not self.interrupted
        return RunOutcome(folder=self.folder.path, summary=summary_dict(summary), results=summary,
                          passed=passed,
                          complete=complete and not self.interrupted,
                          interrupted=self.interrupted, error=self.error)

    async def _watch_signals(self, scope: anyio.CancelScope) -> None:
        # SIGHUP too: a closed terminal must not orphan the broker and the pipelines
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            async for signum in signals:
                if self.interrupted:  # second Ctrl+C: stop at once, the cleanup under way too
                    if not self.hard_stop:
                        log.warning("run.hard_stop")
                        self._kill_everything()
                    continue
                self.interrupted = True
                log.warning("run.interrupted", signal=signal.Signals(signum).name)
                scope.cancel()

    def _preflight(self) -> None:
        """What the machine must offer, checked before anything is started."""
        if any(isinstance(f, NetworkFault) and f.delay is not None for f in self.scenario.faults):
            from ..watch.fault_injector import netem_available

            if not netem_available():
                raise RunError("a network delay fault needs the kernel's netem queueing discipline "
                               "(sch_netem), which this machine does not have; `loss` alone works")

    def _kill_everything(self) -> None:
        """SIGKILL the pipelines and the run's broker now; cleanup then finds them gone
        and waits for nothing (its timeouts shrink too)."""
        self.hard_stop = True
        for runner in self.runners:
            try:
                runner.kill_now()
            except Exception:  # noqa: BLE001 - keep killing the others
                log.exception("run.hard_stop_failed", pipeline=runner.name)
        for node in (self._tansu, self.broker.node if self.broker else None):
            if node is not None:
                node.kill()
        for scope in list(self._stopping):  # a clean stop under way waits no longer
            scope.cancel()

    async def _shielded(self, fn: Callable[[], Any], timeout: float = 10.0) -> None:
        with anyio.CancelScope(shield=True) as scope, anyio.move_on_after(0.5 if self.hard_stop else timeout):
            self._stopping.add(scope)
            try:
                await fn()
            finally:
                self._stopping.discard(scope)

    async def _in_thread_shielded(self, fn: Callable[[], Any], timeout: float = 15.0,
                                  hard_timeout: float = 2.0) -> None:
        """``fn`` in a thread, shielded; after a second Ctrl+C it gets ``hard_timeout``."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(hard_timeout if self.hard_stop else timeout):
            await anyio.to_thread.run_sync(fn, abandon_on_cancel=self.hard_stop)

    async def _start_broker(self, stack: AsyncExitStack) -> None:
        if any(isinstance(p, DockerPipeline) for p in self.scenario.pipelines):
            await self._start_sandbox(stack)
        elif self.bootstrap == "embedded" and self.scenario.kafka.embedded == "kafka":
            from ..brokers.restartable import RestartableKafka

            from ..brokers.kafka import kafka_jars_cached

            self.broker = RestartableKafka(log_dir=self.folder.path)
            stack.push_async_callback(self._in_thread_shielded, self.broker.close, 30.0)
            first = "" if kafka_jars_cached() else "; fetching its jars first, once per machine"
            await self._broker_step(f"starting the embedded broker (Apache Kafka{first})",
                                    lambda: anyio.to_thread.run_sync(self.broker.start))
            self.broker_kind = BrokerKind.KAFKA
            self.bootstrap = self.broker.bootstrap
            log.info("broker.started", kind=str(self.broker_kind), bootstrap=self.bootstrap)
        elif self.bootstrap == "embedded":
            broker = await self._broker_step(
                "starting the embedded broker (tansu)",
                lambda: anyio.to_thread.run_sync(lambda: start_tansu(log_dir=self.folder.path)))
            self._tansu = broker
            stack.push_async_callback(self._in_thread_shielded, broker.stop)
            self.broker_kind = BrokerKind.TANSU
            self.bootstrap = broker.bootstrap
            log.info("broker.started", kind=str(self.broker_kind), bootstrap=self.bootstrap)
        kafka = self.scenario.kafka
        names = [(self.topics.input, kafka.partitions), (self.topics.control, 1),
                 (self.topics.scores, 1)]
        names += [(self.topics.output(p.name), kafka.partitions) for p in self.scenario.pipelines]
        await create_topics(self.bootstrap, names, replication_factor=kafka.replication_factor,
                            security=self.security)
        self.broker_started = True  # reached and serving the run's topics

    async def _start_sandbox(self, stack: AsyncExitStack) -> None:
        """Docker pipelines live on an internal network whose only other member is
        the run's broker (tansu in a container); the harness reaches it from the host."""
        from ..runtime.docker import docker_client
        from ..runtime.images import ensure_sdk_image
        from ..runtime.sandbox import SandboxNetwork

        if self.bootstrap != "embedded":
            raise UsageError("docker pipelines run on a sandbox network with the run's own "
                             "broker: set [kafka] bootstrap = \"embedded\"")
        client = await anyio.to_thread.run_sync(docker_client, [p.name for p in self.scenario.pipelines
                                                                if isinstance(p, DockerPipeline)])
        log.info("image.ensure", hint="the first run on a machine builds the base image (a minute or two)")
        self._base_image = await self._step(
            "preparing the pipelines' image (the first run on a machine builds it: a minute or two)",
            lambda: anyio.to_thread.run_sync(ensure_sdk_image, client))
        sandbox = SandboxNetwork(client, self.folder.run_id)
        # even after a second Ctrl+C: a network or firewall rule left behind outlives the run
        stack.push_async_callback(self._in_thread_shielded, sandbox.remove, 15.0, 15.0)
        await self._broker_step("starting the sandbox network and its broker (tansu)",
                                lambda: anyio.to_thread.run_sync(sandbox.create))
        self._docker, self._sandbox = client, sandbox
        self.broker_kind = BrokerKind.TANSU
        self.bootstrap = sandbox.bootstrap
        log.info("broker.started", kind=str(self.broker_kind), bootstrap=self.bootstrap,
                 network=sandbox.name)

    async def _run_body(self, stack: AsyncExitStack) -> None:
        scenario = self.scenario
        kafka = scenario.kafka
        producer = AIOKafkaProducer(**producer_settings(kafka, self.bootstrap, self.security))
        await producer.start()
        stack.push_async_callback(self._shielded, producer.stop)
        reader = OutputReader(self.bootstrap, {self.topics.output(p.name): p.name
                                               for p in scenario.pipelines},
                              partitions=kafka.partitions, security=self.security)
        workers = None
        if scenario.load.workers > 1:  # processes take a while: started before the clock is fixed
            workers = DispatchWorkers(self.loaded, bootstrap=self.bootstrap, topic=self.topics.input,
                                      log_dir=self.folder.path, with_rows=bool(scenario.commands))
            stack.push_async_callback(workers.stop)
            await workers.start()
            self._workers = workers
        async with anyio.create_task_group() as tg:
            # a TLS listener cannot read a plaintext probe: it is probed by connecting
            self.broker_watch = BrokerWatch(self.bootstrap, self.incidents, tls=self.security.tls,
                                            stall_after=float(scenario.validity.max_broker_response))
            await tg.start(self.broker_watch.run)
            await tg.start(reader.run)
            stack.push_async_callback(self._shielded, reader.stop)
            await self._start_pipelines(stack)
            for runner in self.runners:
                tg.start_soon(runner.supervise)
            self.view.state = RunState.READY
            self._emit()
            await self._wait_ready(reader, producer)
            self._make_scorer(reader, producer, workers)
            assert self.scorer is not None and self.dispatcher is not None
            await tg.start(self.loop_lateness.run)  # the harness's own loop, for the whole run
            tg.start_soon(self._ticker, producer)
            self.view.state = RunState.DISPATCHING
            dispatch_done = anyio.Event()

            async def dispatch() -> None:
                assert self.dispatcher is not None
                await self.dispatcher.run(clock=self._clock)
                dispatch_done.set()

            tg.start_soon(dispatch)
            if self.injector is not None:
                stack.push_async_callback(self._shielded, self.injector.undo, 60.0)
                tg.start_soon(self.injector.run, self._clock)
            if self.proctor is not None:
                tg.start_soon(self.proctor.run, producer, self._clock)
            wall_end = self._wall_bound()
            while not self.dispatcher.stats.finished and not self._abort.is_set():
                await anyio.sleep(TICK_S)
                self._check_bounds(wall_end)
                if self.dispatcher.stats.overloaded:  # a worker stopped: the run stops with it
                    break
            if self.dispatcher.stats.overloaded and not self._abort.is_set():
                self._stop(f"the harness lost the schedule at {self.dispatcher.stats.schedule_lost_s} s "
                           "and on_overload = \"stop\" ended the run there")
            self.view.state = RunState.DRAINING
            drain_end = time.monotonic() + float(scenario.load.drain)
            if wall_end is not None:
                drain_end = min(drain_end, wall_end)
            while time.monotonic() < drain_end and not self._abort.is_set():
                if self.proctor is not None:
                    self.proctor.collect(self.scorer.replies)
                if (self.scorer.all_answered() and dispatch_done.is_set()
                        and (self.proctor is None or self.proctor.settled())):
                    break
                if not any(r.running for r in self.runners):
                    log.warning("run.no_pipeline_running")
                    break
                await anyio.sleep(TICK_S / 2)
            self.view.state = RunState.STOPPING
            final = msgspec.structs.replace(self.frame(), state=str(RunState.DONE))
            await producer.send_and_wait(self.topics.scores, msgspec.json.encode(final))
            tg.cancel_scope.cancel()

    def _wall_bound(self) -> float | None:
        """The monotonic time the run must end by: its planned duration (or its count
        at the target rate), plus max_lag, the drain and a margin; None when unknown."""
        load = self.scenario.load
        planned = _planned_seconds(self.scenario)
        rate = self.dispatcher.stats.target_rate if self.dispatcher else None
        if planned is None and load.count and rate:
            planned = load.count / rate
        if planned is None:
            return None
        lag = 0.0 if math.isinf(load.max_lag_s) else load.max_lag_s
        return time.monotonic() + planned + lag + float(load.drain) + WALL_MARGIN_S

    def _check_bounds(self, wall_end: float | None) -> None:
        if wall_end is not None and time.monotonic() > wall_end:
            self._stop("the run passed its wall-time bound (planned duration + max_lag + drain "
                       f"+ {WALL_MARGIN_S:g} s) with events still to send")

    def _stop(self, reason: str) -> None:
        """End the run now, with a partial result that says why."""
        self.aborted = reason
        log.warning("run.aborted", reason=reason)
        self._abort.set()

    async def _start_pipelines(self, stack: AsyncExitStack) -> None:
        scenario = self.scenario
        for spec in scenario.pipelines:
            env = protocol.pipeline_env(bootstrap=self.bootstrap, topics=self.topics,
                                        pipeline=spec.name, run_id=self.folder.run_id,
                                        task=scenario.scoring.task, security=self.security.env(),
                                        acks=scenario.kafka.acks, idempotent=scenario.kafka.idempotent)
            if isinstance(spec, ExternalPipeline) and env.pop("PPIPE_SECURITY_SASL_PASSWORD", None):
                # its environment is written to the run folder: the secret stays out
                log.warning("pipeline.external_secret", pipeline=spec.name,
                            hint="set PPIPE_SECURITY_SASL_PASSWORD yourself; it is not written out")
            runner = self._runner(spec, env)
            runner.incidents = self.incidents
            await self._step(f"starting pipeline {spec.name!r}", runner.start)
            self.runners.append(runner)
            stack.push_async_callback(self._shielded, runner.stop)

    def _runner(self, spec: Any, env: dict[str, str]) -> Runner:
        if isinstance(spec, DockerPipeline):
            from ..runtime.docker import DockerRunner

            assert self._sandbox is not None
            return DockerRunner(spec, client=self._docker, env=env, run_dir=self.folder.path,
                                base_dir=self.loaded.base_dir, run_id=self.folder.run_id,
                                network=self._sandbox.name, base_image=self._base_image)
        if isinstance(spec, ExternalPipeline):
            return ExternalRunner(spec, env=env, run_dir=self.folder.path)
        return ProcessRunner(spec, env=env, run_dir=self.folder.path, base_dir=self.loaded.base_dir)

    async def _wait_ready(self, reader: OutputReader, producer: AIOKafkaProducer) -> None:
        """Ping every pipeline on the control topic; it is ready once it replies
        (the SDK replies only after its input partitions are assigned)."""
        timeout = max([READY_TIMEOUT_S, *(r.ready_timeout for r in self.runners)])
        deadline = time.monotonic() + timeout
        command = protocol.Command(command_id=READY_COMMAND_ID, command="ping",
                                   deadline_ns=time.time_ns() + int(timeout * 1e9))
        await producer.send_and_wait(self.topics.control, protocol.encode(command))
        waiting = {r.name for r in self.runners}
        last_poll = 0.0
        while waiting and time.monotonic() < deadline:
            waiting -= reader.ready
            if time.monotonic() - last_poll >= 0.5:
                last_poll = time.monotonic()
                for runner in self.runners:
                    await runner.apoll()
                    if runner.running == 0:
                        code = runner.status().exit_code
                        raise PipelineError(
                            runner.name, f"exited before it was ready (exit code {code}); "
                            f"last output:\n{runner.last_lines()}", exit_code=code,
                            last_lines=runner.last_lines())
            await anyio.sleep(0.05)
        if waiting:
            log.warning("pipelines.not_ready", pipelines=sorted(waiting),
                        hint="no reply to the readiness ping; starting anyway")
        log.info("pipelines.ready", waited_s=round(READY_TIMEOUT_S - (deadline - time.monotonic()), 3))

    def _make_scorer(self, reader: OutputReader, producer: AIOKafkaProducer,
                     workers: DispatchWorkers | None = None) -> None:
        """Open the dataset and plan the schedule (the slow part), then fix the run's
        start and build the scorer and dispatcher on it, with no await in between."""
        scenario = self.scenario
        load, scoring = scenario.load, scenario.scoring
        dataset, schedule = open_plan(scenario, self.loaded.base_dir)
        metrics = list(scoring.metrics)
        make_metrics(metrics, scoring.task)  # imports river's metrics now, not after the start
        corrupt = [f for f in scenario.faults if isinstance(f, CorruptFault)]
        corruptor = None
        if corrupt:
            dataset = corruptor = RowCorruptor(
                dataset, corrupt, seed=scenario.seed,
                offset_ns=lambda: time.perf_counter_ns() - (self._clock or (0, 0))[1])
        self._clock = (time.time_ns(), time.perf_counter_ns())
        self.started_ns = self._clock[0]
        self.incidents.start_ns = self.started_ns
        self.view.started_ns = self.started_ns
        config = ScoringConfig(
            task=scoring.task, metrics=metrics, deadline_ns=scoring.deadline.ns,
            window_ns=scoring.window.ns, drain_ns=load.drain.ns,
            warmup_end_ns=self.started_ns + load.warmup.ns,
            rtol=scoring.tolerance.rtol, atol=scoring.tolerance.atol)
        self.scorer = Scorer([p.name for p in scenario.pipelines], config, start_ns=self.started_ns,
                             hold_unrecorded=workers is not None)
        self._hlogs = HlogFiles(self.folder.path, self.started_ns)
        runners = {r.name: r for r in self.runners}
        self.hang_watch = HangWatch(list(scenario.pipelines), scorer=self.scorer, runners=runners,
                                    incidents=self.incidents, start_ns=self.started_ns,
                                    broker=self.broker_watch)
        if scenario.faults:
            self.injector = FaultInjector(list(scenario.faults), runners=runners, broker=self.broker,
                                          incidents=self.incidents, corruptor=corruptor,
                                          watch=self.broker_watch)
        reader.attach(self.scorer)
        if scenario.commands:
            self.proctor = Proctor(
                scenario.commands, topic=self.topics.control,
                pipelines=[p.name for p in scenario.pipelines], seed=scenario.seed,
                duration_s=_planned_seconds(scenario) or _planned_commands_horizon(scenario),
                rtol=scoring.tolerance.rtol, atol=scoring.tolerance.atol, task=scoring.task,
                out=self.folder.file("commands.jsonl"))
        if workers is not None:
            workers.bind(on_sent=self.scorer.record_sent, target_rate=schedule.target_rate,
                         on_rows=self.proctor.on_rows if self.proctor else None)
            self.dispatcher = workers
            return
        self.dispatcher = Dispatcher(
            producer=producer, topic=self.topics.input, partitions=scenario.kafka.partitions,
            dataset=dataset, schedule=schedule, label_delay_s=float(scenario.labels.delay),
            on_sent=self.scorer.record_sent, drain_s=float(load.drain),
            on_rows=self.proctor.on_rows if self.proctor else None,
            max_lag_s=load.max_lag_s, stop_on_overload=load.on_overload == "stop")

    async def _ticker(self, producer: AIOKafkaProducer) -> None:
        """Every tick: close windows, write timeline rows, publish and save snapshots."""
        assert self.scorer is not None
        last_summary = last_poll = time.monotonic()
        while True:
            await anyio.sleep(TICK_S)
            now = time.time_ns()
            advance = self.scorer.advance(now)
            self._write_advance(advance)
            if self.hang_watch is not None:
                await self.hang_watch.check(now)
            if time.monotonic() - last_poll >= POLL_EVERY_S:
                last_poll = time.monotonic()
                for runner in self.runners:
                    await runner.apoll()
            self.view.dispatch = self.dispatcher.stats if self.dispatcher else None
            self.view.pipelines = self.scorer.snapshot(now)
            if self.proctor is not None:
                self.proctor.collect(self.scorer.replies)
            self._emit()
            if time.monotonic() - last_summary >= SUMMARY_EVERY_S:
                last_summary = time.monotonic()
                partial = self._write_summary(complete=False)
                if self.scenario.scoring.abort_on_fail and self.scenario.thresholds:
                    failed = settled_failures(self.scenario.thresholds, partial)
                    if failed:
                        first = failed[0]
                        self.aborted = (f"{first['expr']} can no longer pass"
                                        + (f" for {first['pipeline']}" if first["pipeline"] else "")
                                        + f" (value {first['value']})")
                        log.warning("run.aborted", reason=self.aborted)
                        self._abort.set()
                await producer.send(self.topics.scores, msgspec.json.encode(self.frame()))

    def _harness_pids(self) -> list[int]:
        """This process and its dispatch workers (not the pipelines or the broker)."""
        return [os.getpid(), *(self._workers.pids if self._workers is not None else [])]

    def _broker_pids(self) -> list[int]:
        """The run's own local broker process (none for a container or a cluster)."""
        node = self._tansu if self._tansu is not None else (self.broker.node if self.broker else None)
        return [node.pid] if node is not None and node.alive() else []

    def _write_advance(self, advance: Any) -> None:
        stats = {r.name: r.stats() for r in self.runners}
        harness = self._harness_use.sample() or {}
        broker = self._broker_use.sample() or {}
        window_ns = self.scenario.scoring.window.ns
        outages = self.incidents.outages()
        stalls = self.incidents.stalls()
        for row in advance.timeline_rows:
            sample = stats.get(row["pipeline"])
            row["cpu_percent"] = sample.cpu_percent if sample is not None else None
            row["memory_mib"] = sample.memory_mib if sample is not None else None
            for who, use in (("harness", harness), ("broker", broker)):
                row[f"{who}_cpu_percent"] = use.get("cpu_percent")
                row[f"{who}_memory_mib"] = use.get("memory_mib")
            begin = self.started_ns + int(row["time_s"] * 1e9)
            row["broker_down_s"] = _overlap_s(outages, row["time_s"], window_ns / 1e9)
            row["incidents"] = self.incidents.between(begin, begin + window_ns)
            row["broker_response_ms"] = (self.broker_watch.slowest_between(begin, begin + window_ns)
                                         if self.broker_watch is not None else None)
            row["broker_stalled_s"] = _overlap_s(stalls, row["time_s"], window_ns / 1e9)
        self.folder.append_timeline(advance.timeline_rows)
        if self._hlogs is not None:
            self._hlogs.write(advance.hlog_intervals)

    def frame(self) -> Frame:
        """The live view's frame: also what the scores topic carries for ``ppipe tail``."""
        stats = self.dispatcher.stats if self.dispatcher else None
        lateness = self.loop_lateness.statistics()
        lag_p99 = quantiles_ms(stats.lag_us, ("p99",))["p99"] if stats else None
        dispatch = DispatchFigures(
            lag_ms=LagFigures(p99=lag_p99), dropped=stats.dropped,
            schedule_lost_at_s=stats.schedule_lost_s,
            stopped_on_overload=stats.overloaded) if stats else DispatchFigures()
        now = time.time_ns()
        return Frame(
            run_id=self.folder.run_id, state=str(self.view.state),
            elapsed_s=(now - self.view.started_ns) / 1e9 if self.view.started_ns else 0.0,
            planned_s=self.view.planned_s, events_sent=stats.events_sent if stats else 0,
            target_rate=stats.target_rate if stats else None,
            achieved_rate=round(stats.achieved_rate, 1) if stats else None,
            lag_p99_ms=lag_p99,
            pipelines=self.view.pipelines or {},
            resources={r.name: None if (use := r.stats()) is None else use.to_dict() for r in self.runners},
            incidents=self.incidents.recent(), dropped=stats.dropped if stats else 0,
            loop_lateness_p99_ms=lateness.p99_ms,
            invalid=schedule_verdict(self.scenario.validity, dispatch,
                                     msgspec.convert({"loop_lateness_ms": lateness.summary()},
                                                     HarnessFigures), final=False).reasons)

    async def _broker_step(self, label: str, work: Callable[[], Any]) -> Any:
        """A :meth:`_step` that starts the run's broker: its time is ``broker.startup_s``."""
        began = time.monotonic()
        result = await self._step(label, work)
        self.broker_startup_s = round(time.monotonic() - began, 3)
        return result

    async def _step(self, label: str, work: Callable[[], Any]) -> Any:
        """Await ``work()`` while the display shows ``label`` and the time elapsed
        (a spinner's worth of frames: long set-up is never silent); log its time."""
        began = time.monotonic()

        async def show() -> None:
            while True:
                self._step_label = f"{label} ({time.monotonic() - began:.0f}s)"
                self._emit()
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

    def _emit(self) -> None:
        try:
            frame = self.frame()
            if self._step_label is not None:
                frame = msgspec.structs.replace(frame, state=self._step_label)
            self.on_update(frame)
        except Exception:  # noqa: BLE001 - a display bug must not stop a run
            log.exception("display.failed")

    # -- results ------------------------------------------------------------
    def _write_summary(self, *, complete: bool) -> Summary:
        """Take every component's snapshot, build the summary from them, write it."""
        scenario = self.scenario
        now = time.time_ns()
        if complete and self.scorer is not None:
            self._write_advance(self.scorer.finish(now))
            if self._hlogs is not None:
                self._hlogs.close()
        commands: dict[str, Any] = {}
        if self.proctor is not None:
            if complete:
                self.proctor.collect(self.scorer.replies if self.scorer else [])
                self.proctor.finish()
            commands = self.proctor.summary()
        containers: dict[str, Any] = {}
        for runner in self.runners:
            status = runner.status().to_summary()
            if self.hang_watch is not None:
                status.update(self.hang_watch.summary(runner.name))
            containers[runner.name] = status
        outages = self.incidents.outages(now)
        stalls = self.incidents.stalls(now)
        response = self.broker_watch.statistics().summary() if self.broker_watch is not None else {}
        broker = msgspec.convert(
            {"kind": str(self.broker_kind), "bootstrap": self.bootstrap, "started": self.broker_started,
             "startup_s": self.broker_startup_s, "outages": outages,
             "downtime_s": round(sum(o["duration_s"] for o in outages), 3), "stalls": stalls,
             "stalled_s": round(sum(o["duration_s"] for o in stalls), 3), "response_ms": response},
            BrokerFigures)
        outcome = (Outcome.COMPLETE if complete else Outcome.INTERRUPTED if self.interrupted
                   else Outcome.FAILED if self.error else Outcome.RUNNING)
        parts = RunSnapshots(
            run_id=self.folder.run_id, scenario=scenario.name, complete=complete, outcome=outcome,
            started_at=iso_utc(self.started_ns), duration_s=round((now - self.started_ns) / 1e9, 3),
            broker=broker, harness=self._harness_figures(),
            dispatch=self.dispatcher.stats.summary() if self.dispatcher else None,
            scored=self.scorer.summary() if self.scorer is not None else {},
            commands=commands, containers=containers, incidents=self.incidents.summary(),
            faults=self.injector.summary() if self.injector is not None else None,
            aborted=self.aborted, error=self.error, interrupted=self.interrupted)
        summary = build_summary(parts, thresholds=scenario.thresholds, rules=scenario.validity)
        written = self.folder.write_summary(summary)
        assert isinstance(written, Summary)
        if complete or self.interrupted or self.error:
            self._write_report()
        return written

    def _harness_figures(self) -> HarnessFigures:
        """summary.json's ``harness``: the run's own event-loop lateness (and its
        dispatch workers', merged, when there are some)."""
        figures = {"loop_lateness_ms": self.loop_lateness.statistics().summary()}
        if isinstance(self.dispatcher, DispatchWorkers):
            figures["workers_loop_lateness_ms"] = lateness_stats(
                self.dispatcher.loop_lateness_us).summary()
        return msgspec.convert(figures, HarnessFigures)

    def _write_report(self) -> None:
        """report.html at the end of every run; a drawing problem is logged, not raised."""
        try:
            from ..report import write_report
            from ..report.ci import write_run_ci_files

            write_run_ci_files(self.folder.path)  # junit.xml, summary.md: cheap, before the charts
            write_report([self.folder.path])
        except Exception:  # noqa: BLE001 - the figures are safe in summary.json already
            log.exception("report.failed")


def _client_security(loaded: LoadedScenario) -> ClientSecurity:
    """The run's resolved [kafka.security]; a missing password_env is a one-line error."""
    try:
        return ClientSecurity.resolve(loaded.scenario.kafka.security, base_dir=loaded.base_dir)
    except SecretMissing as exc:
        raise ScenarioError(str(loaded.path), str(exc), path=f"$.kafka.security.{exc.key}",
                            hint=f"export {exc.variable}=... before the run" if exc.variable
                            else None) from None


def _planned_commands_horizon(scenario: Any) -> float:
    """With no planned duration (a count), commands are planned over the time the
    count takes at the target rate, or a minute when there is no rate."""
    rate = getattr(scenario.load, "rate", None)
    if scenario.load.count and rate:
        return scenario.load.count / rate
    return 60.0


def _planned_broker(scenario: Any) -> BrokerKind:
    """The kind of broker the run will use: docker pipelines (their sandbox's broker) and
    ``embedded = "tansu"`` are tansu; the default embedded broker (``embedded = "kafka"``)
    and an existing cluster are Kafka."""
    if any(isinstance(p, DockerPipeline) for p in scenario.pipelines):
        return BrokerKind.TANSU
    if scenario.kafka.bootstrap == "embedded":
        return BrokerKind.KAFKA if scenario.kafka.embedded == "kafka" else BrokerKind.TANSU
    return BrokerKind.KAFKA


def _planned_seconds(scenario: Any) -> float | None:
    duration = scenario.load.duration
    return None if duration is None or math.isinf(duration) else float(duration)


def _overlap_s(outages: list[dict[str, Any]], start_s: float, length_s: float) -> float:
    """Seconds of ``[start_s, start_s + length_s)`` during which some broker node was down."""
    end_s = start_s + length_s
    return round(sum(max(0.0, min(o["end_s"], end_s) - max(o["start_s"], start_s)) for o in outages), 3)
