"""Topic administration: every topic of a run is created explicitly, up front.

Owns creating topics (and waiting until every partition has a leader, which
both tansu and Kafka need before a produce is safe) and deleting them. Never
rely on auto-creation: tansu loses data on auto-created topics under
concurrent produce (../shared/INFRA.md). Every function takes the run's
:class:`~ppipe_stream.security.ClientSecurity` (PLAINTEXT when not given); a
broker that cannot be reached is explained in one line (a refused login, an
untrusted certificate), never with the password.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from ..errors import BrokerError
from ..security import PLAINTEXT, ClientSecurity, describe_failure

__all__ = ["create_topics", "delete_topics", "describe_partitions"]

_TOPIC_ALREADY_EXISTS = 36


async def _admin(bootstrap: str, timeout: float,
                 security: ClientSecurity | None) -> AIOKafkaAdminClient:
    security = security or PLAINTEXT
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000),
                                **security.kafka_kwargs())
    try:
        await admin.start()
    except (KafkaError, OSError) as exc:
        await admin.close()
        why = await describe_failure(bootstrap, security, timeout_s=min(timeout, 10.0)) or exc
        raise BrokerError(f"cannot reach the broker at {bootstrap} ({security.describe()}): "
                          f"{why}") from None
    return admin


async def describe_partitions(bootstrap: str, names: Sequence[str], *, timeout: float = 30,
                              security: ClientSecurity | None = None) -> dict[str, dict[int, int]]:
    """{topic: {partition: leader}} for the named topics that exist (leader -1 when none)."""
    admin = await _admin(bootstrap, timeout, security)
    try:
        found: dict[str, dict[int, int]] = {}
        for topic in await admin.describe_topics(list(names)):
            if topic.get("error_code", 0) == 0:
                found[topic["topic"]] = {p["partition"]: p["leader"] for p in topic["partitions"]}
        return found
    finally:
        await admin.close()


async def create_topics(bootstrap: str, topics: Sequence[tuple[str, int]], *,
                        replication_factor: int = 1, timeout: float = 30,
                        security: ClientSecurity | None = None) -> None:
    """Create ``(name, partitions)`` topics and wait until each partition has a leader.

    A topic that already exists with the same partition count is fine; with
    another count it is a BrokerError (the run would split events differently).
    """
    wanted = dict(topics)
    admin = await _admin(bootstrap, timeout, security)
    try:
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor) for name, partitions in wanted.items()],
            timeout_ms=int(timeout * 1000))
        for entry in response.topic_errors:
            name, code = entry[0], entry[1]
            message = entry[2] if len(entry) > 2 else ""
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise BrokerError(f"cannot create topic {name!r}: error {code} {message or ''}".strip())
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics on {bootstrap}: {exc}") from exc
    finally:
        await admin.close()
    with anyio.move_on_after(timeout):
        while True:
            found = await describe_partitions(bootstrap, list(wanted), timeout=timeout,
                                              security=security)
            for name, partitions in wanted.items():
                have = found.get(name, {})
                if have and len(have) != partitions:
                    raise BrokerError(f"topic {name!r} exists with {len(have)} partitions, "
                                      f"not {partitions}")
            if all(len(found.get(n, {})) == p and all(leader >= 0 for leader in found[n].values())
                   for n, p in wanted.items()):
                return
            await anyio.sleep(0.1)
    raise BrokerError(f"topics on {bootstrap} had no leader for every partition after {timeout:.0f} s")


async def delete_topics(bootstrap: str, names: Sequence[str], *, timeout: float = 30,
                        security: ClientSecurity | None = None) -> None:
    """Delete the named topics (missing ones are ignored)."""
    admin = await _admin(bootstrap, timeout, security)
    try:
        await admin.delete_topics(list(names), timeout_ms=int(timeout * 1000))
    except KafkaError as exc:
        raise BrokerError(f"cannot delete topics on {bootstrap}: {exc}") from exc
    finally:
        await admin.close()
