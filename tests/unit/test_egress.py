"""What a sandbox on a cluster may reach, and what its containers are handed: the
broker addresses resolved (no broker, no engine), and the TLS files' paths."""

from __future__ import annotations

from ppipe_stream.run.pipelines import TLS_DIR, container_tls_files
from ppipe_stream.runtime.egress import BrokerAddress, resolve


def test_addresses_and_names_resolve_to_ipv4():
    egress = resolve(["10.1.2.3:9092", "localhost:9093", " 10.1.2.4:19092 "])
    assert egress.addresses == {BrokerAddress("10.1.2.3", 9092), BrokerAddress("127.0.0.1", 9093),
                                BrokerAddress("10.1.2.4", 19092)}
    assert egress.hosts == {"localhost": "127.0.0.1"}  # an address needs no name


def test_a_name_that_does_not_resolve_is_left_out():
    egress = resolve(["no-such-broker.invalid:9092", "10.0.0.1:9092"])
    assert egress.addresses == {BrokerAddress("10.0.0.1", 9092)} and egress.hosts == {}


def test_a_container_gets_the_tls_files_at_paths_of_its_own():
    env = {"PPIPE_BOOTSTRAP": "b:1", "PPIPE_SECURITY_PROTOCOL": "SSL",
           "PPIPE_SECURITY_SSL_CAFILE": "/home/u/ca.pem", "PPIPE_SECURITY_SSL_CERTFILE": "/k/c.crt",
           "PPIPE_SECURITY_SSL_KEYFILE": "/k/c.key"}
    container_env, files = container_tls_files(env)
    assert files == {"/home/u/ca.pem": f"{TLS_DIR}/cafile.pem", "/k/c.crt": f"{TLS_DIR}/certfile.pem",
                     "/k/c.key": f"{TLS_DIR}/keyfile.pem"}
    assert container_env["PPIPE_SECURITY_SSL_CAFILE"] == f"{TLS_DIR}/cafile.pem"
    assert env["PPIPE_SECURITY_SSL_CAFILE"] == "/home/u/ca.pem"  # the caller's is left as it was
    assert container_tls_files({"PPIPE_BOOTSTRAP": "b:1"}) == ({"PPIPE_BOOTSTRAP": "b:1"}, {})


def test_loopback_brokers_are_named_as_out_of_a_containers_reach():
    from ppipe_stream.runtime.egress import on_loopback

    addresses = [BrokerAddress("172.17.0.1", 9092), BrokerAddress("127.0.0.1", 9093),
                 BrokerAddress("127.0.1.1", 9094)]
    assert on_loopback(addresses) == [BrokerAddress("127.0.0.1", 9093), BrokerAddress("127.0.1.1", 9094)]
