"""How every Kafka client logs in: SASL (PLAIN, SCRAM) and TLS, one place for all.

Owns turning ``[kafka.security]`` (scenario/model.py's ``Security``) into a
resolved :class:`ClientSecurity` (paths made absolute against the scenario's
folder, the password read from ``password_env``), and a ``ClientSecurity``
into (a) the keyword arguments of every aiokafka client the harness builds
(producer, output reader, admin, ``ppipe tail``, the bench baseline) and (b)
the ``PPIPE_SECURITY_*`` environment handed to pipelines, which the SDK reads
back with :meth:`ClientSecurity.from_env`. It also explains a failed login in
one line. The password is never part of a ``repr``, an error or a log event.

It must stay importable by the pipeline SDK: it imports nothing of the harness
(no runner, scorer, dispatcher, scenario loader).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ClientSecurity", "ENV_PREFIX", "PLAINTEXT", "SecretMissing", "describe_failure"]

ENV_PREFIX = "PPIPE_SECURITY_"
REDACTED = "***"  # a password as written anywhere (scenario/model.py's Security.redacted())
_TRUE = ("1", "true", "yes", "on")


class SecretMissing(Exception):
    """Raised by :meth:`ClientSecurity.resolve` when the password cannot be had:
    ``password_env`` names a variable that is not set, or ``password`` is the
    ``***`` of a run folder's redacted copy. ``key`` is the scenario key to fix;
    the caller turns it into a one-line PpipeError."""

    def __init__(self, variable: str | None, *, key: str = "password_env",
                 message: str | None = None) -> None:
        self.variable = variable
        self.key = key
        super().__init__(message or f"environment variable {variable} (named by [kafka.security] "
                         "password_env) is not set")


class ClientSecurity:
    """Resolved security settings of a Kafka client. ``PLAINTEXT`` (the module
    constant) is the default: no keyword arguments, no environment."""

    __slots__ = ("protocol", "sasl_mechanism", "username", "_password", "ca_file", "cert_file",
                 "key_file", "check_hostname")

    def __init__(self, protocol: str = "PLAINTEXT", *, sasl_mechanism: str | None = None,
                 username: str | None = None, password: str | None = None,
                 ca_file: str | None = None, cert_file: str | None = None,
                 key_file: str | None = None, check_hostname: bool = True) -> None:
        self.protocol = protocol
        self.sasl_mechanism = sasl_mechanism
        self.username = username
        self._password = password
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.check_hostname = check_hostname

    # -- building -------------------------------------------------------------
    @classmethod
    def resolve(cls, settings: Any, *, base_dir: Path,
                environ: Mapping[str, str] | None = None) -> ClientSecurity:
        """From a scenario's ``Security`` (or None): files against ``base_dir``,
        the password from ``environ`` (default ``os.environ``) when ``password_env``."""
        if settings is None:
            return PLAINTEXT
        environ = os.environ if environ is None else environ
        password = settings.password
        if password == REDACTED:
            raise SecretMissing(None, key="password", message=(
                f"[kafka.security] password is {REDACTED!r}: this is a run folder's copy, "
                "which never holds the password; use password_env"))
        if settings.password_env is not None:
            password = environ.get(settings.password_env)
            if password is None:
                raise SecretMissing(settings.password_env)

        def path(value: str | None) -> str | None:
            return None if value is None else str((base_dir / value).resolve())

        return cls(settings.protocol, sasl_mechanism=settings.sasl_mechanism,
                   username=settings.username, password=password, ca_file=path(settings.ca_file),
                   cert_file=path(settings.cert_file), key_file=path(settings.key_file),
                   check_hostname=settings.check_hostname)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientSecurity:
        """What a pipeline (or ``ppipe tail``) was handed in ``PPIPE_SECURITY_*``;
        ``PLAINTEXT`` when ``PPIPE_SECURITY_PROTOCOL`` is not set."""
        env = os.environ if env is None else env

        def get(key: str) -> str | None:
            return env.get(ENV_PREFIX + key) or None

        protocol = get("PROTOCOL")
        if protocol is None:
            return PLAINTEXT
        check = get("SSL_CHECK_HOSTNAME")
        return cls(protocol.upper(), sasl_mechanism=get("SASL_MECHANISM"),
                   username=get("SASL_USERNAME"), password=get("SASL_PASSWORD"),
                   ca_file=get("SSL_CAFILE"), cert_file=get("SSL_CERTFILE"),
                   key_file=get("SSL_KEYFILE"),
                   check_hostname=True if check is None else check.lower() in _TRUE)

    # -- using ----------------------------------------------------------------
    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context (the CA file, else the system's CAs), or None without TLS."""
        if not self.tls:
            return None
        from aiokafka.helpers import create_ssl_context

        context = create_ssl_context(cafile=self.ca_file, certfile=self.cert_file,
                                     keyfile=self.key_file)
        context.check_hostname = self.check_hostname
        return context

    def kafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient
        (and aiokafka.conn.create_conn); empty for PLAINTEXT."""
        if self.protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.sasl:
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                          sasl_plain_password=self._password)
        return kwargs

    def env(self) -> dict[str, str]:
        """The pipeline's ``PPIPE_SECURITY_*`` variables, without the prefix (what
        ``protocol.pipeline_env(security=...)`` takes); empty for PLAINTEXT."""
        if self.protocol == "PLAINTEXT":
            return {}
        env = {"PROTOCOL": self.protocol}
        if self.sasl:
            env.update(SASL_MECHANISM=self.sasl_mechanism or "", SASL_USERNAME=self.username or "",
                       SASL_PASSWORD=self._password or "")
        if self.tls:
            env["SSL_CHECK_HOSTNAME"] = "true" if self.check_hostname else "false"
            for key, value in (("SSL_CAFILE", self.ca_file), ("SSL_CERTFILE", self.cert_file),
                               ("SSL_KEYFILE", self.key_file)):
                if value:
                    env[key] = value
        return env

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never be written anywhere (for redaction checks)."""
        return (self._password,) if self._password else ()

    def describe(self) -> str:
        """A one-line, secret-free description (``SASL_SSL SCRAM-SHA-256 as 'alice'``)."""
        text = self.protocol
        if self.sasl:
            text += f" {self.sasl_mechanism} as {self.username!r}"
        return text

    def __repr__(self) -> str:
        return f"ClientSecurity({self.describe()})"


