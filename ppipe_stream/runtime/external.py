"""The external runtime: a pipeline the user runs elsewhere (``runtime = "external"``).

Owns telling the user how to start it: the protocol's environment is written to
``pipeline-<name>.env`` in the run folder and printed on standard error, and
the run waits (up to ``ready_timeout``) for the pipeline's reply to the
readiness ping. It starts and stops nothing.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import structlog

__all__ = ["ExternalRunner"]

log = structlog.get_logger(__name__)


class ExternalRunner:
    """Stands for a pipeline running outside the harness's control."""

    def __init__(self, spec, *, env: dict[str, str], run_dir: Path) -> None:
        self.spec = spec
        self.name = spec.name
        self._env = env
        self._run_dir = run_dir
        self.ready_timeout = float(spec.ready_timeout)

    @property
    def env_path(self) -> Path:
        return self._run_dir / f"pipeline-{self.name}.env"

    async def start(self) -> None:
        lines = [f"export {key}={shlex.quote(value)}" for key, value in sorted(self._env.items())]
        self.env_path.write_text("\n".join(lines) + "\n")
        print(f"ppipe: pipeline {self.name!r} is external: start it now with this environment "
              f"(also in {self.env_path}); the run waits up to {self.ready_timeout:.0f} s for it:",
              file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        sys.stderr.flush()
        log.info("pipeline.external", pipeline=self.name, env_file=str(self.env_path))

    def poll(self) -> list:
        return []

    async def apoll(self) -> list:
        return []

    @property
    def running(self) -> int:
        return 1  # unknown: assumed up; its answers tell

    def last_lines(self, replica: int = 0, count: int = 10) -> str:
        return ""

    def stats(self) -> dict[str, float] | None:
        return None

    def kill_now(self) -> None:
        """Nothing to kill: the user started it elsewhere."""

    async def stop(self, timeout: float = 5.0) -> None:
        return None

    def status(self) -> dict[str, object]:
        return {"restarts": 0, "oom_killed": False, "exit_code": None}
