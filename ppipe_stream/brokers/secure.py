"""A throwaway secure Apache Kafka: one KRaft node with secured listeners only, on
loopback (or on another address of the host, for docker pipelines to reach).

Owns what a test (or a user trying the security settings) needs to talk to a
cluster that refuses plaintext: a fresh certificate authority, a broker
certificate for 127.0.0.1/localhost (and the listening address) and a client certificate, made with
``openssl`` (PEM keystores, which Kafka reads as ``ssl.keystore.type=PEM``);
three listeners: ``SASL_SSL`` (the bootstrap), ``SASL_PLAINTEXT`` and ``SSL``
requiring a client certificate (mTLS); PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
enabled, the PLAIN users in each SASL listener's JAAS config and the SCRAM
credentials added when the log dir is formatted. The controller listener
stays PLAINTEXT on loopback. Everything lives in a temporary folder removed
on stop. Readiness is an ApiVersions request over TLS (allowed before SASL
authentication).
"""

from __future__ import annotations

import socket
import ssl
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from ..errors import BrokerError
from .kafka import ensure_kafka_jars, format_storage, kafka_jvm, new_cluster_id, server_properties
from .process import BrokerKind, RunningBroker, api_versions_request, free_port

__all__ = ["SecureKafka", "make_certificates", "start_secure_kafka"]

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_LISTENER = "SASL_SSL"
_ADMIN = "ppipe-broker"  # the broker's own PLAIN identity (inter-broker listener)


