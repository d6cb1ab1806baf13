"""A local Compute Engine v1 emulator that google-cloud-compute (and ``gcloud``) talk to.

:class:`SandboxServer` runs :class:`ComputeEmulator` over HTTP; :func:`start_sandbox` seeds it with a
network, a subnetwork and one instance per node (spread over two zones), as
``GCPProvider.sandbox`` and the tests use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from lbprov.model import SandboxNode
from lbprov_gcp.sandbox import discovery
from lbprov_gcp.sandbox.emulator import ComputeEmulator, Route, parse_route
from lbprov_gcp.sandbox.errors import ApiError
from lbprov_gcp.sandbox.server import Fault, RequestRecord, SandboxServer

__all__ = [
    "ApiError",
    "ComputeEmulator",
    "Fault",
    "RequestRecord",
    "Route",
    "SandboxServer",
    "SeededCloud",
    "parse_route",
    "start_sandbox",
]

PROJECT = "lbprov-sandbox"
REGION = "us-central1"
NETWORK = "lbprov-net"
SUBNETWORK = "lbprov-subnet"
SUBNET_CIDR = "10.128.0.0/20"


@dataclass
class SeededCloud:
    """A started emulator and what was seeded into it."""

    server: SandboxServer
    project: str
    region: str
    network: str
    subnetwork: str
    node_tag: str
    cluster: str
    nodes: list[SandboxNode] = field(default_factory=list)

    def add_node(self, name: str, zone: str | None = None) -> SandboxNode:
        """Create one more instance (zones alternate like the seeded ones unless given)."""
        zones = self.server.emulator.zones[:2]
        chosen = zone or zones[len(self.nodes) % len(zones)]
        inst = self.server.emulator.seed_instance(
            name, chosen, network=self.network, subnet=self.subnetwork, tags=[self.node_tag]
        )
        node = SandboxNode(
            name=name,
            provider_id=f"gce://{self.project}/{chosen}/{name}",
            internal_ip=inst["networkInterfaces"][0]["networkIP"],
            zone=chosen,
        )
        self.nodes.append(node)
        return node


@contextmanager
def start_sandbox(
    nodes: Sequence[str], *, project: str = PROJECT, region: str = REGION, cluster: str = "sandbox"
) -> Iterator[SeededCloud]:
    """Start the emulator on 127.0.0.1 (ephemeral port), seeded with a network and the nodes."""
    # Google's discovery document (several MB of JSON) is parsed now, not on the first request: a
    # real API answers its first request as fast as any other, and the scale bench counted the
    # parse (0.1 s alone, ~1 s among the first plans' concurrent requests on a loaded machine)
    # into the controller's create time.
    discovery.document()
    with SandboxServer(project, region) as server:
        # dual-stack with external IPv6 access, so that IPv6 and dual-stack Services work
        server.emulator.seed_network(NETWORK, SUBNETWORK, SUBNET_CIDR, ipv6_access_type="EXTERNAL")
        cloud = SeededCloud(server, project, region, NETWORK, SUBNETWORK, f"k8s-{cluster}-node", cluster)
        for name in nodes:
            cloud.add_node(name)
        yield cloud
