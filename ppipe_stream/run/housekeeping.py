"""``ppipe clean`` and ``ppipe init``: leftovers out, a new pipeline folder in.

Owns removing what runs left behind (containers, networks, built images and
firewall rules labelled ``ppipe.run``), and scaffolding a pipeline folder (a
Dockerfile taking the base image as a build argument, an SDK-based main, a
requirements file, and a scenario that runs it) that works as generated. The
Dockerfile installs what ``requirements.txt`` lists from ``wheels/``, which
``ppipe run`` fills on the host (:mod:`ppipe_stream.runtime.wheels`): the build
has no network. ``runtime="process"`` scaffolds a pipeline that needs no Docker.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ..errors import UsageError

__all__ = ["clean", "init_pipeline"]


def clean() -> dict[str, int]:
    """Remove every container, network and built image a run left; returns counts."""
    from ..runtime.docker import LABEL_PIPELINE, docker_client
    from ..runtime.sandbox import FIREWALL_CHAINS, LABEL_RUN

    client = docker_client()
    removed = {"containers": 0, "networks": 0, "images": 0, "firewall_rules": 0}
    try:
        for container in client.containers.list(all=True, filters={"label": LABEL_RUN}):
            container.remove(force=True)
            removed["containers"] += 1
        for network in client.networks.list(filters={"label": LABEL_RUN}):
            network.remove()
            removed["networks"] += 1
        for image in client.images.list(filters={"label": LABEL_PIPELINE}):
            client.images.remove(image.id, force=True)
            removed["images"] += 1
    finally:
        client.close()
    for binary, chain in FIREWALL_CHAINS:
        try:
            rules = subprocess.run([binary, "-S", chain], capture_output=True, text=True).stdout
        except FileNotFoundError:
            continue
        for rule in rules.splitlines():
            if re.search(r"-i ppb\d+ ", rule) and rule.startswith("-A "):
                subprocess.run([binary, "-D", *rule.split()[1:]], capture_output=True)
                removed["firewall_rules"] += 1
    return removed


_MAIN = '''"""Pipeline {name}: answers each event, learns from the delayed labels.

Started by ppipe with the protocol's environment (docs/protocol.md)."""

from ppipe_stream.sdk import Pipeline
from river import linear_model, multiclass, preprocessing

model = preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(linear_model.LogisticRegression())
app = Pipeline()


@app.predict
def predict(features):
    return model.predict_one(features) or ""


@app.learn
def learn(features, label):
    model.learn_one(features, label)


if __name__ == "__main__":
    app.run()
'''

_DOCKERFILE = '''# ppipe passes its offline base image (Python with the ppipe SDK, river and
# scikit-learn); with a registry: --build-arg BASE_IMAGE=python:3.12-slim (and drop
# --no-index below, so pip may fetch ppipe-stream and river).
# The build has no network: `ppipe run` first puts what requirements.txt lists beyond
# the base image into wheels/ (pip wheel, on the host), and pip installs from there.
ARG BASE_IMAGE=python:3.12-slim
FROM ${{BASE_IMAGE}}
WORKDIR /app
COPY requirements.txt ./
COPY wheels/ /tmp/wheels/
RUN python3 -m pip install --no-cache-dir --no-index --find-links /tmp/wheels --break-system-packages -r requirements.txt \\
 || {{ echo "ppipe: a package of requirements.txt is not in wheels/ (the build has no network): run  pip download -d wheels -r requirements.txt  in this folder" >&2; exit 1; }}
COPY main.py ./
CMD ["python3", "main.py"]
'''  # noqa: E501 - the Dockerfile `ppipe init` writes, line for line

_REQUIREMENTS = '''# What main.py imports, one package per line (pip's requirements format).
# The ppipe SDK comes with the harness (ppipe's base image, or this Python for
# runtime = "process"). For a docker pipeline, `ppipe run` fetches on this host what
# the base image lacks into wheels/ (the image builds without network); for a
# process pipeline: pip install -r requirements.txt into the Python that runs ppipe.
river
'''

_WHEELS_README = '''ppipe run fills this folder with wheels of what ../requirements.txt lists beyond
ppipe's base image (the image is built with no network). You may also fill it yourself:
    pip download -d wheels -r requirements.txt
'''

_SCENARIO = '''# Runs the pipeline {name} in a sandboxed container on the iris dataset.
#   ppipe run {name}/scenario.toml
name = "{name}"
seed = 1

[dataset]
source = "sklearn"
name = "iris"
target = "variety"
shuffle = true
loop = true

[load]
profile = "constant"
rate = 100
duration = "10s"
warmup = "2s"

[labels]
delay = "1s"

{pipeline}
[scoring]
metrics = ["accuracy"]
deadline = "500ms"
'''


_PIPELINES = {
    "docker": '''[[pipelines]]
name = "{name}"
runtime = "docker"
build = "."
''',
    "process": '''[[pipelines]]
name = "{name}"
runtime = "process"
command = ["python", "main.py"]
''',
}

RUNTIMES = tuple(_PIPELINES)


def init_pipeline(name: str, *, where: Path = Path("."), runtime: str = "docker") -> Path:
    """Create ``where/name`` with a runnable pipeline; UsageError if it exists or the name is bad.
    ``runtime``: ``docker`` (a sandboxed container; needs a Docker engine) or ``process``."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", name):
        raise UsageError(f"{name!r} is not a pipeline name (letters, digits, _ . -; up to 63)")
    if runtime not in _PIPELINES:
        raise UsageError(f"--runtime {runtime!r}: give one of {', '.join(RUNTIMES)}")
    folder = where / name
    if folder.exists():
        raise UsageError(f"{folder} already exists")
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(_MAIN.format(name=name))
    (folder / "Dockerfile").write_text(_DOCKERFILE.format())
    (folder / "requirements.txt").write_text(_REQUIREMENTS)
    (folder / "wheels").mkdir()
    (folder / "wheels" / "README").write_text(_WHEELS_README)
    scenario = _SCENARIO.replace("in a sandboxed container", "in a sandboxed container" if runtime == "docker"
                                 else "as a local process")
    (folder / "scenario.toml").write_text(scenario.format(name=name,
                                                          pipeline=_PIPELINES[runtime].format(name=name)))
    return folder
