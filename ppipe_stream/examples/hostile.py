"""A hostile pipeline, for the sandbox tests: it tries to break out, reports each
attempt as one JSON line on standard output (``{"probe": ..., "blocked": ...}``),
then answers events like ``echo`` so the run goes on.

``PPIPE_HOSTILE`` picks what it does: ``probe`` (default: uid, writes outside
scratch, capabilities, no-new-privileges, the Docker socket, connections to
the host and to the broker's host on another port, unbounded forks) or ``oom``
(allocate far past its memory limit once running).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from ppipe_stream.sdk import Pipeline


def report(probe: str, blocked: bool, **detail) -> None:
    print(json.dumps({"probe": probe, "blocked": blocked, **detail}), flush=True)


def _gateway() -> str | None:
    with open("/proc/net/route") as fh:
        for line in fh.readlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                raw = bytes.fromhex(fields[2])[::-1]
                return socket.inet_ntoa(raw)
    return None


def _cpu_max() -> str:
    """The CPU quota the kernel enforces on this container (cgroup v2, else v1)."""
    for path in ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
        try:
            with open(path) as fh:
                value = fh.read().strip()
        except OSError:
            continue
        if path.endswith("cfs_quota_us"):
            with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as fh:
                value = f"{value} {fh.read().strip()}"
        return value
    return "unknown"


def _connect(host: str, port: int) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=2):
            return False, "connected"
    except OSError as exc:
        return True, type(exc).__name__


def probes() -> None:
    report("uid", os.getuid() != 0, uid=os.getuid())
    for path in ("/app/escape.txt", "/etc/escape.txt", "/usr/escape.txt"):
        try:
            with open(path, "w") as fh:
                fh.write("x")
            report("write", False, path=path)
        except OSError as exc:
            report("write", True, path=path, error=exc.strerror)
    try:
        with open("/tmp/scratch.txt", "w") as fh:
            fh.write("scratch is writable")
        report("scratch", False, path="/tmp")  # allowed: not an escape
    except OSError as exc:
        report("scratch", True, path="/tmp", error=exc.strerror)
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    report("capabilities", int(status["CapEff"].strip(), 16) == 0, cap_eff=status["CapEff"].strip())
    report("no_new_privileges", status.get("NoNewPrivs", "0").strip() == "1")
    report("docker_socket", not any(os.path.exists(p) for p in ("/var/run/docker.sock", "/run/docker.sock")))
    report("cpu_limit", True, cpu_max=_cpu_max())
    targets = [t for t in os.environ.get("PPIPE_HOSTILE_TARGETS", "").split(",") if t]
    gateway = _gateway()
    if gateway:
        targets += [f"{gateway}:{os.environ.get('PPIPE_HOSTILE_PORT', '22')}"]
    broker_host = os.environ["PPIPE_BOOTSTRAP"].split(",")[0].rsplit(":", 1)[0]
    targets += [f"{broker_host}:22"]
    for target in targets:
        host, port = target.rsplit(":", 1)
        blocked, how = _connect(host, int(port))
        report("connect", blocked, target=target, result=how)
    children = []
    blocked = False
    for _ in range(2000):
        try:
            children.append(subprocess.Popen(["sleep", "30"]))
        except OSError as exc:
            blocked = True
            report("fork", True, started=len(children), error=exc.strerror)
            break
    if not blocked:
        report("fork", False, started=len(children))
    for child in children:
        child.kill()
        child.wait()


def main() -> None:
    mode = os.environ.get("PPIPE_HOSTILE", "probe")
    if mode == "probe":
        probes()
    app = Pipeline()
    app.predict(lambda features: "hostile")
    if mode == "oom":
        hog: list[bytes] = []

        @app.command("ping")
        def ping(command):  # ready first, then eat memory
            import threading

            def eat() -> None:
                time.sleep(1)
                while True:
                    hog.append(b"x" * (16 << 20))

            threading.Thread(target=eat, daemon=True).start()
            return "pong"
    sys.stdout.flush()
    app.run()


if __name__ == "__main__":
    main()
