"""What cloud-provider-azure ("upstream") makes for a Service: its names and tags, so that lbprov can
recognise its *predecessors* and adopt them in place (DESIGN.md "Ownership", the predecessor).

From kubernetes-sigs/cloud-provider-azure (``pkg/provider/azure_standard.go`` ``getRulePrefix``,
``getLoadBalancerRuleName``, ``getPublicIPName``, ``getSecurityRuleName``, ``getBackendPoolName``;
``pkg/consts/consts.go`` ``ServiceTagKey``, ``ClusterNameKey``):

* the shared load balancers ``<cluster>`` and ``<cluster>-internal`` with the backend pool
  ``<cluster>``: the names lbprov's slot 0 uses too;
* per Service (``base`` = ``a`` + the UID without dashes, cut to 32): the frontend ``<base>``, a
  load-balancing rule and a probe ``<base>-<PROTO>-<port>`` per port (also lbprov's names);
* the public IP ``<cluster>-<base>`` (also lbprov's name), tagged ``k8s-azure-service: <ns>/<name>``
  (a comma-separated list when Services share the IP) and ``k8s-azure-cluster-name: <cluster>``;
  releases before 1.0 wrote ``service`` and ``kubernetes-cluster-name``;
* NSG rules on the cluster NSG: before the security-group rework (v1.28), one rule per port and
  source, ``<base>-<PROTO>-<port>-<source, "/" as "_">``; since then shared rules
  ``k8s-azure-lb_allow_IPv4_<hash>`` (and ``k8s-azure-lb_deny-all_IPv4``) whose destinations are
  the frontend addresses of every Service they serve.

A load balancer has no upstream ownership tag, and frontends, rules and probes have no tags at all:
they are this Service's by their UID-derived name (a UID is unique to one Service of one cluster).
A public IP is the predecessor only if its tags name this cluster and this Service; one named like
it but tagged for another cluster or Service is a look-alike and stays an ownership conflict.
"""

from __future__ import annotations

from collections.abc import Mapping

from lbprov.model import ServiceRef

#: Upstream's Service tag on a public IP, then its legacy spelling.
SERVICE_TAGS = ("k8s-azure-service", "service")
#: Upstream's cluster tag on a public IP, then its legacy spelling.
CLUSTER_TAGS = ("k8s-azure-cluster-name", "kubernetes-cluster-name")
#: Upstream's record of the Service that uses a DNS label of a public IP.
DNS_SERVICE_TAGS = ("k8s-azure-dns-label-service", "kubernetes-dns-label-service")
UPSTREAM_TAGS = frozenset(SERVICE_TAGS + CLUSTER_TAGS + DNS_SERVICE_TAGS)
#: Prefix of upstream's shared NSG rules (``k8s-azure-lb_allow_IPv4_<hash>``, ``..._deny-all_IPv4``).
SHARED_RULE_PREFIX = "k8s-azure-lb_"


def _tag(tags: Mapping[str, str] | None, keys: tuple[str, ...]) -> str | None:
    low = {str(k).lower(): v for k, v in (tags or {}).items()}
    return next((str(low[k]) for k in keys if low.get(k)), None)


def services_of(tags: Mapping[str, str] | None) -> set[str]:
    """The ``<ns>/<name>`` keys upstream's tags say use a public IP."""
    value = _tag(tags, SERVICE_TAGS) or ""
    return {s.strip() for s in value.split(",") if s.strip()}


def cluster_of(tags: Mapping[str, str] | None) -> str | None:
    return _tag(tags, CLUSTER_TAGS)


def is_upstream(tags: Mapping[str, str] | None) -> bool:
    """Whether a resource carries upstream's ownership tags (for any cluster or Service)."""
    return bool(services_of(tags) or cluster_of(tags))


def is_predecessor_pip(tags: Mapping[str, str] | None, cluster: str, ref: ServiceRef) -> bool:
    """Upstream made this public IP for ``ref`` of ``cluster`` (its tags say so; the name is checked by
    the caller). Only an IP that no other Service shares is adopted: a shared one is refused."""
    return cluster_of(tags) == cluster and services_of(tags) == {ref.key}


def describe(tags: Mapping[str, str] | None) -> str:
    """Upstream's owner of a resource, in words, for conflict messages."""
    svcs = ", ".join(sorted(services_of(tags))) or "no Service"
    return f"cloud-provider-azure's tags name {svcs} of cluster {cluster_of(tags) or '(none)'!r}"


def without_upstream_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """``tags`` without upstream's ownership tags (an adopted resource is lbprov's alone)."""
    return {k: v for k, v in (tags or {}).items() if str(k).lower() not in UPSTREAM_TAGS}


def is_legacy_nsg_rule(name: str, base: str) -> bool:
    """An NSG rule upstream made for the Service before v1.28: ``<base>-<PROTO>-<port>-<source>``."""
    low, b = name.lower(), base.lower()
    return low.startswith(b + "-tcp-") or low.startswith(b + "-udp-") or low.startswith(b + "-sctp-")


def is_shared_nsg_rule(name: str) -> bool:
    """One of upstream's shared NSG rules (since v1.28), whose destinations are frontend addresses."""
    return name.lower().startswith(SHARED_RULE_PREFIX.lower())
