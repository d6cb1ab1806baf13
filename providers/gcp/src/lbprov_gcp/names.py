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
==================  ===============================================  ===========================

Ownership lives in the resource ``description`` as a JSON object of lbprov's tags (the cluster tag,
the Service's UID and name, the load-balancer kind), so that a filtered list finds what a Service
owns without any other index.
"""

from __future__ import annotations

import json

from lbprov import naming
from lbprov.model import Intent

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


def last_segment(link: str | None) -> str | None:
    """The resource name at the end of a URL or relative path."""
    return link.rstrip("/").split("/")[-1] if link else None
