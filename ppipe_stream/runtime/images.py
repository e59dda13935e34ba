"""Base images for pipeline containers, made offline (no image registry needed).

Owns two images, each built once per machine and cached by tag:

- ``ppipe/python-base:local``: a Debian bookworm ``minbase`` root made with
  ``debootstrap`` (python3, pip) plus the Python packages example pipelines
  use (installed with ``pip install --target`` from the host), imported with
  ``docker import``;
- ``ppipe/python-sdk:<hash>``: the base plus this package (its SDK), from a
  two-line ``docker build``; the hash follows the package's source, so an
  edited SDK gets a new image.

Pipeline Dockerfiles take the base as ``ARG BASE_IMAGE`` (users with a
registry pass ``python:3.12-slim`` and ``pip install ppipe-stream``). Blocking:
call from a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import structlog

from ..errors import PipelineError

__all__ = ["BASE_IMAGE", "ensure_base_image", "ensure_sdk_image", "cache_dir", "PIPELINE_PACKAGES"]

log = structlog.get_logger(__name__)

BASE_IMAGE = "ppipe/python-base:local"
SDK_REPOSITORY = "ppipe/python-sdk"
PIPELINE_PACKAGES = ["aiokafka>=0.11", "msgspec>=0.18", "river>=0.21", "scikit-learn>=1.4",
                     "numpy", "structlog>=24.1", "anyio>=4.4"]
_SITE = "usr/local/lib/python3.11/dist-packages"


def cache_dir() -> Path:
    return Path(os.environ.get("PPIPE_CACHE_DIR", Path.home() / ".cache" / "ppipe"))


def _run(args: list[str], what: str, timeout: float = 900) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-8:])
        raise PipelineError("image", f"{what} failed (exit {result.returncode})", last_lines=tail)


def ensure_base_image(client) -> str:
    """Build ``ppipe/python-base:local`` unless the engine has it already."""
    import docker.errors

    try:
        client.images.get(BASE_IMAGE)
        return BASE_IMAGE
    except docker.errors.ImageNotFound:
        pass
    root = cache_dir() / "rootfs-bookworm"
    marker = root / ".ppipe-complete"
    if not marker.exists():
        if shutil.which("debootstrap") is None:
            raise PipelineError("image", "debootstrap is needed to build the base image offline "
                                "(apt-get install debootstrap)")
        if root.exists():
            shutil.rmtree(root)
        log.info("image.debootstrap", root=str(root))
        _run(["debootstrap", "--variant=minbase", "--include=python3,python3-pip,python3-venv",
              "bookworm", str(root)], "debootstrap")
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
              "--target", str(root / _SITE), *PIPELINE_PACKAGES], "pip install into the base image")
        marker.write_text("ok\n")
    log.info("image.import", image=BASE_IMAGE)
    tar = subprocess.Popen(["tar", "-C", str(root), "--exclude=./.ppipe-complete", "-c", "."],
                           stdout=subprocess.PIPE)
    assert tar.stdout is not None
    client.api.import_image_from_stream(tar.stdout, repository=BASE_IMAGE.split(":")[0],
                                        tag=BASE_IMAGE.split(":")[1])
    tar.wait()
    client.images.get(BASE_IMAGE)
    return BASE_IMAGE


def _package_digest(package: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def ensure_sdk_image(client) -> str:
    """The base image plus this package, tagged by the package's source hash."""
    import docker.errors

    base = ensure_base_image(client)
    package = Path(__file__).resolve().parents[1]
    tag = f"{SDK_REPOSITORY}:{_package_digest(package)}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = (f"FROM {base}\nCOPY ppipe_stream /{_SITE}/ppipe_stream\n"
                      "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1\n").encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(str(package), arcname="ppipe_stream",
                filter=lambda t: None if "__pycache__" in t.name else t)
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True,
                        network_mode="none")
    log.info("image.built", image=tag)
    return tag
