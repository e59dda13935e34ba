"""The run's pipelines: each one's runner, its start, and the wait until all are ready.

Owns making the :class:`~ppipe_stream.runtime.base.Runner` a pipeline's runtime
asks for (a process, a container on the sandbox network, or one the user
starts), starting each in turn with its stop pushed on the run's exit stack
(:func:`start_pipelines`), and :func:`wait_ready`: the readiness ping on the
control topic, answered by the SDK once its input partitions are assigned. A
pipeline that exits before it is ready is a :class:`~ppipe_stream.errors.PipelineError`
with its last lines. What a runner does is the runtime's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Protocol

import anyio
import structlog

from .. import protocol
from ..errors import PipelineError
from ..runtime import ExternalRunner, ProcessRunner, Runner
from ..scenario import DockerPipeline, ExternalPipeline, LoadedScenario
from ..scenario.model import Pipeline
from ..security import ClientSecurity
from ..watch.incidents import IncidentLog
from .broker_start import RunBroker
from .cleanup import Shield
from .folder import RunFolder
from .output_reader import READY_COMMAND_ID

__all__ = ["READY_TIMEOUT_S", "Commands", "start_pipelines", "wait_ready"]

log = structlog.get_logger(__name__)

READY_TIMEOUT_S = 60.0
TLS_DIR = "/run/ppipe/tls"  # where a docker pipeline finds the cluster's TLS files


class Commands(Protocol):
    """What sends on the control topic (an ``AIOKafkaProducer``)."""

    async def send_and_wait(self, topic: str, value: bytes) -> object:
        ...


async def start_pipelines(runners: list[Runner], stack: AsyncExitStack, *, loaded: LoadedScenario,
                          folder: RunFolder, topics: protocol.Topics, broker: RunBroker,
                          security: ClientSecurity, incidents: IncidentLog, shield: Shield,
                          step: Callable[[str, Callable[[], Awaitable[None]]], Awaitable[None]]) -> None:
    """Start every pipeline in turn; each started runner is appended to ``runners``."""
    scenario = loaded.scenario
    for spec in scenario.pipelines:
        env = protocol.pipeline_env(bootstrap=broker.bootstrap, topics=topics,
                                    pipeline=spec.name, run_id=folder.run_id,
                                    task=scenario.scoring.task, security=security.env(),
                                    acks=scenario.kafka.acks, idempotent=scenario.kafka.idempotent)
        if isinstance(spec, ExternalPipeline) and env.pop("PPIPE_SECURITY_SASL_PASSWORD", ""):
            # its environment is written to the run folder: the secret stays out
            log.warning("pipeline.external_secret", pipeline=spec.name,
                        hint="set PPIPE_SECURITY_SASL_PASSWORD yourself; it is not written out")
        files: dict[str, str] = {}
        if isinstance(spec, DockerPipeline):
            env, files = container_tls_files(env)
        runner = _runner(spec, env, loaded=loaded, folder=folder, broker=broker, files=files)
        runner.incidents = incidents
        await step(f"starting pipeline {spec.name!r}", runner.start)
        runners.append(runner)
        stack.push_async_callback(shield.call, runner.stop)


def container_tls_files(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """A container's environment with the TLS files' paths its own, and the files to
    mount read-only there (host path -> container path)."""
    env, files = dict(env), {}
    for key in ("SSL_CAFILE", "SSL_CERTFILE", "SSL_KEYFILE"):
        name = f"PPIPE_SECURITY_{key}"
        if env.get(name):
            target = f"{TLS_DIR}/{key.removeprefix('SSL_').lower()}.pem"
            files[env[name]] = target
            env[name] = target
    return env, files


def _runner(spec: Pipeline, env: dict[str, str], *, loaded: LoadedScenario, folder: RunFolder,
            broker: RunBroker, files: dict[str, str]) -> Runner:
    if isinstance(spec, DockerPipeline):
        from ..runtime.docker import DockerRunner

        assert broker.sandbox is not None
        return DockerRunner(spec, client=broker.docker, env=env, run_dir=folder.path,
                            base_dir=loaded.base_dir, run_id=folder.run_id,
                            network=broker.sandbox.name, base_image=broker.base_image,
                            hosts=broker.hosts, files=files)
    if isinstance(spec, ExternalPipeline):
        return ExternalRunner(spec, env=env, run_dir=folder.path)
    return ProcessRunner(spec, env=env, run_dir=folder.path, base_dir=loaded.base_dir)


async def wait_ready(runners: list[Runner], *, ready: set[str], commands: Commands,
                     control_topic: str) -> None:
    """Ping every pipeline on the control topic; it is ready once it replies (its
    name in ``ready``, the output reader's). Not all ready in time: a warning."""
    timeout = max([READY_TIMEOUT_S, *(r.ready_timeout for r in runners)])
    deadline = time.monotonic() + timeout
    command = protocol.Command(command_id=READY_COMMAND_ID, command="ping",
                               deadline_ns=time.time_ns() + int(timeout * 1e9))
    await commands.send_and_wait(control_topic, protocol.encode(command))
    waiting = {r.name for r in runners}
    last_poll = 0.0
    while waiting and time.monotonic() < deadline:
        waiting -= ready
        if time.monotonic() - last_poll >= 0.5:
            last_poll = time.monotonic()
            for runner in runners:
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
