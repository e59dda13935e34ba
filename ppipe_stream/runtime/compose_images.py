"""Offline equivalents of the images compose/*.yml take from a registry.

The compose files name their images through variables whose defaults are public
images (``PPIPE_KAFKA_IMAGE``, default ``apache/kafka:4.1.1``; ``PPIPE_BASE_IMAGE``,
default ``python:3.12-slim``, the base compose/Dockerfile.harness builds on). On a
machine with no registry this module builds stand-ins, each once and cached by tag
(rebuilt when what it is made of changes, seen by a digest label):

- ``ppipe/kafka:4.1.1``: Apache Kafka in the layout of the public image
  (``/opt/kafka/bin``, ``/opt/kafka/libs``, the same ``KAFKA_*`` / ``CLUSTER_ID``
  environment, user ``appuser``, ``/var/lib/kafka/data``). Its root is a Debian
  bookworm ``minbase`` made with ``debootstrap`` plus Debian's
  ``openjdk-17-jre-headless`` (from the Debian mirror), its jars those of
  ``brokers/kafka-pom.xml`` (the cache the broker code resolves) plus the tools jar
  (``kafka-image/kafka-tools-pom.xml``), its entrypoint ``kafka-image/run``;
- ``ppipe/harness-base:local``: the pipelines' base image (``images.BASE_IMAGE``)
  plus every dependency of this package, installed inside it with no network from
  wheels fetched on the host. Dockerfile.harness builds on it with
  ``PPIPE_PIP_ARGS`` = :data:`HARNESS_PIP_ARGS` (``pip install`` of the package
  alone, from its source, nothing fetched).

:func:`compose_environment` is what to export before ``docker compose`` to use
them. Blocking (minutes on first use): call from a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import shlex
import shutil
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

import structlog

from ..brokers.kafka import KAFKA_VERSION, ensure_kafka_jars
from ..errors import PipelineError
from .images import cache_dir, ensure_base_image

__all__ = ["KAFKA_IMAGE", "HARNESS_BASE_IMAGE", "HARNESS_PIP_ARGS", "ensure_kafka_image",
           "ensure_harness_base_image", "compose_environment", "build_compose_images"]

log = structlog.get_logger(__name__)

KAFKA_IMAGE = f"ppipe/kafka:{KAFKA_VERSION}"
JRE_BASE_IMAGE = "ppipe/jre-base:local"
HARNESS_BASE_IMAGE = "ppipe/harness-base:local"
HARNESS_PIP_ARGS = "--no-deps --no-index --no-build-isolation"
DIGEST_LABEL = "ppipe.image.digest"
_FILES = Path(__file__).with_name("kafka-image")
_JRE_PACKAGES = ["openjdk-17-jre-headless"]
# The public image's command-line tools that the compose files and docs use.
_TOOLS = {
    "kafka-server-start.sh": "kafka.Kafka",
    "kafka-storage.sh": "kafka.tools.StorageTool",
    "kafka-broker-api-versions.sh": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-topics.sh": "org.apache.kafka.tools.TopicCommand",
}


def _run(args: list[str], what: str, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-8:])
        raise PipelineError("image", f"{what} failed (exit {result.returncode})", last_lines=tail)
    return result


def _labelled(client, tag: str, digest: str) -> bool:
    """Whether the engine has ``tag`` built from what ``digest`` names."""
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return (image.labels or {}).get(DIGEST_LABEL) == digest


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:12]


def _jre_root() -> Path:
    """A bookworm ``minbase`` root with Debian's JRE, made once with debootstrap."""
    root = cache_dir() / "rootfs-bookworm-jre"
    marker = root / ".ppipe-complete"
    if marker.exists():
        return root
    if shutil.which("debootstrap") is None:
        raise PipelineError("image", "debootstrap is needed to build the Kafka image offline "
                            "(apt-get install debootstrap)")
    if root.exists():
        shutil.rmtree(root)
    log.info("image.debootstrap", root=str(root), include=_JRE_PACKAGES)
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(_JRE_PACKAGES)}",
          "bookworm", str(root)], "debootstrap of the JRE root")
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):  # 140 MB the image never reads
        for path in (root / leftover).glob("*"):
            if path.is_file():
                path.unlink()
    marker.write_text("ok\n")
    return root


def _jre_base_image(client) -> str:
    import docker.errors

    try:
        client.images.get(JRE_BASE_IMAGE)
        return JRE_BASE_IMAGE
    except docker.errors.ImageNotFound:
        pass
    root = _jre_root()
    log.info("image.import", image=JRE_BASE_IMAGE)
    tar = subprocess.Popen(["tar", "-C", str(root), "--exclude=./.ppipe-complete", "-c", "."],
                           stdout=subprocess.PIPE)
    assert tar.stdout is not None
    repository, tag = JRE_BASE_IMAGE.split(":")
    client.api.import_image_from_stream(tar.stdout, repository=repository, tag=tag)
    tar.wait()
    client.images.get(JRE_BASE_IMAGE)
    return JRE_BASE_IMAGE


