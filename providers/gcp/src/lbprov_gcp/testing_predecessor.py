"""A test helper: cloud-provider-gcp's external load balancer for a Service, made on the emulator the
way upstream makes it (``ensureExternalLoadBalancer`` in gce_loadbalancer_external.go).

Upstream's steps, in its order: reserve the address ``<lb>``; the traffic firewall ``k8s-fw-<lb>``;
the health-check firewall, then the legacy HTTP health check (``<lb>`` on the health-check NodePort
for Local, the cluster's shared ``k8s-<clusterID>-node`` on kube-proxy's 10256 for Cluster); the
target pool ``<lb>``; the forwarding rule ``<lb>`` (a port range, one protocol, target = the pool);
then release the reservation, leaving the IP ephemeral on the rule. Names and descriptions are
:mod:`lbprov_gcp.predecessor`'s, which cites upstream.

Resources go through google-cloud-compute, except the legacy ``httpHealthChecks``, which it has no
client for: those are plain REST requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from lbprov.model import SandboxNode
from lbprov.provider import SandboxCloud
from lbprov_gcp import predecessor as U
from lbprov_gcp.desired import HC_TIMING, KUBE_PROXY_HEALTH_PORT
from lbprov_gcp.settings import HEALTH_CHECK_RANGES
from lbprov_gcp.testing import sdk


@dataclass(frozen=True)
class UpstreamLB:
    """What the helper made: the names, and the IP the Service's status shows."""

    ip: str
    forwarding_rule: str
    target_pool: str
    health_check: str
    firewalls: tuple[str, ...]


def _http_health_check(cloud: SandboxCloud, name: str, port: int) -> str:
    """``ensureHTTPHealthCheck`` -> ``makeHTTPHealthCheck``: interval 8 s, timeout 1 s, thresholds 1/3."""
    s = cloud.settings
    base = f"{cloud.endpoint}/compute/v1/projects/{s['project']}/global/httpHealthChecks"
    if requests.get(f"{base}/{name}", timeout=10).status_code == 200:
        return f"{base}/{name}"
    body: dict[str, Any] = {
        "name": name,
        "port": port,
        "requestPath": "/healthz",
        "description": U.health_check_description(name),
        **HC_TIMING,
    }
    answer = requests.post(base, json=body, timeout=10)
    answer.raise_for_status()
    return f"{base}/{name}"


def _firewall(
    cloud: SandboxCloud,
    name: str,
    description: str,
    sources: Sequence[str],
    protocol: str,
    ports: Sequence[int],
) -> None:
    """``firewallObject``: the network, the source ranges, the node tags, one allowed protocol.

    No ``destinationRanges``, as ``firewallObject`` in the upstream sources read for this helper
    (gce_loadbalancer_external.go); REFERENCE.md notes releases that restrict it to the IP. The
    takeover patches the firewall into lbprov's either way."""
    from google.cloud import compute_v1 as c

    s = cloud.settings
    client = sdk(cloud, "FirewallsClient")
    if any(f.name == name for f in client.list(project=s["project"])):
        return  # upstream ensures a shared one once
    client.insert(
        project=s["project"],
        firewall_resource=c.Firewall(
            name=name,
            description=description,
            network=f"projects/{s['project']}/global/networks/{s['network']}",
            source_ranges=list(sources),
            target_tags=list(s["node_tags"]),
            allowed=[c.Allowed(I_p_protocol=protocol, ports=[str(p) for p in ports])],
        ),
    ).result()


def make_upstream_lb(
    cloud: SandboxCloud,
    service: dict[str, Any],
    nodes: Sequence[SandboxNode],
    gce_cluster_id: str,
) -> UpstreamLB:
    """Make upstream's target-pool load balancer for ``service`` (a Service object's JSON)."""
    from google.cloud import compute_v1 as c

    s = cloud.settings
    project, region = s["project"], s["region"]
    meta, spec = service["metadata"], service["spec"]
    key = f"{meta['namespace']}/{meta['name']}"
    lb = ("a" + meta["uid"].replace("-", ""))[:32]
    ports = [int(p["port"]) for p in spec["ports"]]
    protocol = spec["ports"][0].get("protocol", "TCP")
    addresses = sdk(cloud, "AddressesClient")

    # 1. ensureStaticIP: reserve <lb>
    addresses.insert(
        project=project,
        region=region,
        address_resource=c.Address(name=lb, description=U.service_description(key)),
    ).result()
    ip = addresses.get(project=project, region=region, address=lb).address
    # 2. the traffic firewall
    _firewall(
        cloud,
        U.traffic_firewall_name(lb),
        U.firewall_description(key, ip),
        spec.get("loadBalancerSourceRanges") or ["0.0.0.0/0"],
        protocol.lower(),
        ports,
    )
    # 3. the health check's firewall, then the check
    if spec.get("externalTrafficPolicy") == "Local":
        hc_name, hc_port = lb, int(spec["healthCheckNodePort"])
        hc_fw_desc = U.firewall_description(key, ip)
    else:
        hc_name, hc_port = U.nodes_health_check_name(gce_cluster_id), KUBE_PROXY_HEALTH_PORT
        hc_fw_desc = U.nodes_firewall_description(gce_cluster_id)
    hc_fw = U.health_check_firewall_name(hc_name)
    _firewall(cloud, hc_fw, hc_fw_desc, HEALTH_CHECK_RANGES, "tcp", [hc_port])
    hc_link = _http_health_check(cloud, hc_name, hc_port)
    # 4. the target pool: instances as "/zones/<zone>/instances/<name>" (makeComparableHostPath)
    sdk(cloud, "TargetPoolsClient").insert(
        project=project,
        region=region,
        target_pool_resource=c.TargetPool(
            name=lb,
            description=U.service_description(key),
            instances=[f"/zones/{n.zone}/instances/{n.name}" for n in nodes],
            session_affinity="CLIENT_IP" if spec.get("sessionAffinity") == "ClientIP" else "NONE",
            health_checks=[hc_link],
        ),
    ).result()
    # 5. the forwarding rule: a port range from the lowest to the highest port, one protocol
    sdk(cloud, "ForwardingRulesClient").insert(
        project=project,
        region=region,
        forwarding_rule_resource=c.ForwardingRule(
            name=lb,
            description=U.service_description(key),
            I_p_address=ip,
            I_p_protocol=protocol,
            port_range=f"{min(ports)}-{max(ports)}",
            target=f"https://compute.googleapis.com/compute/v1/projects/{project}/regions/{region}/targetPools/{lb}",
        ),
    ).result()
    # 6. release the reservation: the rule keeps the IP as an ephemeral one
    addresses.delete(project=project, region=region, address=lb).result()
    return UpstreamLB(ip, lb, lb, hc_name, (U.traffic_firewall_name(lb), hc_fw))
