"""Runs with ``[load] workers = 2`` on Apache Kafka: every event sent once, counts
exact, labels from the owning worker; a dead worker fails the run; Ctrl+C
leaves no worker behind."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import warnings
from pathlib import Path

import anyio
import pytest

from ppipe_stream.errors import RunError
from ppipe_stream.run.orchestration import run_scenario
from ppipe_stream.scenario import loads_scenario
from tests.conftest import answer_dataset

pytestmark = [pytest.mark.kafka, pytest.mark.slow]



def _load(tmp_path: Path, body: str, bootstrap: str):
    answer_dataset(tmp_path / "answers.csv", 200)
    text = body.replace("@BOOTSTRAP@", bootstrap)
    return loads_scenario(text, file=str(tmp_path / "scenario.toml"), base_dir=tmp_path)


def _workers() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("ppipe-dispatch-")]


def _forget_failed_run() -> None:
    """A failed run leaves its latency-*.hlog open (the orchestration closes it only on a complete
    run; reported, not this module's to fix): let it go here, not in a later test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _dispatching(tmp_path: Path) -> bool:
    log = tmp_path / "run" / "log.jsonl"
    return log.exists() and '"dispatch.started"' in log.read_text()


FAULTY = """
name = "faulty-workers"
seed = 1
[dataset]
source = "csv"
path = "answers.csv"
target = "label"
[load]
profile = "constant"
rate = 100
count = 200
drain = "4s"
workers = 2
[labels]
delay = "never"
[[pipelines]]
name = "faulty"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.faulty"]
[scoring]
task = "classification"
deadline = "500ms"
[kafka]
bootstrap = "@BOOTSTRAP@"
partitions = 4
"""


@pytest.mark.asyncio
async def test_two_workers_every_count_exact(kafka_broker, tmp_path):
    """The faulty pipeline's counts are known exactly (tests/integration/test_run.py):
    two workers must give the very same summary as one dispatcher."""
    loaded = _load(tmp_path, FAULTY, kafka_broker.bootstrap)
    outcome = await run_scenario(loaded, out=tmp_path / "run")
    assert outcome.complete, outcome.summary
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["dispatch"]["events_sent"] == 200
    assert summary["pipelines"]["faulty"]["status"] == {
        "correct": 140, "incorrect": 20, "deadline_exceeded": 20, "missing": 20,
        "syntax_error": 40, "duplicate": 20, "unknown": 20,
    }
    ready = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
             if '"dispatch.worker_ready"' in line]
    assert sorted((r["worker"], r["partitions"]) for r in ready) == [(0, [0, 2]), (1, [1, 3])]
    assert _workers() == []


@pytest.mark.asyncio
async def test_two_workers_send_each_event_and_label_once(kafka_broker, tmp_path):
    loaded = _load(tmp_path, """
name = "echo-workers"
seed = 2
[dataset]
source = "csv"
path = "answers.csv"
target = "label"
loop = true
[load]
profile = "constant"
rate = 2000
count = 6000
drain = "5s"
workers = 2
[labels]
delay = "200ms"
[[pipelines]]
name = "echo"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.echo"]
env = { PPIPE_ECHO_ANSWER = "odd" }
[scoring]
task = "classification"
deadline = "2s"
[kafka]
bootstrap = "@BOOTSTRAP@"
partitions = 3
""", kafka_broker.bootstrap)
    outcome = await run_scenario(loaded, out=tmp_path / "run")
    assert outcome.complete, outcome.summary
    dispatch = outcome.summary["dispatch"]
    assert dispatch["events_sent"] == 6000 and dispatch["labels_sent"] == 6000
    assert dispatch["achieved_rate"] > 0.95 * 2000
    assert dispatch["lag_ms"]["p50"] is not None
    status = outcome.summary["pipelines"]["echo"]["status"]
    assert status["correct"] == 3000 and status["incorrect"] == 3000  # odd rows, then even
    for counter in ("missing", "duplicate", "unknown", "syntax_error", "deadline_exceeded"):
        assert status[counter] == 0, counter
    assert outcome.summary["pipelines"]["echo"]["metrics"]["accuracy"] == pytest.approx(0.5)


LONG = FAULTY.replace("count = 200", "duration = \"60s\"").replace("[labels]", "[labels]\n")