class SecureKafka(RunningBroker):
    """A running secure Kafka: ``bootstrap`` (SASL_SSL), ``sasl_plaintext_bootstrap``,
    ``mtls_bootstrap`` (SSL with a required client certificate: ``client_cert``,
    ``client_key``), the CA that signed every certificate (``ca_file``) and the
    users that may log in (``users``: name -> password)."""

    def __init__(self, *args, ca_file: Path, users: Mapping[str, str], sasl_plaintext_port: int,
                 mtls_port: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ca_file = ca_file
        self.client_cert = ca_file.with_name("client.crt")
        self.client_key = ca_file.with_name("client.key")
        self.users = dict(users)
        self.sasl_plaintext_bootstrap = f"{self.host}:{sasl_plaintext_port}"
        self.mtls_bootstrap = f"{self.host}:{mtls_port}"

    def __repr__(self) -> str:  # never the passwords
        return f"SecureKafka({self.bootstrap}, users={sorted(self.users)}, pid={self.pid})"


def _openssl(openssl: str, *args: str, cwd: Path) -> None:
    result = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise BrokerError(f"openssl {args[0]} failed while making test certificates",
                          log_tail=result.stderr[-2000:])


def make_certificates(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A new CA (``ca.pem``), a broker keystore (``broker.pem``: unencrypted
    PKCS#8 key + certificate for IP 127.0.0.1, IP ``host`` and DNS localhost) and
    a client certificate (``client.crt``, ``client.key``) in ``folder``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BrokerError("a TLS broker needs `openssl`, which is not installed: apt-get install openssl")
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "7", "-subj", "/CN=ppipe throwaway test CA", cwd=folder)
    _openssl(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key",
             "-out", "broker.csr", "-subj", "/CN=localhost", cwd=folder)
    addresses = ",".join(f"IP:{ip}" for ip in dict.fromkeys(["127.0.0.1", host]))
    (folder / "san.ext").write_text(f"subjectAltName={addresses},DNS:localhost\n")
    _openssl(openssl, "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "broker.crt", "-days", "7", "-extfile", "san.ext", cwd=folder)
    _openssl(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key",
             "-out", "client.csr", "-subj", "/CN=ppipe-client", cwd=folder)
    _openssl(openssl, "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "client.crt", "-days", "7", cwd=folder)
    keystore = folder / "broker.pem"
    keystore.write_text((folder / "broker.key").read_text() + (folder / "broker.crt").read_text())
    keystore.chmod(0o600)
    return folder / "ca.pem", keystore


def _jaas_plain(users: Mapping[str, str], broker_password: str) -> str:
    entries = " ".join(f'user_{name}="{password}"' for name, password in users.items())
    return ("org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{_ADMIN}" password="{broker_password}" user_{_ADMIN}="{broker_password}" '
            f"{entries};")


def secure_properties(*, ports: Mapping[str, int], controller: int, ca_file: Path, keystore: Path,
                      users: Mapping[str, str], broker_password: str,
                      host: str = "127.0.0.1") -> dict[str, str]:
    """The settings that replace server_properties' PLAINTEXT listener by secured ones:
    ``ports`` maps the listeners SASL_SSL, SASL_PLAINTEXT and MTLS (SSL) to ports on ``host``."""
    scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    listeners = ",".join(f"{name}://{host}:{port}" for name, port in ports.items())
    props = {
        "listeners": f"{listeners},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": listeners,
        "inter.broker.listener.name": _LISTENER,
        "listener.security.protocol.map": ",".join(
            [f"{name}:{'SSL' if name == 'MTLS' else name}" for name in ports]
            + ["CONTROLLER:PLAINTEXT"]),
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.mtls.ssl.client.auth": "required",
    }
    for name in ports:
        if name.startswith("SASL_"):
            listener = name.lower()
            props[f"listener.name.{listener}.plain.sasl.jaas.config"] = _jaas_plain(users, broker_password)
            props[f"listener.name.{listener}.scram-sha-256.sasl.jaas.config"] = scram_jaas
            props[f"listener.name.{listener}.scram-sha-512.sasl.jaas.config"] = scram_jaas
    return props | {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca_file),
        "ssl.client.auth": "none",
    }


def wait_for_tls_kafka(port: int, ca_file: Path, *, timeout: float, process: subprocess.Popen,
                       log_path: Path, host: str = "127.0.0.1") -> None:
    """Block until an ApiVersions request over TLS is answered on host:port."""
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(f"the secure broker exited with code {process.returncode} while starting",
                              log_tail=_tail(log_path))
        try:
            with socket.create_connection((host, port), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname=host) as sock:
                    sock.settimeout(2)
                    sock.sendall(api_versions_request())
                    size = sock.recv(4)
                    if len(size) == 4 and int.from_bytes(size, "big") > 0:
                        return
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.2)
    raise BrokerError(f"no secure broker answered on {host}:{port} within {timeout:.0f} s",
                      log_tail=_tail(log_path))


def _tail(path: Path) -> str:
    from ..runtime.procutil import tail_lines

    return tail_lines(path, 15)


def start_secure_kafka(users: Mapping[str, str], *, log_dir: Path | None = None,
                       ready_timeout: float = 120, host: str = "127.0.0.1") -> SecureKafka:
    """Start a single SASL_SSL Kafka node listening on ``host`` (127.0.0.1 unless
    told) where each of ``users`` (name -> password) may log in with PLAIN,
    SCRAM-SHA-256 or SCRAM-SHA-512."""
    import secrets

    libs = ensure_kafka_jars()
    data_dir = Path(tempfile.mkdtemp(prefix="ppipe-kafka-secure-"))
    try:
        ca_file, keystore = make_certificates(data_dir / "tls", host)
        ports = {_LISTENER: free_port(), "SASL_PLAINTEXT": free_port(), "MTLS": free_port()}
        port, controller = ports[_LISTENER], free_port()
        broker_password = secrets.token_hex(16)
        extra = secure_properties(ports=ports, controller=controller, ca_file=ca_file,
                                  keystore=keystore, users=users, broker_password=broker_password,
                                  host=host)
        config = data_dir / "server.properties"
        config.write_text(server_properties(node_id=1, port=port, controller_port=controller,
                                            log_dir=data_dir / "kraft-logs", extra=extra))
        config.chmod(0o600)
        jvm = kafka_jvm(libs)
        scram = [f"{mechanism}=[name={name},password={password}]"
                 for mechanism in MECHANISMS[1:] for name, password in users.items()]
        format_storage(jvm, config, new_cluster_id(), scram=scram)
        log_path = (log_dir or data_dir) / "broker-kafka-secure.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen([*jvm, "kafka.Kafka", str(config)], stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    broker = SecureKafka(BrokerKind.KAFKA, f"{host}:{port}", process, log_path,
                         cleanup=[data_dir], ca_file=ca_file, users=users,
                         sasl_plaintext_port=ports["SASL_PLAINTEXT"], mtls_port=ports["MTLS"])
    try:
        wait_for_tls_kafka(port, ca_file, timeout=ready_timeout, process=process, log_path=log_path,
                           host=host)
    except BaseException:
        broker.stop()
        raise
    return broker
