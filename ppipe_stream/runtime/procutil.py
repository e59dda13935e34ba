"""Small helpers for child processes the tool starts (brokers, pipelines).

Owns signalling a child's whole process group (children run in their own
session, so a terminal's Ctrl+C reaches the harness first) and reading the
last lines of a log file for error messages. Nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["signal_group", "tail_lines"]


def signal_group(process: Any, sig: int) -> None:
    """Send ``sig`` to ``process``'s group (to the process alone if that fails);
    a process already gone is fine."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


def tail_lines(path: Path | None, count: int = 10) -> str:
    """The last ``count`` lines of a text file, or "" when it cannot be read."""
    if path is None:
        return ""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-count:])
    except OSError:
        return ""
