"""Apache Kafka's jars, fetched by the project itself from Maven Central and checked.

Owns the lock (``kafka-jars.lock`` beside this file: every runtime jar of the
Kafka broker as ``group:artifact:version``, with the ``.sha1`` and, where Maven
Central publishes one, the ``.sha256`` it publishes beside the jar, copied in
by ``scripts/kafka-jars-lock``), fetching the locked jars once into the cache
(``~/.cache/ppipe/kafka-<version>/libs``, or ``$PPIPE_CACHE_DIR``) and refusing a
jar whose bytes do not match its pinned checksums. Neither Maven nor a JDK is
needed for this; a half-fetched folder is never used (the set is complete and
checked, or fetched again), and concurrent fetches of one cache wait for each
other (a file lock). ``$PPIPE_MAVEN_REPO`` names another Maven repository
(a mirror) laid out like Maven Central.

It must not start anything: starting Kafka is ``kafka.py``'s.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from ..errors import BrokerError

__all__ = ["LOCK", "MAVEN_CENTRAL", "Artifact", "ChecksumMismatch", "fetch_jars", "jars_complete", "lock_digest",
           "read_lock", "write_lock"]

LOCK = Path(__file__).with_name("kafka-jars.lock")
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
_FETCH_THREADS = 6
_TIMEOUT_S = 120


class ChecksumMismatch(BrokerError):
    """Raised when a fetched jar's bytes differ from the checksum its lock entry pins
    (a corrupted download, or a repository serving something else); nothing of the
    set is used then."""


class Artifact(NamedTuple):
    """One locked jar: Maven coordinates and the checksums Maven Central publishes for it."""

    group: str
    name: str
    version: str
    sha1: str
    sha256: str | None

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.jar"

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.name}:{self.version}"

    def url(self, repository: str) -> str:
        return (f"{repository.rstrip('/')}/{self.group.replace('.', '/')}/{self.name}/"
                f"{self.version}/{self.filename}")

    def mismatch(self, path: Path) -> str | None:
        """Why the file at ``path`` is not this jar (None when every pinned checksum matches)."""
        sha1, sha256 = hashlib.sha1(), hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                sha1.update(block)
                sha256.update(block)
        if self.sha256 is not None and sha256.hexdigest() != self.sha256:
            return f"sha256 is {sha256.hexdigest()}, not {self.sha256}"
        if sha1.hexdigest() != self.sha1:
            return f"sha1 is {sha1.hexdigest()}, not {self.sha1}"
        return None


def read_lock(path: Path = LOCK) -> list[Artifact]:
    """The lock's entries (``group:artifact:version sha1 sha256-or--`` a line, ``#`` comments)."""
    artifacts = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        coords = fields[0].split(":")
        if len(fields) != 3 or len(coords) != 3:
            raise BrokerError(f"{path}:{number}: expected `group:artifact:version sha1 sha256`")
        group, name, version = coords
        artifacts.append(Artifact(group, name, version, sha1=fields[1],
                                  sha256=None if fields[2] == "-" else fields[2]))
    return artifacts


def write_lock(artifacts: Iterable[Artifact], path: Path = LOCK) -> None:
    lines = ["# Apache Kafka's runtime jars, pinned: written by scripts/kafka-jars-lock from",
             "# kafka-pom.xml; the checksums are those Maven Central publishes beside each jar.",
             "# group:artifact:version  sha1  sha256 (- where none is published)"]
    lines += [f"{a.coordinates} {a.sha1} {a.sha256 or '-'}" for a in sorted(artifacts)]
    path.write_text("\n".join(lines) + "\n")


def lock_digest(artifacts: Iterable[Artifact]) -> str:
    """A short digest of a lock's content: the cache's completion marker holds it."""
    text = "\n".join(f"{a.coordinates} {a.sha1} {a.sha256}" for a in sorted(artifacts))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fetch_jars(libs: Path, artifacts: list[Artifact], *, repository: str | None = None) -> Path:
    """Make ``libs`` hold exactly ``artifacts`` (checked), fetching what is missing.

    Returns at once when ``libs``' marker names this lock; otherwise jars already
    there that match are kept, the others are fetched (a few at a time) into a
    side folder, checked, and moved in. Raises :class:`ChecksumMismatch` for a jar
    whose bytes differ from the lock, :class:`BrokerError` when the repository
    cannot be reached; either way nothing half-done is left as ``libs``."""
    repository = repository or os.environ.get("PPIPE_MAVEN_REPO") or MAVEN_CENTRAL
    digest = lock_digest(artifacts)
    marker = libs.parent / ".complete"
    if _marked(marker, digest):
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / ".lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # another process may be fetching the same cache
        if _marked(marker, digest):
            return libs
        marker.unlink(missing_ok=True)
        libs.mkdir(exist_ok=True)
        wanted = {a.filename: a for a in artifacts}
        for path in libs.iterdir():  # the class path is libs/*: nothing else may be there
            if path.name not in wanted or wanted[path.name].mismatch(path) is not None:
                path.unlink()
        missing = [a for a in artifacts if not (libs / a.filename).exists()]
        incoming = libs.parent / "libs.partial"
        shutil.rmtree(incoming, ignore_errors=True)
        incoming.mkdir()
        try:
            with ThreadPoolExecutor(_FETCH_THREADS) as pool:
                for artifact, path in zip(missing, pool.map(lambda a: _fetch(a, repository, incoming),
                                                            missing), strict=True):
                    path.replace(libs / artifact.filename)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        marker.write_text(digest + "\n")
    return libs


def jars_complete(libs: Path, artifacts: list[Artifact]) -> bool:
    """Whether ``libs`` holds this lock's set, fetched and checked (its marker says so)."""
    return _marked(libs.parent / ".complete", lock_digest(artifacts))


def _marked(marker: Path, digest: str) -> bool:
    try:
        return marker.read_text().strip() == digest
    except OSError:
        return False


def _fetch(artifact: Artifact, repository: str, folder: Path) -> Path:
    url = artifact.url(repository)
    path = folder / artifact.filename
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, open(path, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise BrokerError(f"cannot fetch Apache Kafka's jar {artifact.coordinates} from {url}: "
                          f"{reason} (a mirror laid out like Maven Central: PPIPE_MAVEN_REPO=URL)") from None
    why = artifact.mismatch(path)
    if why is not None:
        path.unlink()
        raise ChecksumMismatch(f"refusing {artifact.filename} fetched from {url}: its {why} as Maven "
                               f"Central publishes it (pinned in {LOCK.name}); nothing was installed")
    return path
