"""The dispatch seam, offline: both dispatchers are a Dispatch, the workers' pipe
speaks tagged Structs (and refuses anything else), summary.json's ``dispatch``
keeps its keys, one plan is the same plan wherever it is built, and exception
groups unwrap to the error raised."""

from __future__ import annotations

import itertools
import multiprocessing

import anyio
import msgspec
import numpy as np
import pytest

from ppipe_stream.dispatch import messages as wire
from ppipe_stream.dispatch.base import Dispatch, DispatchFigures, DispatchStats, open_plan
from ppipe_stream.dispatch.workers import DispatchWorkers, _Worker
from ppipe_stream.dispatch.dispatcher import Dispatcher
from ppipe_stream.errors import RunError, first_leaf
from ppipe_stream.watch.loop_lag import lateness_stats
from ppipe_stream.scenario import loads_scenario

SCENARIO = """
name = "seam"
seed = 5
[dataset]
source = "synth"
generator = "sea"
[load]
profile = "poisson"
rate = 50
count = 40
workers = {workers}
[[pipelines]]
name = "p"
runtime = "process"
command = ["true"]
[kafka]
partitions = 2
"""


def _figures(**changes) -> DispatchFigures:
    base = dict(finished=False, dataset_exhausted=False, labels_sent=3, events_sent=4, lag_us=b"x",
                dropped=1, first_planned_ns=10, last_planned_ns=None, schedule_lost_s=0.5,
                overloaded=False, cut=True)
    return DispatchFigures(**{**base, **changes})


def test_both_dispatchers_are_a_dispatch():
    loaded = loads_scenario(SCENARIO.format(workers=2))
    dataset, schedule = open_plan(loaded.scenario, loaded.base_dir)
    one = Dispatcher(producer=None, topic="t", partitions=2, dataset=dataset, schedule=schedule,
                     label_delay_s=0.0, on_sent=lambda *a: None, drain_s=0.0)
    pool = DispatchWorkers(loaded, bootstrap="unused", topic="t")
    assert isinstance(one, Dispatch) and isinstance(pool, Dispatch)
    assert isinstance(one.stats, DispatchStats) and isinstance(pool.stats, DispatchStats)
    assert one.workers_lateness() is None  # the run's own loop is measured by the run
    assert pool.workers_lateness() == lateness_stats(pool.loop_lateness_us)


@pytest.mark.parametrize("message", [
    wire.Ready(pid=12), wire.Go(wall0_ns=1_700_000_000_000_000_000), wire.Stop(),
    wire.Sent(covered=9, ids=wire.column([1, 3]), intended=wire.column([5, 6]),
              sent=wire.column([7, 8]), labels=["a", 1, 2.5, None, True], features=None),
    wire.Sent(covered=2, ids=wire.column([0]), intended=wire.column([1]), sent=wire.column([2]),
              labels=[0], features=[{"x": 1.5, "name": "n"}]),
    wire.Stats(figures=_figures(), loop_us=b"\x00\x01"), wire.Done(figures=_figures(finished=True),
                                                                  loop_us=b""),
    wire.Failed(message="ValueError: boom")])
def test_every_message_crosses_the_pipe_as_it_was(message):
    decode = wire.decode_to_worker if isinstance(message, (wire.Go, wire.Stop)) else wire.decode_to_main
    assert decode(wire.encode(message)) == message


def test_tags_are_the_old_words_and_columns_keep_int64():
    tags = {cls.__struct_config__.tag for cls in (wire.Ready, wire.Go, wire.Sent, wire.Stats,
                                                    wire.Done, wire.Failed, wire.Stop)}
    assert tags == {"ready", "go", "sent", "stats", "done", "error", "stop"}
    values = [0, -1, 2**62, 1_700_000_000_000_000_000]
    assert wire.array(wire.column(values)).tolist() == values
    assert wire.array(wire.column([])).dtype == np.int64