PLAINTEXT = ClientSecurity()


async def describe_failure(bootstrap: str, security: ClientSecurity, *,
                           timeout_s: float = 10.0) -> str | None:
    """Why a client cannot connect to ``bootstrap``: one line naming the cause
    (login refused, certificate not trusted, TLS against a plaintext port...),
    or None when one direct connection works. Never contains the password."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaError
    from aiokafka.protocol.metadata import MetadataRequest

    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    kwargs = security.kafka_kwargs()
    conn = None
    try:
        conn = await create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000),
                                 **kwargs)
        await conn.send(MetadataRequest([]))  # ApiVersions passes before a login; this does not
    except ssl.SSLCertVerificationError as exc:
        return (f"the broker's TLS certificate was not accepted ({exc.verify_message}); "
                "check [kafka.security] ca_file and check_hostname")
    except ssl.SSLError as exc:
        return f"TLS with the broker failed ({exc.reason or exc}); is its listener {security.protocol}?"
    except KafkaError as exc:
        name = type(exc).__name__
        if "Sasl" in name or "Authentication" in name:
            return (f"the broker refused the {security.sasl_mechanism} login of user "
                    f"{security.username!r} ({_first_line(exc)}); check [kafka.security] "
                    "username, password and sasl_mechanism")
        if "closed" in str(exc).lower():
            certificate = " or it wants a client certificate (cert_file, key_file)" \
                if security.tls and not security.cert_file else ""
            return (f"the broker closed the connection; its listener may not be "
                    f"{security.protocol}{certificate} (check [kafka.security] protocol)")
        return f"{name}: {_first_line(exc)}"
    except OSError as exc:
        return f"cannot connect: {exc.strerror or exc}"
    except ValueError as exc:  # a bad bootstrap
        return f"{type(exc).__name__}: {_first_line(exc)}"
    finally:
        if conn is not None:
            conn.close()
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
