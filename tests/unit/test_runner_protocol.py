"""The runner seam: every runtime implements the whole Runner Protocol and hands back
the typed snapshots (RunnerStatus, Resources); Docker's engine errors are dropped by name
and counted."""

from __future__ import annotations

import inspect
import sys

import anyio
import msgspec
import pytest

from ppipe_stream.runtime import ExternalRunner, ProcessRunner
from ppipe_stream.runtime.base import ReplicaState, Resources, Runner, RunnerStatus
from ppipe_stream.runtime.docker import DockerRunner
from ppipe_stream.runtime.engine import ContainerState
from ppipe_stream.scenario import DockerPipeline, ExternalPipeline, ProcessPipeline

PROTOCOL = [name for name in dir(Runner) if not name.startswith("_")] + ["name", "incidents"]


def _process(tmp_path, command, **kw) -> ProcessRunner:
    spec = ProcessPipeline(name="p", command=command, **kw)
    return ProcessRunner(spec, env={}, run_dir=tmp_path, base_dir=tmp_path)


def _external(tmp_path) -> ExternalRunner:
    return ExternalRunner(ExternalPipeline(name="x"), env={"A": "1"}, run_dir=tmp_path)


def _docker(tmp_path, client=None) -> DockerRunner:
    spec = DockerPipeline(name="d", image="img:latest")
    return DockerRunner(spec, client=client, env={}, run_dir=tmp_path, base_dir=tmp_path,
                        run_id="r1", network="net", base_image="base")


@pytest.mark.parametrize("make", [_process, _external, _docker], ids=["process", "external", "docker"])
def test_every_runner_implements_the_whole_protocol(tmp_path, make):
    runner = make(tmp_path, ["true"]) if make is _process else make(tmp_path)
    assert isinstance(runner, Runner)
    for name in PROTOCOL:
        assert hasattr(runner, name), name
        wanted = inspect.getattr_static(Runner, name, None)
        if inspect.iscoroutinefunction(wanted):
            assert inspect.iscoroutinefunction(getattr(runner, name)), name
    assert isinstance(runner.ready_timeout, float)
    status = runner.status()
    assert isinstance(status, RunnerStatus) and status.name == runner.name
    assert runner.stats() is None or isinstance(runner.stats(), Resources)


def test_status_is_a_frozen_snapshot_with_the_summary_keys():
    status = RunnerStatus(name="p", restarts=2, oom_killed=True, exit_code=3)
    with pytest.raises(AttributeError):
        status.restarts = 0
    assert status.to_summary() == {"restarts": 2, "oom_killed": True, "exit_code": 3}
    assert msgspec.json.decode(msgspec.json.encode(status), type=RunnerStatus) == status