def test_a_worker_message_out_of_place_is_refused():
    with pytest.raises(msgspec.ValidationError):
        wire.decode_to_main(wire.encode(wire.Go(wall0_ns=1)))  # the main process never gets Go
    with pytest.raises(msgspec.ValidationError):
        wire.decode_to_worker(wire.encode(wire.Ready(pid=1)))


def _receive_from(raw: bytes) -> None:
    parent, child = multiprocessing.Pipe(duplex=True)
    loaded = loads_scenario(SCENARIO.format(workers=2))
    pool = DispatchWorkers(loaded, bootstrap="unused", topic="t")
    worker = _Worker(0, None, parent)
    child.send_bytes(raw)
    try:
        anyio.run(pool._receive, worker)
    finally:
        parent.close()
        child.close()


def test_an_unreadable_or_failed_worker_message_is_one_run_error():
    with pytest.raises(RunError, match="dispatch worker 0 sent an unreadable message"):
        _receive_from(b"\xc1 not msgpack")
    with pytest.raises(RunError, match="dispatch worker 0 failed: ValueError: boom"):
        _receive_from(wire.encode(wire.Failed(message="ValueError: boom")))


def test_the_dispatch_summary_keeps_its_keys_and_values():
    stats = DispatchStats(100.0)
    assert stats.summary() == {
        "events_sent": 0, "labels_sent": 0, "target_rate": 100.0, "achieved_rate": 0.0,
        "lag_ms": {"p50": None, "p99": None, "max": None}, "dataset_exhausted": False,
        "planned_events": 0, "planned_rate": None, "dropped": 0, "schedule_lost_at_s": None,
        "stopped_on_overload": False, "schedule_cut": False}
    intended = np.array([1_000_000, 11_000_000, 21_000_000], dtype=np.int64)
    stats.record_sent(intended, intended + 2_000_000)
    summary = stats.summary()
    assert list(summary) == list(DispatchStats(None).summary())  # the same order
    assert summary["events_sent"] == 3 and summary["lag_ms"] == {"p50": 2.0, "p99": 2.0, "max": 2.0}
    assert summary["planned_rate"] == 100.0 and summary["achieved_rate"] == pytest.approx(90.909, rel=1e-4)


def test_combined_figures_wait_for_every_worker_to_finish():
    stats = DispatchStats(None)
    from ppipe_stream.scoring.hist import encode, new_histogram

    empty = encode(new_histogram())
    stats.combine([_figures(finished=True, lag_us=empty)], of=2)
    assert not stats.finished and stats.labels_sent == 3 and stats.cut
    assert stats.first_planned_ns is None  # a span needs both ends
    stats.combine([_figures(finished=True, lag_us=empty, last_planned_ns=20)] * 2, of=2)
    assert stats.finished and stats.labels_sent == 6 and stats.dropped == 2
    assert (stats.first_planned_ns, stats.last_planned_ns) == (10, 20)


def test_one_plan_is_the_same_plan_wherever_it_is_built():
    loaded = loads_scenario(SCENARIO.format(workers=1))
    (d1, s1), (d2, s2) = (open_plan(loaded.scenario, loaded.base_dir) for _ in range(2))
    assert np.array_equal(np.concatenate(list(s1.chunks())), np.concatenate(list(s2.chunks())))
    first = [(r.index, r.features, r.label) for r in itertools.islice(d1, 40)]
    assert first == [(r.index, r.features, r.label) for r in itertools.islice(d2, 40)]


def test_first_leaf_is_the_error_raised_inside_nested_groups():
    error = KeyError("k")
    nested = BaseExceptionGroup("outer", [ExceptionGroup("inner", [error, ValueError()])])
    assert first_leaf(nested) is error
    plain = RuntimeError("x")
    assert first_leaf(plain) is plain
    assert first_leaf(BaseExceptionGroup("g", [KeyboardInterrupt()])).__class__ is KeyboardInterrupt
