"""``ppipe clean`` and ``ppipe init``: leftovers out, a new pipeline folder in.

Owns removing what runs left behind (containers, networks, built images and
firewall rules labelled ``ppipe.run``), and scaffolding a pipeline folder (a
Dockerfile taking the base image as a build argument, an SDK-based main, a
requirements file, and a scenario that runs it) that works as generated.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .errors import UsageError

__all__ = ["clean", "init_pipeline"]


def clean() -> dict[str, int]:
    """Remove every container, network and built image a run left; returns counts."""
    from .runtime.docker import LABEL_PIPELINE, docker_client
    from .runtime.sandbox import LABEL_RUN

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
    for binary in ("iptables", "ip6tables"):
        try:
            rules = subprocess.run([binary, "-S", "INPUT"], capture_output=True, text=True).stdout
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
# scikit-learn); with a registry: --build-arg BASE_IMAGE=python:3.12-slim.
ARG BASE_IMAGE=python:3.12-slim
FROM ${{BASE_IMAGE}}
WORKDIR /app
COPY requirements.txt main.py ./
RUN python3 -c "import ppipe_stream.sdk, river" 2>/dev/null || pip install --no-cache-dir -r requirements.txt
CMD ["python3", "main.py"]
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

[[pipelines]]
name = "{name}"
runtime = "docker"
build = "."

[scoring]
metrics = ["accuracy"]
deadline = "500ms"
'''


def init_pipeline(name: str, *, where: Path = Path(".")) -> Path:
    """Create ``where/name`` with a runnable pipeline; UsageError if it exists or the name is bad."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", name):
        raise UsageError(f"{name!r} is not a pipeline name (letters, digits, _ . -; up to 63)")
    folder = where / name
    if folder.exists():
        raise UsageError(f"{folder} already exists")
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(_MAIN.format(name=name))
    (folder / "Dockerfile").write_text(_DOCKERFILE.format())
    (folder / "requirements.txt").write_text("ppipe-stream\nriver\n")
    (folder / "scenario.toml").write_text(_SCENARIO.format(name=name))
    return folder
