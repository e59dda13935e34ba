"""The process runtime with real child processes: environment, logs, early exit, stop."""

from __future__ import annotations

import os
import sys

import pytest

from ppipe_stream.errors import PipelineError
from ppipe_stream.runtime import ProcessRunner, resolve_command
from ppipe_stream.scenario import ProcessPipeline


def _runner(tmp_path, command, **kw):
    spec = ProcessPipeline(name="p", command=command, **kw)
    return ProcessRunner(spec, env={"PPIPE_PIPELINE": "p"}, run_dir=tmp_path, base_dir=tmp_path)


def test_python_means_this_interpreter():
    assert resolve_command(["python", "-m", "x"]) == [sys.executable, "-m", "x"]
    assert resolve_command(["/bin/echo", "hi"]) == ["/bin/echo", "hi"]


@pytest.mark.asyncio
async def test_output_and_environment_reach_the_log(tmp_path):
    import anyio

    runner = _runner(tmp_path, ["python", "-c", "import os; print('hello', os.environ['PPIPE_PIPELINE'])"])
    await runner.start()
    with anyio.fail_after(10):
        while runner.poll().exited == 0:
            await anyio.sleep(0.05)
    await runner.stop(timeout=10)
    assert runner.status().exit_code == 0
    assert "hello p" in (tmp_path / "pipeline-p.log").read_text()


@pytest.mark.asyncio
async def test_early_exit_is_noticed_with_its_code(tmp_path):
    import anyio

    runner = _runner(tmp_path, ["python", "-c", "import sys; print('boom'); sys.exit(7)"])
    await runner.start()
    with anyio.fail_after(10):
        while runner.poll().exited == 0:
            await anyio.sleep(0.05)
    assert runner.status().to_summary() == {"restarts": 0, "oom_killed": False, "exit_code": 7}
    assert "boom" in runner.last_lines()
    await runner.stop()


@pytest.mark.asyncio
async def test_stop_terminates_then_kills(tmp_path):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    runner = _runner(tmp_path, ["python", "-c", code], replicas=2)
    await runner.start()
    import anyio
    with anyio.fail_after(10):
        while (tmp_path / "pipeline-p-1.log").read_text().count("up") < 1:
            await anyio.sleep(0.05)
    pids = [p.pid for p in runner._processes]
    await runner.stop(timeout=0.5)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert runner.status().exit_code is None  # stopped by the harness, not an early exit


@pytest.mark.asyncio
async def test_missing_program_is_a_pipeline_error(tmp_path):
    runner = _runner(tmp_path, ["/no/such/program"])
    with pytest.raises(PipelineError, match="cannot start"):
        await runner.start()
