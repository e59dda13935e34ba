"""Network faults inside one process's network namespace: packet delay and loss.

Owns the commands (run from the host with ``nsenter``, as root) that degrade a
container's network for a ``network`` fault, and the ones that put it back: the
kernel's netem queueing discipline where it has one (delay and loss), an
iptables random-drop rule otherwise (loss alone). It chooses no container and
records no incident: the Docker runner does.
"""

from __future__ import annotations

import subprocess
from typing import Any

import msgspec

from ..errors import RunError

__all__ = ["Degradation", "degrade", "restore"]

_CHAINS = ("INPUT", "OUTPUT")


class Degradation(msgspec.Struct, frozen=True, kw_only=True):
    """What was done to one namespace, so that :func:`restore` can undo exactly that."""

    pid: int
    netem: bool  # a netem qdisc on eth0; else iptables drop rules
    probability: str = ""  # the iptables rules' --probability, as written


def degrade(pid: int, *, delay: Any, loss: float, use_netem: bool) -> Degradation:
    """Delay (seconds, or None) and/or drop (fraction) the packets of ``pid``'s namespace."""
    if use_netem:
        args = ["tc", "qdisc", "add", "dev", "eth0", "root", "netem"]
        if delay is not None:
            args += ["delay", f"{float(delay) * 1000:.3f}ms"]
        if loss:
            args += ["loss", f"{loss * 100:.4f}%"]
        _in_netns(pid, args)
        return Degradation(pid=pid, netem=True)
    probability = f"{loss:.6f}"
    for chain in _CHAINS:
        _in_netns(pid, ["iptables", "-I", chain, *_drop_rule(probability)])
    return Degradation(pid=pid, netem=False, probability=probability)


def restore(done: Degradation) -> None:
    """Undo :func:`degrade`; RunError when the namespace is gone (so is what was done)."""
    if done.netem:
        _in_netns(done.pid, ["tc", "qdisc", "del", "dev", "eth0", "root"])
        return
    for chain in _CHAINS:
        _in_netns(done.pid, ["iptables", "-D", chain, *_drop_rule(done.probability)])


def _drop_rule(probability: str) -> list[str]:
    return ["-m", "statistic", "--mode", "random", "--probability", probability, "-j", "DROP"]


def _in_netns(pid: int, args: list[str]) -> None:
    """Run ``args`` inside the network namespace of process ``pid`` (needs root)."""
    result = subprocess.run(["nsenter", "-t", str(pid), "-n", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RunError(f"{' '.join(args[:3])} in the container's network failed: "
                       f"{(result.stderr or result.stdout).strip()}")
