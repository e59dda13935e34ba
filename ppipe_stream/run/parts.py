"""The run's working parts, made at the instant the run's clock starts.

Owns :func:`assemble`: open the dataset and plan the schedule (the slow part),
then fix the run's start and build, with no await in between, the scorer, the
proctor (its inbox handed to the scorer), the hang watch, the fault injector
and the dispatch (one in-process :class:`~ppipe_stream.dispatch.dispatcher.Dispatcher`,
or the :class:`~ppipe_stream.dispatch.workers.DispatchWorkers` already started,
bound now). They come back together as :class:`RunParts`; the orchestration
starts them, the ticker and the summary read them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import cast

from aiokafka import AIOKafkaProducer

from ..datasets import DatasetStream
from ..dispatch.base import Dispatch, open_plan
from ..dispatch.dispatcher import Dispatcher
from ..dispatch.workers import DispatchWorkers
from ..proctor import Proctor
from ..runtime import Runner
from ..scenario import LoadedScenario
from ..scenario.faults import CorruptFault
from ..scenario.model import BurstyLoad, ConstantLoad, PoissonLoad, Scenario
from ..scoring import HlogFiles, Scorer, ScoringConfig, make_metrics
from ..watch.broker_health import BrokerWatch
from ..watch.fault_injector import FaultInjector, RowCorruptor
from ..watch.incidents import IncidentLog
from ..watch.supervision import HangWatch
from .broker_start import RunBroker
from .folder import RunFolder
from .output_reader import OutputReader
from .tracker import planned_seconds

__all__ = ["RunParts", "assemble"]

Clock = tuple[int, int]  # (wall ns, perf_counter ns) of the run's offset 0


class RunParts:
    """The parts of a run that exist once its clock started."""

    def __init__(self, *, clock: Clock, scorer: Scorer, dispatch: Dispatch, hlogs: HlogFiles,
                 hang_watch: HangWatch, broker_watch: BrokerWatch, proctor: Proctor | None,
                 injector: FaultInjector | None) -> None:
        self.clock = clock
        self.started_ns = clock[0]
        self.scorer = scorer
        self.dispatch = dispatch
        self.hlogs = hlogs
        self.hang_watch = hang_watch
        self.broker_watch = broker_watch
        self.proctor = proctor
        self.injector = injector


def assemble(loaded: LoadedScenario, *, folder: RunFolder, topic: str, reader: OutputReader,
             producer: AIOKafkaProducer, workers: DispatchWorkers | None, runners: Sequence[Runner],
             incidents: IncidentLog, broker: RunBroker, broker_watch: BrokerWatch,
             control_topic: str) -> RunParts:
    """Plan, fix the clock, build every part on it (see the module docstring)."""
    scenario = loaded.scenario
    load, scoring = scenario.load, scenario.scoring
    dataset, schedule = open_plan(scenario, loaded.base_dir)
    metrics = list(scoring.metrics)
    make_metrics(metrics, scoring.task)  # imports river's metrics now, not after the start
    corrupt = [f for f in scenario.faults if isinstance(f, CorruptFault)]
    corruptor = None
    clock: list[int] = [0, 0]  # set below; the corruptor reads it while the run goes
    if corrupt:
        corruptor = RowCorruptor(dataset, corrupt, seed=scenario.seed,
                                 offset_ns=lambda: time.perf_counter_ns() - clock[1])
        dataset = cast(DatasetStream, corruptor)  # a proxy: the stream's attributes, rows spoiled
    clock[:] = [time.time_ns(), time.perf_counter_ns()]
    started_ns = clock[0]
    incidents.start_ns = started_ns
    config = ScoringConfig(
        task=scoring.task, metrics=metrics, deadline_ns=scoring.deadline.ns,
        window_ns=scoring.window.ns, drain_ns=load.drain.ns,
        warmup_end_ns=started_ns + load.warmup.ns,
        rtol=scoring.tolerance.rtol, atol=scoring.tolerance.atol)
    proctor = None
    if scenario.commands:
        proctor = Proctor(
            scenario.commands, topic=control_topic,
            pipelines=[p.name for p in scenario.pipelines], seed=scenario.seed,
            duration_s=planned_seconds(scenario) or _commands_horizon(scenario),
            rtol=scoring.tolerance.rtol, atol=scoring.tolerance.atol, task=scoring.task,
            out=folder.file("commands.jsonl"), grace_ns=scoring.deadline.ns)
    scorer = Scorer([p.name for p in scenario.pipelines], config, start_ns=started_ns,
                    hold_unrecorded=workers is not None,
                    replies=proctor.inbox if proctor is not None else None)
    by_name = {r.name: r for r in runners}
    hang_watch = HangWatch(list(scenario.pipelines), scorer=scorer, runners=by_name,
                           incidents=incidents, start_ns=started_ns, broker=broker_watch)
    injector = None
    if scenario.faults:
        injector = FaultInjector(list(scenario.faults), runners=by_name, broker=broker.kafka,
                                 incidents=incidents, corruptor=corruptor, watch=broker_watch)
    reader.attach(scorer)
    on_rows = proctor.on_rows if proctor is not None else None
    dispatch: Dispatch
    if workers is not None:
        workers.bind(on_sent=scorer.record_sent, target_rate=schedule.target_rate, on_rows=on_rows)
        dispatch = workers
    else:
        dispatch = Dispatcher(
            producer=producer, topic=topic, partitions=scenario.kafka.partitions,
            dataset=dataset, schedule=schedule, label_delay_s=float(scenario.labels.delay),
            on_sent=scorer.record_sent, drain_s=float(load.drain), on_rows=on_rows,
            max_lag_s=load.max_lag_s, stop_on_overload=load.on_overload == "stop")
    return RunParts(clock=(clock[0], clock[1]), scorer=scorer, dispatch=dispatch,
                    hlogs=HlogFiles(folder.path, started_ns), hang_watch=hang_watch,
                    broker_watch=broker_watch, proctor=proctor, injector=injector)


def _commands_horizon(scenario: Scenario) -> float:
    """With no planned duration (a count), commands are planned over the time the
    count takes at the target rate, or a minute when there is no rate."""
    load = scenario.load
    rate = float(load.rate) if isinstance(load, (ConstantLoad, PoissonLoad, BurstyLoad)) else None
    if load.count and rate:
        return load.count / rate
    return 60.0

