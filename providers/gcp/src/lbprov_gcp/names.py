"""Resource names and ownership for the GCP provider (one authority for both).

Names (base ``<lb>`` = ``a`` + UID, 32 chars, as upstream):

==================  ===============================================  ===========================
instance groups     ``k8s-ig--<cluster>`` in every zone with nodes   shared by the cluster
health check        ``<lb>`` (Local) / ``k8s-<cluster>-node`` :10256  shared by Cluster Services
HC firewall         ``k8s-<lb>-http-hc`` / ``k8s-<cluster>-node-http-hc``
traffic firewall    ``k8s-fw-<lb>``
address             ``<lb>`` (unless ``loadBalancerIP`` is a user's reserved address)
backend service     ``<lb>-tcp`` / ``<lb>-udp``                       one per protocol
forwarding rule     ``<lb>-tcp`` / ``<lb>-udp``                       one per protocol
IPv6 twins          ``<name>-ipv6`` of the rules, address, firewalls  per family (dual-stack)
==================  ===============================================  ===========================

Ownership lives in the resource ``description`` as a JSON object of lbprov's tags (the cluster tag,
the Service's UID and name, the load-balancer kind), so that a filtered list finds what a Service
owns without any other index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lbprov import naming
from lbprov.model import Intent

LB_KIND = {"external": "gcp-passthrough-external", "internal": "gcp-passthrough-internal"}


def fit(name: str) -> str:
    """GCE names are at most 63 characters: cut long ones and keep them unique with a hash."""
    if len(name) <= 63:
        return name
    return f"{name[:52].rstrip('-')}-{naming.short_hash(name)}"


IG_PREFIX = "k8s-ig--"


def ig_name(cluster: str, gce_cluster_id: str | None = None) -> str:
    """The cluster's instance group in each zone: upstream's ``k8s-ig--<clusterID>``.

    GKE's controller, cloud-provider-gcp and ingress-gce all use this one group per zone, and GCE
    allows an instance in only one load-balanced group, so lbprov shares it rather than making its
    own. Without a cluster ID (a read-only run on a cluster where no controller ever made the
    ``ingress-uid`` ConfigMap) the cluster name stands in, made a valid GCE name.
    """
    if gce_cluster_id:
        return fit(f"{IG_PREFIX}{gce_cluster_id}")
    return naming.safe_name(IG_PREFIX, cluster, 63)


def _cluster_part(cluster: str) -> str:
    """The cluster name made valid inside a GCE name (lower case, ``_`` -> ``-``, hash-shortened),
    leaving room for the longest suffix: EKS-style names may be 100 characters with upper case."""
    return naming.safe_name("", cluster, 63 - len("k8s-") - len("-node-http-hc"))


def shared_hc_name(cluster: str) -> str:
    return f"k8s-{_cluster_part(cluster)}-node"


def shared_hc_firewall_name(cluster: str) -> str:
    return f"k8s-{_cluster_part(cluster)}-node-http-hc"


def per_service_names(lb: str) -> dict[str, str]:
    return {"hc": lb, "hc_firewall": f"k8s-{lb}-http-hc", "firewall": f"k8s-fw-{lb}", "address": lb}


def rule_name(lb: str, protocol: str) -> str:
    return f"{lb}-{protocol.lower()}"


def ipv6(name: str) -> str:
    """The IPv6 twin of a per-family resource (forwarding rule, address, firewall): ``<name>-ipv6``,
    as ingress-gce names its IPv6 firewalls and forwarding rules."""
    return fit(f"{name}-ipv6")


def family_name(name: str, family: str) -> str:
    return ipv6(name) if family == "IPv6" else name


def rule_names(lb: str) -> list[str]:
    """Every forwarding rule a Service may own: per protocol, per IP family."""
    v4 = [rule_name(lb, p) for p in ("TCP", "UDP")]
    return v4 + [ipv6(n) for n in v4]


def service_description(intent: Intent, scheme: str, cluster_id: str | None = None) -> str:
    tags = dict(naming.ownership_tags(intent.cluster, intent.ref, cluster_id))
    tags[naming.LB_KIND_TAG] = LB_KIND[scheme]
    return json.dumps(tags, sort_keys=True, separators=(",", ":"))


def cluster_description(cluster: str, cluster_id: str | None = None) -> str:
    return json.dumps(naming.cluster_tags(cluster, cluster_id), sort_keys=True, separators=(",", ":"))


#: The cluster identity as a GCE label, on the kinds that have labels and whose description cannot
#: change (forwarding rules, addresses): label keys allow no ``.`` or ``/``; the value, the
#: kube-system Namespace UID, is lowercase and 36 characters, within the 63 allowed.
ID_LABEL = "lbprov-cluster-id"


def identity(res: Mapping[str, Any]) -> str | None:
    """The ``lbprov.io/cluster-id`` a resource carries, in its description or as a label."""
    found = ownership(res.get("description")).get(naming.CLUSTER_ID_TAG)
    return found or (res.get("labels") or {}).get(ID_LABEL) or None


def identity_matches(res: Mapping[str, Any], cluster_id: str | None) -> bool:
    """The guard of every delete decided from cloud state (see naming.identity_matches)."""
    return naming.identity_matches({naming.CLUSTER_ID_TAG: identity(res) or ""}, cluster_id)


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


def last_segment(link: str | None) -> str | None:
    """The resource name at the end of a URL or relative path."""
    return link.rstrip("/").split("/")[-1] if link else None
