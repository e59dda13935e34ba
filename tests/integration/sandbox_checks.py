"""What the sandbox tests look at: what a run left behind (containers, networks,
firewall rules in every chain the sandbox writes), a host listener no pipeline
may reach, and the hostile pipeline's probe report."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path


def leftovers(client, run_id: str) -> list[str]:
    label = f"ppipe.run={run_id}"
    found = [c.name for c in client.containers.list(all=True, filters={"label": label})]
    found += [n.name for n in client.networks.list(filters={"label": label})]
    from ppipe_stream.runtime.sandbox import FIREWALL_CHAINS, bridge_name

    for binary, chain in FIREWALL_CHAINS:
        rules = subprocess.run([binary, "-S", chain], capture_output=True, text=True).stdout
        found += [line for line in rules.splitlines() if f" {bridge_name(run_id)} " in line]
    return found


class HostListener:
    """A TCP listener on every host address: a pipeline must never reach it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def probes(log: Path) -> dict[str, list[dict]]:
    """The hostile pipeline's probe lines, by probe."""
    by_kind: dict[str, list[dict]] = {}
    for line in log.read_text().splitlines():
        if line.startswith('{"probe"'):
            probe = json.loads(line)
            by_kind.setdefault(probe["probe"], []).append(probe)
    return by_kind
