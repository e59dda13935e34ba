"""The Docker runtime: a pipeline as sandboxed containers (``runtime = "docker"``).

Owns building or finding the pipeline's image, creating its replicas on the
run's sandbox network with the protocol's environment and the sandbox's
limits (non-root, read-only root, a small tmpfs, all capabilities dropped,
no-new-privileges, pids/memory/CPU limits, no Docker socket), streaming their
logs into the run folder, reading their state (exit code, OOM kill, restarts)
and stats, and removing them. Every object carries ``ppipe.run`` labels. For
fault injection it kills, pauses and resumes containers, and degrades their
network from the host, inside each container's network namespace
(``netns.py``: netem delay and loss where the kernel has it; loss alone by an
iptables random match otherwise).

The Docker SDK blocks; every public coroutine here runs it in a worker thread.
Engine errors are caught by name (``engine.py``'s ``engine_errors``, ``stream_errors``):
one that is dropped (a container removed under us, a stream that ends with the
run) is logged as ``docker.dropped`` and counted by kind in the status's
``dropped``. Container states are ``engine.ContainerState``s.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import msgspec
import structlog

from ..errors import PipelineError, RunError
from ..watch.incidents import IncidentKind, IncidentLog
from .procutil import tail_lines
from ..scenario.model import DockerPipeline
from . import netns
from .base import ReplicaState, ReplicaStatus, Resources, RunnerStatus
from .engine import ContainerState, docker_client, engine_errors, stream_errors
from .sandbox import LABEL_ROLE, LABEL_RUN
from .wheels import fill_wheels

__all__ = ["DockerRunner", "SANDBOX_USER", "docker_client", "LABEL_PIPELINE"]

log = structlog.get_logger(__name__)

SANDBOX_USER = "10001:10001"
LABEL_PIPELINE = "ppipe.pipeline"
BASE_IMAGE_ARG = "BASE_IMAGE"


class _Seen(msgspec.Struct, frozen=True, kw_only=True):
    """One container as the last poll read it."""

    state: ContainerState
    exit_code: int | None = None
    oom_killed: bool = False
    restarts: int = 0
    early: bool = False  # its last ending was on its own (not the harness's stop)
    final: bool = False  # ended for good: not read again


class DockerRunner:
    """Runs one pipeline's replicas as containers on the sandbox network (a :class:`~.base.Runner`)."""

    ready_timeout = 0.0  # the run's default readiness wait

    def __init__(self, spec: DockerPipeline, *, client: Any, env: dict[str, str], run_dir: Path,
                 base_dir: Path, run_id: str, network: str, base_image: str,
                 hosts: dict[str, str] | None = None, files: dict[str, str] | None = None) -> None:
        self.spec = spec
        self._hosts = hosts or {}  # name -> address, in /etc/hosts (the sandbox lets no DNS out)
        self._files = files or {}  # host path -> path in the container, mounted read-only
        self.name = spec.name
        self._client = client
        self._env = {**env, **spec.env}
        self._run_dir = run_dir
        self._base_dir = base_dir
        self._run_id = run_id
        self._network = network
        self._base_image = base_image
        self._containers: list[Any] = []
        self._log_threads: list[threading.Thread] = []
        self._stopping = False
        self._seen: dict[int, _Seen] = {}
        self._stats: dict[int, tuple[float, float]] = {}
        self._ooms: set[str] = set()  # container ids the engine reported an OOM kill for
        self._events: Any = None
        self._degraded: list[netns.Degradation] = []  # what to undo, per namespace
        self._early_exits: list[int | None] = []  # exit codes of replicas that ended on their own
        self._dropped: Counter[str] = Counter()  # engine errors dropped, by kind
        self.image: str | None = None
        self.incidents: IncidentLog | None = None  # the run's, set by the run

    def _drop(self, kind: str, exc: BaseException) -> None:
        """Count and log an engine error this runner goes on without."""
        self._dropped[kind] += 1
        log.info("docker.dropped", pipeline=self.name, kind=kind, error=type(exc).__name__,
                 detail=str(exc), count=self._dropped[kind])

    def log_path(self, replica: int) -> Path:
        suffix = "" if self.spec.replicas == 1 else f"-{replica}"
        return self._run_dir / f"pipeline-{self.name}{suffix}.log"

    # -- life cycle ----------------------------------------------------------
    async def start(self) -> None:
        await anyio.to_thread.run_sync(self._start_blocking)

    def _start_blocking(self) -> None:
        self.image = self._image()
        threading.Thread(target=self._watch_events, name=f"events-{self.name}", daemon=True).start()
        spec = self.spec
        for replica in range(spec.replicas):
            restart: dict[str, Any] = {"Name": spec.restart}
            if spec.restart == "on-failure":
                restart["MaximumRetryCount"] = spec.max_restarts
            try:
                container = self._client.containers.create(
                    self.image, command=spec.command or None,
                    name=f"ppipe-{self._run_id}-{self.name}-{replica}"[:63],
                    environment={**self._env, "PPIPE_REPLICA": str(replica)},
                    labels={LABEL_RUN: self._run_id, LABEL_ROLE: "pipeline", LABEL_PIPELINE: self.name},
                    network=self._network, user=SANDBOX_USER, read_only=True,
                    tmpfs={"/tmp": f"rw,nosuid,size={spec.tmpfs}"},
                    extra_hosts=self._hosts or None,
                    volumes={source: {"bind": target, "mode": "ro"}
                             for source, target in self._files.items()} or None,
                    cap_drop=["ALL"], security_opt=["no-new-privileges"],
                    pids_limit=spec.pids, mem_limit=spec.memory, memswap_limit=spec.memory,
                    nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
                    restart_policy=restart)
                container.start()
            except engine_errors() as exc:  # report as a pipeline that cannot start
                raise PipelineError(self.name, f"cannot start its container: {exc}") from exc
            self._containers.append(container)
            thread = threading.Thread(target=self._stream_logs, args=(container, replica),
                                      name=f"logs-{self.name}-{replica}", daemon=True)
            thread.start()
            self._log_threads.append(thread)
            sampler = threading.Thread(target=self._sample_stats, args=(container, replica),
                                       name=f"stats-{self.name}-{replica}", daemon=True)
            sampler.start()
            log.info("pipeline.started", pipeline=self.name, replica=replica,
                     container=container.short_id, image=self.image)

    def _watch_events(self) -> None:
        """Follow the engine's event stream for this pipeline's containers: an OOM
        kill followed by a restart would otherwise fall between two polls."""
        try:
            self._events = self._client.events(decode=True, filters={
                "label": [f"{LABEL_RUN}={self._run_id}", f"{LABEL_PIPELINE}={self.name}"],
                "event": ["oom", "die", "restart"]})
            for event in self._events:
                action = event.get("Action") or event.get("status")
                if action == "oom":
                    self._ooms.add(event.get("id", ""))
                    log.warning("pipeline.oom_killed", pipeline=self.name, container=event.get("id", "")[:12])
                if self.incidents is None or self._stopping:
                    continue
                when = int(event.get("timeNano") or time.time_ns())
                lag = max(time.time_ns() - when, 0) / 1e9
                ids = [c.id for c in self._containers]
                replica = ids.index(event.get("id")) if event.get("id") in ids else "?"
                if action == "die":
                    code = event.get("Actor", {}).get("Attributes", {}).get("exitCode", "?")
                    self.incidents.record(IncidentKind.PIPELINE_EXIT, self.name,
                                          f"replica {replica} exited with code {code}",
                                          at_ns=when, detected_after_s=lag)
                elif action == "restart":
                    self.incidents.record(IncidentKind.PIPELINE_RESTART, self.name,
                                          f"replica {replica} restarted by the engine", at_ns=when)
        except stream_errors() as exc:  # the stream is cut off when the run stops
            self._drop("events", exc)

    def _image(self) -> str:
        import docker.errors

        spec = self.spec
        if spec.image:
            try:
                self._client.images.get(spec.image)
            except docker.errors.ImageNotFound as exc:
                raise PipelineError(self.name, f"image {spec.image!r} not found; build or pull it "
                                    "first, or give `build`") from exc
            return spec.image
        assert spec.build is not None  # the scenario gives an image or a build
        context = (self._base_dir / spec.build).resolve()
        if not (context / (spec.dockerfile or "Dockerfile")).is_file():
            raise PipelineError(self.name, f"no Dockerfile in {context}")
        tag = f"ppipe/{self.name}:{self._run_id}".lower()
        fill_wheels(context, self.name)  # the build has no network: requirements.txt from the host
        try:
            self._client.images.build(
                path=str(context), dockerfile=spec.dockerfile or "Dockerfile", tag=tag, rm=True,
                buildargs={BASE_IMAGE_ARG: self._base_image, **spec.build_args},
                labels={LABEL_RUN: self._run_id, LABEL_PIPELINE: self.name}, network_mode="none")
        except docker.errors.BuildError as exc:
            tail = "\n".join(str(c.get("stream", c.get("error", ""))).rstrip()
                             for c in list(exc.build_log)[-8:])
            raise PipelineError(self.name, f"docker build of {context} failed: {exc.msg}",
                                last_lines=tail) from exc
        log.info("pipeline.built", pipeline=self.name, image=tag)
        return tag

    def _stream_logs(self, container: Any, replica: int) -> None:
        with open(self.log_path(replica), "ab") as out:
            try:
                for chunk in container.logs(stream=True, follow=True):
                    out.write(chunk)
                    out.flush()
            except stream_errors() as exc:  # the container went away: the log simply ends
                self._drop("logs", exc)

    def poll(self) -> RunnerStatus:
        """Read every container's state; note (and log) the ones that stopped on their own
        since the last poll, and restarts by the engine; return the status."""
        for replica, container in enumerate(self._containers):
            before = self._seen.get(replica)
            if before is not None and before.final:
                continue
            try:
                container.reload()
            except engine_errors() as exc:  # removed under us
                self._drop("reload", exc)
                continue
            state = container.attrs.get("State", {})
            now = ContainerState.read(state.get("Status"))
            code = state.get("ExitCode")
            oom = (bool(state.get("OOMKilled")) or container.id in self._ooms
                   or (before is not None and before.oom_killed))
            restarts = int(container.attrs.get("RestartCount", 0))
            newly_ended = now.ended and (before is None or not before.state.ended)
            early = (not self._stopping) if newly_ended else (now.ended and before is not None
                                                               and before.early)
            final = before.final if before is not None else False
            if now.ended and not self._stopping:
                if newly_ended:
                    self._early_exits.append(code)
                    log.warning("pipeline.exited_early", pipeline=self.name, replica=replica,
                                exit_code=code, oom_killed=oom)
                # with a restart policy the engine may start it again: keep watching it
                final = self.spec.restart == "no"
            if restarts > (before.restarts if before is not None else 0):
                log.warning("pipeline.restarted", pipeline=self.name, replica=replica,
                            restarts=restarts)
            last_code = before.exit_code if before is not None else None
            self._seen[replica] = _Seen(state=now, exit_code=code if now.ended else last_code,
                                        oom_killed=oom, restarts=restarts, early=early, final=final)
        return self.status()

    async def apoll(self) -> RunnerStatus:
        return await anyio.to_thread.run_sync(self.poll)

    async def supervise(self) -> None:
        """Nothing to wait on: the engine applies the restart policy, and its event
        stream (followed since start) reports exits and restarts as they happen."""

    @property
    def running(self) -> int:
        return sum(1 for r in range(len(self._containers))
                   if not (r in self._seen and self._seen[r].state.ended))

    def status(self) -> RunnerStatus:
        """Each container as the last poll read it: restarts, OOM kills, the exit code of
        the first replica that ended on its own, and the engine errors dropped."""
        seen = [self._seen.get(r) for r in range(len(self._containers))]
        return RunnerStatus(
            name=self.name, replicas=tuple(_replica_status(r, s) for r, s in enumerate(seen)),
            restarts=sum(s.restarts for s in seen if s is not None),
            oom_killed=any(s.oom_killed for s in seen if s is not None),
            exit_code=self._early_exits[0] if self._early_exits else None,
            exited=len(self._early_exits), dropped=dict(self._dropped))

    def stats(self) -> Resources | None:
        """Latest CPU % (100 = one core) and memory MiB, summed over replicas."""
        samples = list(self._stats.values())
        if not samples:
            return None
        return Resources(cpu_percent=round(sum(s[0] for s in samples), 1),
                         memory_mib=round(sum(s[1] for s in samples), 1))

    def _sample_stats(self, container: Any, replica: int) -> None:
        """Follow the engine's stats stream (one sample a second) until the container ends."""
        try:
            for sample in container.stats(stream=True, decode=True):
                if self._stopping:
                    return
                cpu_stats, pre = sample.get("cpu_stats", {}), sample.get("precpu_stats", {})
                delta = cpu_stats.get("cpu_usage", {}).get("total_usage", 0) - \
                    pre.get("cpu_usage", {}).get("total_usage", 0)
                system = cpu_stats.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
                cpus = cpu_stats.get("online_cpus") or 1
                cpu = delta / system * cpus * 100 if system > 0 and delta > 0 else 0.0
                mem = sample.get("memory_stats", {}).get("usage", 0) / 2**20
                self._stats[replica] = (cpu, mem)
        except stream_errors() as exc:  # the container went away: no more samples
            self._drop("stats", exc)

    def last_lines(self, replica: int = 0, count: int = 10) -> str:
        return tail_lines(self.log_path(replica), count)

    # -- fault injection -----------------------------------------------------
    def _chosen(self, replica: int | None) -> list[Any]:
        return self._containers if replica is None else [self._containers[replica]]

    async def kill(self, replica: int | None = None) -> None:
        """SIGKILL each container's main process from the host, as a crash would. (An
        API kill counts as a manual stop, to which the engine applies no restart policy.)"""
        def blocking() -> None:
            for container in self._chosen(replica):
                try:
                    container.reload()
                    pid = container.attrs.get("State", {}).get("Pid")
                    if pid:
                        os.kill(pid, signal.SIGKILL)
                except engine_errors() + (ProcessLookupError,) as exc:  # gone already: nothing to kill
                    self._drop("kill", exc)
                    log.info("fault.kill_skipped", pipeline=self.name, error=str(exc))
        await anyio.to_thread.run_sync(blocking)

    def kill_now(self) -> None:
        """Kill every container at once (a second Ctrl+C); stop() still removes them."""
        self._stopping = True
        for container in self._containers:
            try:
                container.kill()
            except engine_errors() as exc:  # not running
                self._drop("kill_now", exc)

    async def pause(self, replica: int | None = None) -> None:
        """Freeze containers (the engine's freezer cgroup): alive, answering nothing."""
        await anyio.to_thread.run_sync(lambda: [c.pause() for c in self._chosen(replica)])

    async def resume(self, replica: int | None = None) -> None:
        def blocking() -> None:
            for container in self._chosen(replica):
                try:
                    container.unpause()
                except engine_errors() as exc:  # not paused (any more)
                    self._drop("unpause", exc)
        await anyio.to_thread.run_sync(blocking)

    def degrade_network(self, delay: Any, loss: float) -> None:
        """Delay and/or drop packets in every replica's network namespace."""
        from ..watch.fault_injector import netem_available

        use_netem = netem_available()
        if delay is not None and not use_netem:
            raise RunError("a network delay needs the kernel's netem queueing discipline "
                           "(sch_netem), which this machine does not have; `loss` alone works")
        for container in self._containers:
            container.reload()
            pid = container.attrs.get("State", {}).get("Pid")
            if not pid:
                continue
            self._degraded.append(netns.degrade(pid, delay=delay, loss=loss, use_netem=use_netem))
            log.warning("fault.network", pipeline=self.name, pid=pid, delay=str(delay), loss=loss)

    def restore_network(self) -> None:
        for done in self._degraded:
            try:
                netns.restore(done)
            except RunError as exc:  # the container is gone: so is its namespace
                log.info("fault.network_restore_skipped", pipeline=self.name, error=str(exc))
        self._degraded.clear()

    async def stop(self, timeout: float = 5.0) -> None:
        await anyio.to_thread.run_sync(self._stop_blocking, timeout)

    def _stop_blocking(self, timeout: float) -> None:
        self.poll()
        self._stopping = True
        for container in self._containers:  # a paused container cannot be stopped
            try:
                container.unpause()
            except engine_errors() as exc:  # not paused
                self._drop("unpause", exc)
        for container in self._containers:
            try:
                container.stop(timeout=int(max(timeout, 1)))
            except engine_errors() as exc:  # already gone
                self._drop("stop", exc)
        self.poll()
        for container in self._containers:
            try:
                container.remove(force=True)
            except engine_errors() as exc:  # already gone
                self._drop("remove", exc)
        for thread in self._log_threads:
            thread.join(timeout=2)
        if self._events is not None:
            try:
                self._events.close()
            except stream_errors() as exc:
                self._drop("events_close", exc)
        if self.spec.build and self.image:  # built for this run: remove it (layers stay cached)
            try:
                self._client.images.remove(self.image, force=True, noprune=True)
            except engine_errors() as exc:  # in use or gone: `ppipe clean` gets it later
                self._drop("image_remove", exc)


def _replica_status(replica: int, seen: _Seen | None) -> ReplicaStatus:
    """A container's engine state as the run's replica state."""
    if seen is None:
        return ReplicaStatus(replica=replica, state=ReplicaState.UNKNOWN)
    if seen.state.ended:
        state = ReplicaState.EXITED if seen.early else ReplicaState.STOPPED
    else:
        state = _REPLICA_STATE.get(seen.state, ReplicaState.UNKNOWN)
    return ReplicaStatus(replica=replica, state=state, exit_code=seen.exit_code,
                         restarts=seen.restarts, oom_killed=seen.oom_killed)


_REPLICA_STATE = {
    ContainerState.CREATED: ReplicaState.RUNNING,
    ContainerState.RUNNING: ReplicaState.RUNNING,
    ContainerState.PAUSED: ReplicaState.PAUSED,
    ContainerState.RESTARTING: ReplicaState.RESTARTING,
    ContainerState.REMOVING: ReplicaState.STOPPED,
}
