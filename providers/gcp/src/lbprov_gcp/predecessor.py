"""cloud-provider-gcp's target-pool load balancer for a Service: its names and descriptions.

lbprov takes such a load balancer over in place (the plan's ``adopt``): the IP is promoted to a
reserved address and reused by lbprov's backend-service-based forwarding rule; upstream's forwarding
rule, target pool and health checks are deleted, and its firewalls are patched into lbprov's. A
resource counts as upstream's for a Service only when its name AND its description are exactly what
upstream writes for that Service (and, for the shared node health check, for this cluster's ID);
anything else under those names stays an ownership conflict.

Upstream's shapes (gce_loadbalancer_external.go, gce_loadbalancer_naming.go; REFERENCE.md section 3):

====================================  ===========================  ===============================================
resource                              name                         description
====================================  ===========================  ===============================================
forwarding rule (target = the pool)   ``<lb>``                     ``{"kubernetes.io/service-name":"<ns>/<name>"}``
target pool                           ``<lb>``                     the same
address (only while ensuring)         ``<lb>``                     the same
traffic firewall                      ``k8s-fw-<lb>``              ``{"kubernetes.io/service-name":"<ns>/<name>",
                                                                   "kubernetes.io/service-ip":"<ip>"}``
HTTP health check (Local)             ``<lb>``                     ``{"kubernetes.io/service-name":"<lb>"}``
its firewall                          ``k8s-<lb>-http-hc``         as the traffic firewall
HTTP health check (Cluster, shared)   ``k8s-<clusterID>-node``     ``{"kubernetes.io/service-name":"k8s-<clusterID>-node"}``
its firewall                          ``k8s-<clusterID>-node-http-hc``  ``{"kubernetes.io/cluster-id":"<clusterID>"}``
====================================  ===========================  ===============================================

(``makeHealthCheckDescription`` is given the check's own name, not the Service's.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

SERVICE_NAME = "kubernetes.io/service-name"
SERVICE_IP = "kubernetes.io/service-ip"
CLUSTER_ID = "kubernetes.io/cluster-id"


def traffic_firewall_name(lb: str) -> str:
    return f"k8s-fw-{lb}"


def nodes_health_check_name(gce_cluster_id: str) -> str:
    return f"k8s-{gce_cluster_id}-node"


def health_check_firewall_name(hc_name: str) -> str:
    """``MakeHealthCheckFirewallName``: ``k8s-<lb>-http-hc``, or ``k8s-<clusterID>-node-http-hc``."""
    return f"{hc_name}-http-hc" if hc_name.startswith("k8s-") else f"k8s-{hc_name}-http-hc"


def service_description(service_key: str) -> str:
    """``makeServiceDescription``: forwarding rule, target pool, address."""
    return f'{{"{SERVICE_NAME}":"{service_key}"}}'


def firewall_description(service_key: str, ip: str) -> str:
    """``makeFirewallDescription``: the traffic firewall and a Local Service's health-check firewall."""
    return f'{{"{SERVICE_NAME}":"{service_key}", "{SERVICE_IP}":"{ip}"}}'


def health_check_description(hc_name: str) -> str:
    """``makeHealthCheckDescription(name)``, given the health check's own name."""
    return f'{{"{SERVICE_NAME}":"{hc_name}"}}'


def nodes_firewall_description(gce_cluster_id: str) -> str:
    """``ensureHTTPHealthCheckFirewall`` for the shared nodes check."""
    return f'{{"{CLUSTER_ID}":"{gce_cluster_id}"}}'


def _tags(description: str | None) -> dict[str, str] | None:
    try:
        data = json.loads(description or "")
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    return {str(k): str(v) for k, v in data.items()}


def is_services(res: Mapping[str, Any], service_key: str) -> bool:
    """Upstream's forwarding rule, target pool or address of this Service (the description exactly)."""
    return _tags(res.get("description")) == {SERVICE_NAME: service_key}


def is_services_firewall(res: Mapping[str, Any], service_key: str) -> bool:
    """Upstream's traffic (or Local health-check) firewall of this Service: its description names
    the Service, and the IP (written from the forwarding rule's) when there is one."""
    tags = _tags(res.get("description"))
    return (
        tags is not None and tags.get(SERVICE_NAME) == service_key and set(tags) <= {SERVICE_NAME, SERVICE_IP}
    )


def is_health_check(res: Mapping[str, Any]) -> bool:
    """An HTTP health check as upstream names and describes it (the description names the check)."""
    return _tags(res.get("description")) == {SERVICE_NAME: str(res.get("name"))}


def is_nodes_firewall(res: Mapping[str, Any], gce_cluster_id: str) -> bool:
    return _tags(res.get("description")) == {CLUSTER_ID: gce_cluster_id}