@pytest.mark.asyncio
async def test_process_poll_returns_the_status(tmp_path):
    code = "import time, sys; time.sleep(0.3); sys.exit(4)"
    runner = _process(tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"], replicas=1)
    await runner.start()
    try:
        status = await runner.apoll()
        assert isinstance(status, RunnerStatus)
        assert [r.state for r in status.replicas] == [ReplicaState.RUNNING] and status.running == 1
        await runner.pause(0)
        assert runner.poll().replicas[0].state is ReplicaState.PAUSED
        await runner.resume(0)
    finally:
        await runner.stop(timeout=2)
    stopped = runner.poll()
    assert stopped.replicas[0].state is ReplicaState.STOPPED and stopped.exit_code is None

    early = _process(tmp_path, [sys.executable, "-c", code])
    await early.start()
    with anyio.fail_after(10):
        while early.poll().exited == 0:
            await anyio.sleep(0.05)
    status = early.status()
    assert status.replicas[0].state is ReplicaState.EXITED and status.replicas[0].exit_code == 4
    assert status.exit_code == 4 and status.running == 0
    await early.stop()


@pytest.mark.asyncio
async def test_process_stats_are_resources(tmp_path):
    runner = _process(tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"])
    await runner.start()
    try:
        with anyio.fail_after(10):
            while (use := runner.stats()) is None:
                await anyio.sleep(0.1)
        assert isinstance(use, Resources) and use.memory_mib > 0
    finally:
        await runner.stop(timeout=2)


@pytest.mark.asyncio
async def test_external_runner_is_up_and_does_nothing(tmp_path):
    runner = _external(tmp_path)
    await runner.start()
    await runner.supervise()
    await runner.kill()
    await runner.pause()
    await runner.resume()
    status = await runner.apoll()
    assert status.running == 1 == runner.running
    assert status.replicas[0].state is ReplicaState.UNKNOWN
    assert status.to_summary() == {"restarts": 0, "oom_killed": False, "exit_code": None}
    await runner.stop()


def test_container_states_are_read_into_the_enum():
    assert ContainerState.read("exited") is ContainerState.EXITED and ContainerState.EXITED.ended
    assert ContainerState.read("dead").ended and not ContainerState.read("running").ended
    assert ContainerState.read(None) is ContainerState.UNKNOWN
    assert ContainerState.read("new-in-engine-30") is ContainerState.UNKNOWN


class _Container:
    """A container whose engine answers with the given states, then says NotFound."""

    def __init__(self, states: list[dict], *, gone_after: int | None = None) -> None:
        self.id = "c" * 64
        self.short_id = "c" * 12
        self._states = states
        self._reads = 0
        self._gone_after = gone_after
        self.attrs: dict = {}

    def reload(self) -> None:
        import docker.errors

        if self._gone_after is not None and self._reads >= self._gone_after:
            raise docker.errors.NotFound("No such container")
        state = self._states[min(self._reads, len(self._states) - 1)]
        self._reads += 1
        self.attrs = {"State": state, "RestartCount": state.get("restarts", 0)}

    def kill(self) -> None:
        import docker.errors

        raise docker.errors.APIError("container is not running")


def test_docker_poll_reads_states_and_counts_what_it_drops(tmp_path):
    runner = _docker(tmp_path)
    container = _Container([{"Status": "running"},
                            {"Status": "exited", "ExitCode": 137, "OOMKilled": True}], gone_after=2)
    runner._containers.append(container)
    first = runner.poll()
    assert first.replicas[0].state is ReplicaState.RUNNING and first.running == 1
    second = runner.poll()
    assert second.replicas[0].state is ReplicaState.EXITED
    assert second.to_summary() == {"restarts": 0, "oom_killed": True, "exit_code": 137}
    assert runner.running == 0
    runner.kill_now()
    assert runner.status().dropped == {"kill_now": 1}


def test_docker_poll_survives_a_removed_container(tmp_path):
    runner = _docker(tmp_path)
    runner._containers.append(_Container([{"Status": "running"}], gone_after=0))
    status = runner.poll()
    assert status.dropped == {"reload": 1}
    assert status.replicas[0].state is ReplicaState.UNKNOWN and runner.running == 1


def test_docker_catches_only_engine_errors(tmp_path):
    class Broken(_Container):
        def reload(self) -> None:
            raise KeyError("a bug, not the engine")

    runner = _docker(tmp_path)
    runner._containers.append(Broken([]))
    with pytest.raises(KeyError):
        runner.poll()


@pytest.mark.parametrize("use_netem", [True, False])
def test_a_network_fault_is_undone_exactly(monkeypatch, use_netem):
    from ppipe_stream.runtime import netns

    ran: list[list[str]] = []
    monkeypatch.setattr(netns, "_in_netns", lambda pid, args: ran.append([str(pid), *args]))
    done = netns.degrade(42, delay=0.05 if use_netem else None, loss=0.25, use_netem=use_netem)
    applied = list(ran)
    ran.clear()
    netns.restore(done)
    if use_netem:
        assert applied == [["42", "tc", "qdisc", "add", "dev", "eth0", "root", "netem",
                            "delay", "50.000ms", "loss", "25.0000%"]]
        assert ran == [["42", "tc", "qdisc", "del", "dev", "eth0", "root"]]
    else:
        assert [a[:3] for a in applied] == [["42", "iptables", "-I"]] * 2
        assert [r[3:] for r in ran] == [a[3:] for a in applied]  # the same rules, deleted
        assert "0.250000" in applied[0]


def test_process_and_external_refuse_network_faults(tmp_path):
    from ppipe_stream.errors import RunError

    for runner in (_process(tmp_path, ["true"]), _external(tmp_path)):
        with pytest.raises(RunError, match="docker"):
            runner.degrade_network(None, 0.5)
        runner.restore_network()
