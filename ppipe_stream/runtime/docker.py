"""The Docker runtime: a pipeline as sandboxed containers (``runtime = "docker"``).

Owns building or finding the pipeline's image, creating its replicas on the
run's sandbox network with the protocol's environment and the sandbox's
limits (non-root, read-only root, a small tmpfs, all capabilities dropped,
no-new-privileges, pids/memory/CPU limits, no Docker socket), streaming their
logs into the run folder, reading their state (exit code, OOM kill, restarts)
and stats, and removing them. Every object carries ``ppipe.run`` labels. For
fault injection it kills, pauses and resumes containers, and degrades their
network from the host, inside each container's network namespace (netem delay
and loss where the kernel has it; loss alone by an iptables random match
otherwise).

The Docker SDK blocks; every public coroutine here runs it in a worker thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import structlog

from ..errors import PipelineError, PpipeError, RunError
from ..incidents import IncidentKind
from ..procutil import tail_lines
from .sandbox import LABEL_ROLE, LABEL_RUN
from .wheels import fill_wheels

__all__ = ["DockerRunner", "SANDBOX_USER", "docker_client", "LABEL_PIPELINE"]

log = structlog.get_logger(__name__)

SANDBOX_USER = "10001:10001"
LABEL_PIPELINE = "ppipe.pipeline"
BASE_IMAGE_ARG = "BASE_IMAGE"


def docker_client(pipelines: Sequence[str] = ()):
    """A Docker client from the environment (DOCKER_HOST), or an error saying why not: a
    PipelineError naming the first of ``pipelines`` (the ones that need the engine), or a
    RunError when no pipeline asked (``ppipe clean``)."""
    import docker
    import docker.errors

    def no_engine(why: str) -> PpipeError:
        fix = "start dockerd and set DOCKER_HOST, or give the pipeline runtime = \"process\""
        if not pipelines:
            return RunError(f"no Docker engine: {why}; start dockerd and set DOCKER_HOST")
        more = f" (and {len(pipelines) - 1} more docker pipeline(s))" if len(pipelines) > 1 else ""
        return PipelineError(pipelines[0], f"runtime docker{more}: no Docker engine: {why}; {fix}")

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host[len("unix://"):]).exists():
        raise no_engine(f"{host[len('unix://'):]} does not exist")
    client = None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except (docker.errors.DockerException, OSError) as exc:
        if client is not None:
            client.close()
        raise no_engine(f"none reachable at {host} ({exc})") from exc


class DockerRunner:
    """Runs one pipeline's replicas as containers on the sandbox network."""

    def __init__(self, spec: Any, *, client, env: dict[str, str], run_dir: Path, base_dir: Path,
                 run_id: str, network: str, base_image: str) -> None:
        self.spec = spec
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
        self._state: dict[int, dict[str, Any]] = {}
        self._stats: dict[int, tuple[float, float]] = {}
        self._ooms: set[str] = set()  # container ids the engine reported an OOM kill for
        self._events = None
        self._degraded: list[tuple[int, str]] = []  # (container pid, "netem" | "iptables")
        self._early_exits: list[int | None] = []  # exit codes of replicas that ended on their own
        self.image: str | None = None
        self.incidents: Any = None  # the run's IncidentLog, set by the run

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
            restart = {"Name": spec.restart}
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
                    cap_drop=["ALL"], security_opt=["no-new-privileges"],
                    pids_limit=spec.pids, mem_limit=spec.memory, memswap_limit=spec.memory,
                    nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
                    restart_policy=restart)
                container.start()
            except Exception as exc:  # docker.errors.* : report as a pipeline that cannot start
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
        except Exception:  # noqa: BLE001 - the stream closes when the run stops
            return

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

    def _stream_logs(self, container, replica: int) -> None:
        with open(self.log_path(replica), "ab") as out:
            try:
                for chunk in container.logs(stream=True, follow=True):
                    out.write(chunk)
                    out.flush()
            except Exception:  # noqa: BLE001 - the container went away: the log simply ends
                pass

    def poll(self) -> list[dict[str, Any]]:
        """Containers that stopped on their own since the last poll."""
        new = []
        for replica, container in enumerate(self._containers):
            if replica in self._state and self._state[replica].get("final"):
                continue
            try:
                container.reload()
            except Exception:  # noqa: BLE001 - removed under us
                continue
            state = container.attrs.get("State", {})
            info = {"status": state.get("Status"), "exit_code": state.get("ExitCode"),
                    "oom_killed": bool(state.get("OOMKilled")) or container.id in self._ooms
                    or bool(self._state.get(replica, {}).get("oom_killed")),
                    "restarts": int(container.attrs.get("RestartCount", 0))}
            before = self._state.get(replica, {})
            if info["status"] in ("exited", "dead") and not self._stopping:
                if before.get("status") not in ("exited", "dead"):  # newly ended
                    self._early_exits.append(info["exit_code"])
                    new.append({"replica": replica, **info})
                    log.warning("pipeline.exited_early", pipeline=self.name, replica=replica,
                                exit_code=info["exit_code"], oom_killed=info["oom_killed"])
                # with a restart policy the engine may start it again: keep watching it
                info["final"] = self.spec.restart == "no"
            if info["restarts"] > before.get("restarts", 0):
                log.warning("pipeline.restarted", pipeline=self.name, replica=replica,
                            restarts=info["restarts"])
            self._state[replica] = {**before, **info}
        return new

    async def apoll(self) -> list[dict[str, Any]]:
        return await anyio.to_thread.run_sync(self.poll)

    @property
    def running(self) -> int:
        return sum(1 for r in range(len(self._containers))
                   if self._state.get(r, {}).get("status") not in ("exited", "dead"))

    def stats(self) -> dict[str, float] | None:
        """Latest CPU % (100 = one core) and memory MiB, summed over replicas."""
        samples = list(self._stats.values())
        if not samples:
            return None
        return {"cpu_percent": round(sum(s[0] for s in samples), 1),
                "memory_mib": round(sum(s[1] for s in samples), 1)}

    def _sample_stats(self, container, replica: int) -> None:
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
        except Exception:  # noqa: BLE001 - the container went away: no more samples
            return

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
                except Exception as exc:  # noqa: BLE001 - gone already: nothing to kill
                    log.info("fault.kill_skipped", pipeline=self.name, error=str(exc))
        await anyio.to_thread.run_sync(blocking)

    def kill_now(self) -> None:
        """Kill every container at once (a second Ctrl+C); stop() still removes them."""
        self._stopping = True
        for container in self._containers:
            try:
                container.kill()
            except Exception:  # noqa: BLE001 - not running
                pass

    async def pause(self, replica: int | None = None) -> None:
        """Freeze containers (the engine's freezer cgroup): alive, answering nothing."""
        await anyio.to_thread.run_sync(lambda: [c.pause() for c in self._chosen(replica)])

    async def resume(self, replica: int | None = None) -> None:
        def blocking() -> None:
            for container in self._chosen(replica):
                try:
                    container.unpause()
                except Exception:  # noqa: BLE001 - not paused (any more)
                    pass
        await anyio.to_thread.run_sync(blocking)

    def degrade_network(self, delay: Any, loss: float) -> None:
        """Delay and/or drop packets in every replica's network namespace."""
        from ..faults import netem_available

        use_netem = netem_available()
        if delay is not None and not use_netem:
            raise RunError("a network delay needs the kernel's netem queueing discipline "
                           "(sch_netem), which this machine does not have; `loss` alone works")
        for container in self._containers:
            container.reload()
            pid = container.attrs.get("State", {}).get("Pid")
            if not pid:
                continue
            if use_netem:
                args = ["tc", "qdisc", "add", "dev", "eth0", "root", "netem"]
                if delay is not None:
                    args += ["delay", f"{float(delay) * 1000:.3f}ms"]
                if loss:
                    args += ["loss", f"{loss * 100:.4f}%"]
                _in_netns(pid, args)
                self._degraded.append((pid, "netem"))
            else:
                for chain in ("INPUT", "OUTPUT"):
                    _in_netns(pid, ["iptables", "-I", chain, "-m", "statistic", "--mode", "random",
                                    "--probability", f"{loss:.6f}", "-j", "DROP"])
                self._degraded.append((pid, f"iptables:{loss:.6f}"))
            log.warning("fault.network", pipeline=self.name, pid=pid, delay=str(delay), loss=loss)

    def restore_network(self) -> None:
        for pid, how in self._degraded:
            try:
                if how == "netem":
                    _in_netns(pid, ["tc", "qdisc", "del", "dev", "eth0", "root"])
                else:
                    for chain in ("INPUT", "OUTPUT"):
                        _in_netns(pid, ["iptables", "-D", chain, "-m", "statistic", "--mode", "random",
                                        "--probability", how.split(":", 1)[1], "-j", "DROP"])
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
            except Exception:  # noqa: BLE001 - not paused
                pass
        for container in self._containers:
            try:
                container.stop(timeout=int(max(timeout, 1)))
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.poll()
        for container in self._containers:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        for thread in self._log_threads:
            thread.join(timeout=2)
        if self._events is not None:
            try:
                self._events.close()
            except Exception:  # noqa: BLE001
                pass
        if self.spec.build and self.image:  # built for this run: remove it (layers stay cached)
            try:
                self._client.images.remove(self.image, force=True, noprune=True)
            except Exception:  # noqa: BLE001 - in use or gone: `ppipe clean` gets it later
                pass

    def status(self) -> dict[str, object]:
        states = list(self._state.values())
        return {
            "restarts": sum(s.get("restarts", 0) for s in states),
            "oom_killed": any(s.get("oom_killed") for s in states),
            "exit_code": self._early_exits[0] if self._early_exits else None,
        }


def _in_netns(pid: int, args: list[str]) -> None:
    """Run ``args`` inside the network namespace of process ``pid`` (needs root)."""
    result = subprocess.run(["nsenter", "-t", str(pid), "-n", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RunError(f"{' '.join(args[:3])} in the container's network failed: "
                       f"{(result.stderr or result.stdout).strip()}")