@pytest.mark.asyncio
async def test_a_dead_worker_fails_the_run_at_once(kafka_broker, tmp_path):
    loaded = _load(tmp_path, LONG.replace("faulty-workers", "dead-worker"), kafka_broker.bootstrap)
    with anyio.fail_after(40):
        async with anyio.create_task_group() as tg:
            async def kill_one() -> None:
                while len(_workers()) < 2 or not _dispatching(tmp_path):
                    await anyio.sleep(0.2)
                await anyio.sleep(1.0)
                worker = next(p for p in _workers() if p.name == "ppipe-dispatch-1")
                os.kill(worker.pid, signal.SIGKILL)

            tg.start_soon(kill_one)
            with pytest.raises(RunError, match=r"dispatch worker 1 \(pid \d+\) died \(exit code -9\)") as info:
                await run_scenario(loaded, out=tmp_path / "run")
    assert _workers() == []
    del info
    _forget_failed_run()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["complete"] is False and "dispatch worker 1" in summary["error"]


@pytest.mark.asyncio
async def test_ctrl_c_stops_the_workers(kafka_broker, tmp_path):
    loaded = _load(tmp_path, LONG.replace("faulty-workers", "interrupted"), kafka_broker.bootstrap)
    seen: list[int] = []
    with anyio.fail_after(40):
        async with anyio.create_task_group() as tg:
            async def interrupt() -> None:
                while len(_workers()) < 2 or not _dispatching(tmp_path):
                    await anyio.sleep(0.2)
                seen.extend(p.pid for p in _workers())
                await anyio.sleep(1.0)
                os.kill(os.getpid(), signal.SIGINT)

            tg.start_soon(interrupt)
            outcome = await run_scenario(loaded, out=tmp_path / "run")
    assert outcome.interrupted and not outcome.complete
    assert outcome.summary["dispatch"]["events_sent"] > 0
    assert _workers() == []
    for pid in seen:  # reaped, not just detached
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.asyncio
async def test_proctor_commands_draw_rows_sent_by_workers(kafka_broker, tmp_path):
    """The proctor's sample of sent rows comes back from the workers (features included)."""
    root = Path(__file__).resolve().parents[2]
    loaded = loads_scenario(f"""
name = "commands-workers"
seed = 5
[dataset]
source = "csv"
path = "{root / 'scenarios' / 'data' / 'iris.csv'}"
target = "variety"
loop = true
[load]
profile = "constant"
rate = 100
duration = "4s"
drain = "3s"
workers = 2
[labels]
delay = "300ms"
[[pipelines]]
name = "river"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.river_online"]
[scoring]
deadline = "1s"
[[commands]]
at = "2s"
command = "validate"
sample = 25
[[commands]]
at = "3s"
command = "batch_predict"
[kafka]
bootstrap = "{kafka_broker.bootstrap}"
partitions = 2
""", file=str(tmp_path / "s.toml"), base_dir=tmp_path)
    outcome = await run_scenario(loaded, out=tmp_path / "run")
    assert outcome.complete, outcome.summary
    commands = outcome.summary["pipelines"]["river"]["commands"]
    assert commands["validate"]["correct"] == 1  # ids and features as the SDK ingested them
    assert commands["batch_predict"]["correct"] == 1
    assert outcome.summary["pipelines"]["river"]["status"]["missing"] == 0
    assert outcome.summary["dispatch"]["labels_sent"] == outcome.summary["dispatch"]["events_sent"]


@pytest.mark.asyncio
async def test_an_error_in_a_worker_fails_the_run_with_one_line(kafka_broker, tmp_path):
    loaded = _load(tmp_path, FAULTY.replace("faulty-workers", "bad-row"), kafka_broker.bootstrap)
    with open(tmp_path / "answers.csv", "a", encoding="utf-8") as fh:
        fh.write("1,2,3,4,5\n")  # a row with too many fields: a DatasetError in each worker
    with anyio.fail_after(60):
        with pytest.raises(RunError, match=r"^dispatch worker \d failed: DatasetError: .*answers\.csv") as info:
            await run_scenario(loaded, out=tmp_path / "run")
    assert "\n" not in str(info.value)
    assert _workers() == []
    del info
    _forget_failed_run()
