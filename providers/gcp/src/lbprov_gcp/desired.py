"""Intent -> the GCP resources one Service needs (pure; no cloud call).

Each resource is described twice: ``body`` is the JSON the API receives, ``view`` the managed fields
compared with what is found (references reduced to names), so a diff shows exactly the drift.

Names (base ``<lb>`` = ``a`` + UID, 32 chars, as upstream):

==================  ===============================================  ===========================
instance groups     ``k8s-ig--<cluster>`` in every zone with nodes   shared by the cluster
health check        ``<lb>`` (Local) / ``k8s-<cluster>-node`` :10256  shared by Cluster Services
HC firewall         ``k8s-<lb>-http-hc`` / ``k8s-<cluster>-node-http-hc``
traffic firewall    ``k8s-fw-<lb>``
address             ``<lb>`` (unless ``loadBalancerIP`` is a user's reserved address)
backend service     ``<lb>-tcp`` / ``<lb>-udp``                       one per protocol
forwarding rule     ``<lb>-tcp`` / ``<lb>-udp``                       one per protocol
==================  ===============================================  ===========================

An address is reserved for every Service, not only when ``loadBalancerIP`` is set: the TCP and UDP
forwarding rules of one Service must share one IP, and that IP must survive the replacement of a
forwarding rule (a port change), which needs a reserved address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Intent
from lbprov_gcp.options import GCPOptions, Instance
from lbprov_gcp.settings import GCPSettings

Json = dict[str, Any]

KUBE_PROXY_HEALTH_PORT = 10256
HEALTH_PATH = "/healthz"
#: Upstream's timings (REFERENCE.md section 3): interval 8 s, timeout 1 s, healthy 1, unhealthy 3.
HC_TIMING = {"checkIntervalSec": 8, "timeoutSec": 1, "healthyThreshold": 1, "unhealthyThreshold": 3}
MAX_LISTED_PORTS = 5
LB_KIND = {"external": "gcp-passthrough-external", "internal": "gcp-passthrough-internal"}


def fit(name: str) -> str:
    """GCE names are at most 63 characters: cut long ones and keep them unique with a hash."""
    if len(name) <= 63:
        return name
    return f"{name[:52].rstrip('-')}-{naming.short_hash(name)}"


def ig_name(cluster: str) -> str:
    return fit(f"k8s-ig--{cluster}")


def shared_hc_name(cluster: str) -> str:
    return fit(f"k8s-{cluster}-node")


def shared_hc_firewall_name(cluster: str) -> str:
    return fit(f"k8s-{cluster}-node-http-hc")


def per_service_names(lb: str) -> dict[str, str]:
    return {"hc": lb, "hc_firewall": f"k8s-{lb}-http-hc", "firewall": f"k8s-fw-{lb}", "address": lb}


def rule_name(lb: str, protocol: str) -> str:
    return f"{lb}-{protocol.lower()}"


def service_description(intent: Intent, scheme: str) -> str:
    tags = dict(naming.ownership_tags(intent.cluster, intent.ref))
    tags[naming.LB_KIND_TAG] = LB_KIND[scheme]
    return json.dumps(tags, sort_keys=True, separators=(",", ":"))


def cluster_description(cluster: str) -> str:
    return json.dumps(naming.cluster_tags(cluster), sort_keys=True, separators=(",", ":"))


def ownership(description: str | None) -> dict[str, str]:
    """The ownership tags in a resource description ({} for anything lbprov did not write)."""
    try:
        data = json.loads(description or "")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}


def owned_by_service(description: str | None, cluster: str, uid: str) -> bool:
    return naming.is_owned_by_service(ownership(description), cluster, uid)


def owned_as_shared(description: str | None, cluster: str) -> bool:
    tags = ownership(description)
    return naming.is_owned_by_cluster(tags, cluster) and naming.SERVICE_UID_TAG not in tags


@dataclass(frozen=True)
class Resource:
    kind: str  # change kind
    collection: str  # API collection
    name: str
    body: Json
    view: Json
    shared: bool = False
    zone: str | None = None


@dataclass(frozen=True)
class Desired:
    scheme: str
    instance_groups: dict[str, tuple[str, ...]]  # zone -> instance names
    health_check: Resource
    hc_firewall: Resource
    firewall: Resource
    address: Resource | None  # None when the requested IP is a user's reserved address (set by plan)
    backend_services: dict[str, Resource]  # protocol -> backend service
    rules: dict[str, Json] = field(default_factory=dict)  # protocol -> forwarding rule body (no IP yet)
    rule_views: dict[str, Json] = field(default_factory=dict)


def _link(settings: GCPSettings, path: str) -> str:
    return f"projects/{settings.project}/{path}"


def build(intent: Intent, settings: GCPSettings, options: GCPOptions, nodes: tuple[Instance, ...]) -> Desired:
    cluster = intent.cluster
    lb = intent.lb_name
    scheme = options.scheme
    names = per_service_names(lb)
    svc_desc = service_description(intent, scheme)
    shared_desc = cluster_description(cluster)

    zones: dict[str, list[str]] = {}
    for node in nodes:
        zones.setdefault(node.zone, []).append(node.name)
    groups = {zone: tuple(sorted(members)) for zone, members in sorted(zones.items())}
    group_name = ig_name(cluster)

    # health check: Local -> per Service on healthCheckNodePort; Cluster -> shared kube-proxy check
    if intent.health_check is not None:
        hc_name, hc_port, hc_shared = names["hc"], int(intent.health_check.port or 0), False
        hc_path = intent.health_check.path or HEALTH_PATH
        hc_fw_name = names["hc_firewall"]
    else:
        hc_name, hc_port, hc_shared, hc_path = (
            shared_hc_name(cluster),
            KUBE_PROXY_HEALTH_PORT,
            True,
            HEALTH_PATH,
        )
        hc_fw_name = shared_hc_firewall_name(cluster)
    hc_view = {"type": "HTTP", "port": hc_port, "requestPath": hc_path, **HC_TIMING}
    hc_body = {
        "name": hc_name,
        "description": shared_desc if hc_shared else svc_desc,
        "type": "HTTP",
        "httpHealthCheck": {"port": hc_port, "requestPath": hc_path},
        **HC_TIMING,
    }
    health_check = Resource("health-check", "healthChecks", hc_name, hc_body, hc_view, shared=hc_shared)

    network_link = _link(settings, f"global/networks/{settings.network}")
    tags = sorted(settings.node_tags)
    hc_fw_view = {
        "network": settings.network,
        "direction": "INGRESS",
        "priority": settings.firewall_priority,
        "sourceRanges": sorted(settings.health_check_source_ranges),
        "targetTags": tags,
        "allowed": [{"IPProtocol": "tcp", "ports": [str(hc_port)]}],
    }
    hc_firewall = Resource(
        "firewall-rule",
        "firewalls",
        hc_fw_name,
        {
            "name": hc_fw_name,
            "description": shared_desc if hc_shared else svc_desc,
            **{**hc_fw_view, "network": network_link},
        },
        hc_fw_view,
        shared=hc_shared,
    )

    # traffic firewall: passthrough keeps the service port, so allow the service ports
    allowed = []
    for proto in intent.protocols:
        ports = sorted({p.port for p in intent.ports if p.protocol == proto})
        allowed.append({"IPProtocol": proto.lower(), "ports": [str(p) for p in ports]})
    fw_view = {
        "network": settings.network,
        "direction": "INGRESS",
        "priority": settings.firewall_priority,
        "sourceRanges": sorted(intent.source_ranges),
        "targetTags": tags,
        "allowed": allowed,
    }
    firewall = Resource(
        "firewall-rule",
        "firewalls",
        names["firewall"],
        {"name": names["firewall"], "description": svc_desc, **{**fw_view, "network": network_link}},
        fw_view,
    )

    # address (ours); plan drops it when loadBalancerIP is a user-reserved address
    if scheme == "external":
        addr_view: Json = {"addressType": "EXTERNAL", "networkTier": options.network_tier}
    else:
        subnet = settings.subnetwork or ""
        addr_view = {"addressType": "INTERNAL", "subnetwork": subnet, "purpose": "SHARED_LOADBALANCER_VIP"}
    addr_view["address"] = intent.requested_ip  # None: any IP the cloud allocates
    addr_body = {k: v for k, v in addr_view.items() if v is not None}
    if scheme == "internal":
        addr_body["subnetwork"] = _link(
            settings, f"regions/{settings.region}/subnetworks/{settings.subnetwork}"
        )
    address = Resource(
        "address",
        "addresses",
        names["address"],
        {"name": names["address"], "description": svc_desc, **addr_body},
        addr_view,
    )

    gce_scheme = "EXTERNAL" if scheme == "external" else "INTERNAL"
    backend_services: dict[str, Resource] = {}
    rules: dict[str, Json] = {}
    rule_views: dict[str, Json] = {}
    for proto in intent.protocols:
        name = rule_name(lb, proto)
        bs_view: Json = {
            "loadBalancingScheme": gce_scheme,
            "protocol": proto,
            "sessionAffinity": "CLIENT_IP" if intent.session_affinity else "NONE",
            "healthCheck": hc_name,
            "backends": [f"{zone}/{group_name}" for zone in groups],
            "network": settings.network if scheme == "internal" else None,
        }
        bs_body: Json = {
            "name": name,
            "description": svc_desc,
            "loadBalancingScheme": gce_scheme,
            "protocol": proto,
            "sessionAffinity": bs_view["sessionAffinity"],
            "healthChecks": [_link(settings, f"regions/{settings.region}/healthChecks/{hc_name}")],
            "backends": [
                {
                    "group": _link(settings, f"zones/{zone}/instanceGroups/{group_name}"),
                    "balancingMode": "CONNECTION",
                }
                for zone in groups
            ],
        }
        if scheme == "internal":
            bs_body["network"] = network_link
        backend_services[proto] = Resource("backend-service", "backendServices", name, bs_body, bs_view)

        ports = sorted({p.port for p in intent.ports if p.protocol == proto})
        listed: list[str] | str = [str(p) for p in ports] if len(ports) <= MAX_LISTED_PORTS else "all"
        fr_view: Json = {
            "loadBalancingScheme": gce_scheme,
            "IPProtocol": proto,
            "ports": listed,
            "backendService": name,
        }
        fr_body: Json = {
            "name": name,
            "description": svc_desc,
            "loadBalancingScheme": gce_scheme,
            "IPProtocol": proto,
            "backendService": _link(settings, f"regions/{settings.region}/backendServices/{name}"),
        }
        if listed == "all":
            fr_body["allPorts"] = True
        else:
            fr_body["ports"] = listed
        if scheme == "external":
            fr_view["networkTier"] = options.network_tier
            fr_body["networkTier"] = options.network_tier
        else:
            fr_view["subnetwork"] = settings.subnetwork
            fr_body["subnetwork"] = _link(
                settings, f"regions/{settings.region}/subnetworks/{settings.subnetwork}"
            )
        rules[proto] = fr_body
        rule_views[proto] = fr_view

    return Desired(
        scheme=scheme,
        instance_groups=groups,
        health_check=health_check,
        hc_firewall=hc_firewall,
        firewall=firewall,
        address=address,
        backend_services=backend_services,
        rules=rules,
        rule_views=rule_views,
    )


def _name(link: str | None) -> str | None:
    return link.rstrip("/").split("/")[-1] if link else None


def view_of(collection: str, res: Json) -> Json:
    """The managed fields of a resource as read from the API, in the shape of :func:`build`'s views."""
    if collection == "healthChecks":
        http = res.get("httpHealthCheck") or {}
        return {
            "type": res.get("type"),
            "port": http.get("port"),
            "requestPath": http.get("requestPath"),
            **{k: res.get(k) for k in HC_TIMING},
        }
    if collection == "firewalls":
        return {
            "network": _name(res.get("network")),
            "direction": res.get("direction"),
            "priority": res.get("priority"),
            "sourceRanges": sorted(res.get("sourceRanges") or []),
            "targetTags": sorted(res.get("targetTags") or []),
            "allowed": [
                {"IPProtocol": a.get("IPProtocol"), "ports": list(a.get("ports") or [])}
                for a in res.get("allowed") or []
            ],
        }
    if collection == "addresses":
        view: Json = {"addressType": res.get("addressType", "EXTERNAL"), "address": res.get("address")}
        if view["addressType"] == "EXTERNAL":
            view["networkTier"] = res.get("networkTier", "PREMIUM")
        else:
            view["subnetwork"] = _name(res.get("subnetwork"))
            view["purpose"] = res.get("purpose")
        return view
    if collection == "backendServices":
        backends = []
        for b in res.get("backends") or []:
            parts = str(b.get("group", "")).rstrip("/").split("/")
            backends.append(f"{parts[-3]}/{parts[-1]}" if len(parts) >= 3 else parts[-1])
        hcs = res.get("healthChecks") or []
        return {
            "loadBalancingScheme": res.get("loadBalancingScheme"),
            "protocol": res.get("protocol"),
            "sessionAffinity": res.get("sessionAffinity", "NONE"),
            "healthCheck": _name(hcs[0]) if len(hcs) == 1 else [_name(h) for h in hcs],
            "backends": sorted(backends),
            "network": _name(res.get("network")),
        }
    if collection == "forwardingRules":
        fr: Json = {
            "loadBalancingScheme": res.get("loadBalancingScheme"),
            "IPProtocol": res.get("IPProtocol"),
            "ports": "all" if res.get("allPorts") else list(res.get("ports") or [res.get("portRange")]),
            "backendService": _name(res.get("backendService")),
        }
        if res.get("loadBalancingScheme") == "INTERNAL":
            fr["subnetwork"] = _name(res.get("subnetwork"))
        else:
            fr["networkTier"] = res.get("networkTier", "PREMIUM")
        return fr
    raise ValueError(collection)