def _kafka_tools_jars() -> Path:
    """The tools jar (kafka-tools-pom.xml), resolved with Maven once into the cache."""
    root = cache_dir() / f"kafka-tools-{KAFKA_VERSION}"
    libs = root / "libs"
    if (root / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PipelineError("image", "Maven is needed to fetch Kafka's tools jar (apt-get install maven)")
    if libs.exists():
        shutil.rmtree(libs)
    _run([mvn, "-q", "-B", "-f", str(_FILES / "kafka-tools-pom.xml"), "dependency:copy-dependencies",
          f"-DoutputDirectory={libs}", "-DincludeScope=runtime"], "resolving kafka-tools with Maven")
    (root / ".complete").write_text(KAFKA_VERSION + "\n")
    return libs


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _tool_script(main_class: str) -> bytes:
    return f'#!/bin/sh\nexec /opt/kafka/bin/kafka-run-class.sh {main_class} "$@"\n'.encode()


def ensure_kafka_image(client) -> str:
    """``ppipe/kafka:<version>``, built unless the engine has it from the same files."""
    libs = ensure_kafka_jars()
    tools = _kafka_tools_jars()
    jars = sorted({*libs.glob("*.jar"), *tools.glob("*.jar")}, key=lambda p: p.name)
    names = "\n".join(sorted({p.name for p in jars})).encode()
    scripts = {name: (_FILES / name).read_bytes() for name in ("run", "kafka-run-class.sh")}
    log4j = (libs.parent / "log4j2.properties").read_bytes()
    digest = _digest(names, log4j, *scripts.values(), repr(sorted(_TOOLS.items())).encode(),
                     repr(_JRE_PACKAGES).encode())
    if _labelled(client, KAFKA_IMAGE, digest):
        return KAFKA_IMAGE
    base = _jre_base_image(client)
    dockerfile = f"""FROM {base}
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /opt/kafka appuser
COPY libs /opt/kafka/libs
COPY bin /opt/kafka/bin
COPY log4j2.properties /opt/kafka/config/log4j2.properties
RUN mkdir -p /var/lib/kafka/data /etc/kafka/docker \\
 && ln -s /opt/kafka/bin/run /etc/kafka/docker/run \\
 && chown -R appuser:appuser /opt/kafka/config /var/lib/kafka
ENV PATH=/opt/kafka/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL {DIGEST_LABEL}={digest}
USER appuser
WORKDIR /opt/kafka
EXPOSE 9092
CMD ["/etc/kafka/docker/run"]
"""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile.encode())
        _add_bytes(tar, "log4j2.properties", log4j)
        for name, data in scripts.items():
            _add_bytes(tar, f"bin/{name}", data, 0o755)
        for name, main_class in _TOOLS.items():
            _add_bytes(tar, f"bin/{name}", _tool_script(main_class), 0o755)
        for jar in jars:
            tar.add(str(jar), arcname=f"libs/{jar.name}")
    context.seek(0)
    log.info("image.build", image=KAFKA_IMAGE)
    client.images.build(fileobj=context, custom_context=True, tag=KAFKA_IMAGE, rm=True,
                        network_mode="none")
    return KAFKA_IMAGE


def _harness_requirements() -> list[str]:
    """This package's own dependencies (no extras), as its metadata lists them."""
    return [r for r in (metadata.requires("ppipe-stream") or []) if "extra ==" not in r]


def ensure_harness_base_image(client) -> str:
    """``ppipe/harness-base:local``: the pipelines' base plus this package's dependencies."""
    requirements = _harness_requirements()
    base = ensure_base_image(client)
    base_id = client.images.get(base).id
    digest = _digest("\n".join(requirements).encode(), base_id.encode(), b"python -> python3")
    if _labelled(client, HARNESS_BASE_IMAGE, digest):
        return HARNESS_BASE_IMAGE
    wheels = cache_dir() / "harness-wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    log.info("image.wheels", into=str(wheels), requirements=requirements)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
          "--wheel-dir", str(wheels), *requirements], "pip wheel of the harness's dependencies")
    install = ["python3", "-m", "pip", "install", "--quiet", "--no-index", "--find-links", "/wheels",
               "--break-system-packages", "--no-cache-dir", "--disable-pip-version-check",
               "--root-user-action=ignore", *requirements]
    # `python` too, as in python:3.12-slim (compose/harness.yml's echo service runs `python -m ...`)
    container = client.containers.run(
        base, ["sh", "-c", f"{shlex.join(install)} && ln -sf /usr/bin/python3 /usr/local/bin/python"],
        volumes={str(wheels): {"bind": "/wheels", "mode": "ro"}}, network_mode="none",
        detach=True)
    try:
        status = container.wait(timeout=900)
        if status.get("StatusCode") != 0:
            tail = container.logs().decode(errors="replace").splitlines()[-8:]
            raise PipelineError("image", f"pip install in {base} failed (exit {status.get('StatusCode')})",
                                last_lines="\n".join(tail))
        repository, tag = HARNESS_BASE_IMAGE.split(":")
        container.commit(repository=repository, tag=tag, changes=[
            f"LABEL {DIGEST_LABEL}={digest}", "ENV PIP_BREAK_SYSTEM_PACKAGES=1", 'CMD ["python3"]'])
    finally:
        container.remove(force=True)
    log.info("image.built", image=HARNESS_BASE_IMAGE)
    return HARNESS_BASE_IMAGE


def compose_environment() -> dict[str, str]:
    """The variables that point compose/*.yml at the images built here."""
    return {"PPIPE_KAFKA_IMAGE": KAFKA_IMAGE, "PPIPE_BASE_IMAGE": HARNESS_BASE_IMAGE,
            "PPIPE_PIP_ARGS": HARNESS_PIP_ARGS}


def build_compose_images(client) -> dict[str, str]:
    """Both images (each skipped when already built); returns :func:`compose_environment`."""
    ensure_kafka_image(client)
    ensure_harness_base_image(client)
    return compose_environment()
