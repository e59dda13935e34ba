"""The wheel cache of a pipeline's build context: what ``requirements.txt`` lists, on disk.

Pipeline images are built with no network (``network_mode="none"``), so a
Dockerfile cannot reach PyPI. A build context that has a ``requirements.txt``
and a ``wheels/`` folder (what ``ppipe init`` makes) gets that folder filled on
the host before the build: ``pip wheel`` of every listed package the base
image does not already have (``PIPELINE_PACKAGES`` and the ppipe SDK), with
their dependencies; the Dockerfile then installs with ``pip install --no-index
--find-links wheels``. Blocking: call from a worker thread. It builds no image.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import structlog

from ..errors import PipelineError
from .images import PIPELINE_PACKAGES

__all__ = ["fill_wheels", "needed_requirements", "WHEELS_DIR"]

log = structlog.get_logger(__name__)

WHEELS_DIR = "wheels"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_IN_BASE = {_canonical(_NAME.match(p).group(1)) for p in PIPELINE_PACKAGES} | {"ppipe-stream"}  # type: ignore[union-attr]


def needed_requirements(requirements: Path) -> list[str]:
    """The lines of ``requirements`` the base image does not satisfy (comments dropped)."""
    needed = []
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = _NAME.match(line)
        if name is None or line.startswith("-"):
            needed.append(line)  # an option or a URL: pass it to pip as it is
        elif _canonical(name.group(1)) not in _IN_BASE:
            needed.append(line)
    return needed


def fill_wheels(context: Path, pipeline: str, *, timeout_s: float = 600) -> list[str]:
    """Fill ``context/wheels`` for ``context/requirements.txt`` when the context asks for it
    (has a ``wheels/`` folder); returns the requirements fetched. PipelineError, in one
    line saying what to do, when pip cannot get them on this host."""
    requirements = context / "requirements.txt"
    wheels = context / WHEELS_DIR
    if not requirements.is_file() or not wheels.is_dir():
        return []
    needed = needed_requirements(requirements)
    if not needed:
        return []
    log.info("pipeline.wheels", pipeline=pipeline, requirements=needed, into=str(wheels))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                           "--wheel-dir", str(wheels), *needed],
                          capture_output=True, text=True, timeout=timeout_s, cwd=context)
    if done.returncode != 0:
        last = next((line for line in reversed((done.stderr or done.stdout).splitlines()) if line.strip()),
                    f"pip exit {done.returncode}")
        raise PipelineError(pipeline, f"requirements.txt: pip could not fetch {', '.join(needed)} on this "
                            f"host ({last.strip()}); the image builds without network, so put their "
                            f"wheels in {wheels} yourself: pip download -d {wheels} -r {requirements}")
    return needed
