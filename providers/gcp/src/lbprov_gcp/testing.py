"""Helpers for the GCP provider's tests: Services and Nodes in the Kubernetes API's JSON shape,
a provider pointed at the sandbox, and plan + apply in one step."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Intent, SandboxNode
from lbprov.provider import SandboxCloud
from lbprov_gcp.provider import GCPProvider

CLUSTER = "test"
#: The cluster ID the tests' provider names its instance groups with (k8s-ig--<id>), as upstream.
GCE_CLUSTER_ID = "5eed1d0000000001"
#: The cluster identity (kube-system Namespace UID) of the tests' provider.
CLUSTER_ID = "0c1d2e3f-0000-4000-8000-000000000001"


def make_service(
    name: str = "web",
    *,
    namespace: str = "default",
    uid: str | None = None,
    ports: Sequence[tuple[str, int, int]] = (("TCP", 80, 30080),),
    annotations: dict[str, str] | None = None,
    local: bool = False,
    hc_port: int = 32000,
    affinity: bool = False,
    source_ranges: Sequence[str] | None = None,
    ip: str | None = None,
    node_ports: bool = True,
) -> dict[str, Any]:
    """A Service; ``node_ports=False`` is ``allocateLoadBalancerNodePorts: false`` (no nodePort)."""
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "ports": [
            {"name": f"{proto.lower()}-{port}", "protocol": proto, "port": port, "nodePort": node_port}
            for proto, port, node_port in ports
        ],
        "externalTrafficPolicy": "Local" if local else "Cluster",
        "sessionAffinity": "ClientIP" if affinity else "None",
    }
    if local:
        spec["healthCheckNodePort"] = hc_port
    if not node_ports:
        spec["allocateLoadBalancerNodePorts"] = False
        for port in spec["ports"]:
            del port["nodePort"]
    if source_ranges is not None:
        spec["loadBalancerSourceRanges"] = list(source_ranges)
    if ip is not None:
        spec["loadBalancerIP"] = ip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuid.uuid4()),
            "annotations": dict(annotations or {}),
        },
        "spec": spec,
    }


def make_nodes(nodes: Sequence[SandboxNode]) -> list[dict[str, Any]]:
    return [
        {
            "metadata": {"name": n.name, "labels": {"topology.kubernetes.io/zone": n.zone}},
            "spec": {"providerID": n.provider_id},
            "status": {"addresses": [{"type": "InternalIP", "address": n.internal_ip}]},
        }
        for n in nodes
    ]


def intent_for(provider: Any, service: dict[str, Any], nodes: Sequence[SandboxNode]) -> Intent:
    return build_intent(service, make_nodes(nodes), IntentSettings(cluster=provider.cluster), provider)


def converge(provider: Any, intent: Intent) -> Any:
    """plan + apply, and return the ingress."""
    return provider.apply(provider.plan(intent))


def provider_for(sandbox: SandboxCloud, *, read_only: bool = False, **overrides: Any) -> GCPProvider:
    """A provider on the sandbox, without client-side rate limits (tests measure calls, not time)."""
    settings = {
        **sandbox.settings,
        "cluster_name": CLUSTER,
        "gce_cluster_id": GCE_CLUSTER_ID,
        "cluster_id": CLUSTER_ID,
        "reads_per_second": 0,
        "writes_per_second": 0,
        "retry_initial_seconds": 0.01,
        **overrides,
    }
    return GCPProvider.from_settings(settings, read_only=read_only)


def sdk(sandbox: SandboxCloud, client: str) -> Any:
    """A google-cloud-compute client (e.g. ``"FirewallsClient"``) talking to the sandbox, for checks
    that read the cloud the way a user's tooling does."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    cls = getattr(compute_v1, client)
    return cls(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=sandbox.endpoint),
        transport="rest",
    )
