"""KRaft cluster ids (brokers/kafka.py ``new_cluster_id``): never one that Kafka's
storage tool would read as an option, as Kafka's own ``Uuid.randomUuid()``."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from ppipe_stream.brokers.kafka import new_cluster_id

# The id of a CI run that failed to format its log dir: it starts with "-".
CI_FAILURE_ID = "-CkvEMJVQQK_-L9OWcN5vA"


def _raw(cluster_id: str) -> bytes:
    return base64.urlsafe_b64decode(cluster_id + "==")


def test_many_fresh_ids_never_start_with_a_dash():
    # one URL-safe base64 id in 64 starts with "-": 20,000 draws hold about 312 of them
    ids = [new_cluster_id() for _ in range(20_000)]
    assert [i for i in ids if i.startswith("-")] == []
    assert all(len(i) == 22 and len(_raw(i)) == 16 for i in ids)
    assert len(set(ids)) == len(ids)


@given(st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=8))
def test_the_first_draw_that_cannot_be_an_option_is_kept(draws):
    # whatever the random source hands out, the id is the first usable draw, unchanged
    reserved = (bytes(16), bytes(15) + b"\1")  # Kafka's zero and metadata-topic ids
    usable = [raw for raw in draws
              if not base64.urlsafe_b64encode(raw).startswith(b"-") and raw not in reserved]
    source = iter([*draws, bytes(range(1, 17))])  # a last, usable draw ends the list
    cluster_id = new_cluster_id(lambda: next(source))
    assert not cluster_id.startswith("-")
    assert _raw(cluster_id) == (usable[0] if usable else bytes(range(1, 17)))


def test_a_draw_that_once_made_the_ci_failure_is_drawn_again():
    source = iter([_raw(CI_FAILURE_ID), bytes(16), bytes(15) + b"\1", bytes(range(16))])
    cluster_id = new_cluster_id(lambda: next(source))
    assert cluster_id == base64.urlsafe_b64encode(bytes(range(16))).decode().rstrip("=")
