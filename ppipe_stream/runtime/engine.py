"""The Docker engine as the runtime sees it: the connection, the container states, the errors.

Owns :func:`docker_client` (a client from ``DOCKER_HOST``, or an error that says
why there is none), :class:`ContainerState` (a container's ``State.Status`` as an
Enum) and the named errors the Docker modules catch: :func:`engine_errors` for
an SDK call the engine refuses or cannot answer, :func:`stream_errors` for a
followed stream that is cut off. It imports the Docker SDK only when called, and
starts no container.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import PipelineError, PpipeError, RunError

__all__ = ["ContainerState", "docker_client", "engine_errors", "stream_errors"]


class ContainerState(enum.Enum):
    """A container's ``State.Status`` as the engine reports it."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"
    UNKNOWN = "unknown"  # not read yet, or a state this code does not know

    @classmethod
    def read(cls, value: object) -> ContainerState:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN

    @property
    def ended(self) -> bool:
        return self in (ContainerState.EXITED, ContainerState.DEAD)


def engine_errors() -> tuple[type[Exception], ...]:
    """What a Docker SDK call raises when the engine says no or cannot be reached:
    its own errors (NotFound, APIError, ...) and requests' (raised through the SDK)."""
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException)


def stream_errors() -> tuple[type[Exception], ...]:
    """What reading a followed stream (logs, stats, events) raises when it is cut off:
    the engine's errors, urllib3's, and the closed socket's (OSError, ValueError)."""
    import urllib3.exceptions

    return (*engine_errors(), urllib3.exceptions.HTTPError, OSError, ValueError)


def docker_client(pipelines: Sequence[str] = ()) -> Any:
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
