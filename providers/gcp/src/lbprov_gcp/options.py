"""The GCP annotations lbprov understands, validated into a frozen options model.

Names and values follow cloud-provider-gcp so Services can move over unchanged:
``networking.gke.io/load-balancer-type: Internal`` (or the deprecated
``cloud.google.com/load-balancer-type``; ``internal`` is accepted too) selects an internal passthrough
load balancer, and ``cloud.google.com/network-tier: Standard|Premium`` picks the external tier.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from lbprov.identity_memo import by_identity
from lbprov.model import Intent, InvalidService, Target

if TYPE_CHECKING:
    from lbprov_gcp.settings import GCPSettings

LB_TYPE = "networking.gke.io/load-balancer-type"
LEGACY_LB_TYPE = "cloud.google.com/load-balancer-type"
NETWORK_TIER = "cloud.google.com/network-tier"
GLOBAL_ACCESS = "networking.gke.io/internal-load-balancer-allow-global-access"
ILB_SUBNET = "networking.gke.io/internal-load-balancer-subnet"
IP_ADDRESSES = "networking.gke.io/load-balancer-ip-addresses"
L4_RBS = "cloud.google.com/l4-rbs"

#: The annotation namespaces lbprov answers for: every key in them is in :data:`ANNOTATIONS`, or
#: refused as unknown.
NAMESPACES = ("networking.gke.io/", "cloud.google.com/", "alpha.cloud.google.com/")

Status = Literal["implemented", "refused", "ignored"]


@dataclass(frozen=True)
class Annotation:
    """One key of the table in the provider README: what lbprov does with it, and why."""

    status: Status
    note: str


#: Every load-balancer key that cloud-provider-gcp, GKE or ingress-gce defines in these namespaces.
ANNOTATIONS: dict[str, Annotation] = {
    LB_TYPE: Annotation("implemented", "`Internal` (or `internal`): an internal passthrough load balancer"),
    LEGACY_LB_TYPE: Annotation("implemented", "deprecated spelling of the above, as upstream"),
    NETWORK_TIER: Annotation("implemented", "`Premium` (default) or `Standard`, external only"),
    GLOBAL_ACCESS: Annotation(
        "implemented", "`true`/`false`: `allowGlobalAccess` on the internal forwarding rules"
    ),
    ILB_SUBNET: Annotation("implemented", "subnetwork (name, in the region) the internal IP comes from"),
    IP_ADDRESSES: Annotation(
        "implemented",
        "names of reserved regional addresses, one per IP family of the Service; used, never released",
    ),
    L4_RBS: Annotation(
        "ignored",
        "`enabled` hands the Service to ingress-gce's L4 controller (its `k8s2-` load balancers): "
        "lbprov skips such Services without events, as upstream (ImplementedElsewhere); any other "
        "value has no effect",
    ),
    "alpha.cloud.google.com/load-balancer-backend-share": Annotation(
        "refused", "lbprov makes one backend service per Service and protocol; sharing is not implemented"
    ),
    "cloud.google.com/load-balancer-backend-share": Annotation(
        "refused", "deprecated spelling of the above; not implemented"
    ),
    "cloud.google.com/load-balancer-resource-labels": Annotation(
        "refused", "resource labels on forwarding rules are not implemented yet"
    ),
    "networking.gke.io/weighted-load-balancing": Annotation(
        "refused", "GKE's weighted load balancing needs ingress-gce's L4 controller"
    ),
    "networking.gke.io/target-pool": Annotation(
        "ignored", "written onto Services by upstream (its target pool)"
    ),
    "networking.gke.io/backend-service": Annotation(
        "ignored", "written onto Services by upstream (its backend service)"
    ),
    "cloud.google.com/neg": Annotation("ignored", "network endpoint groups: ingress-gce's NEG controller"),
    "cloud.google.com/neg-status": Annotation("ignored", "written by ingress-gce's NEG controller"),
    "cloud.google.com/backend-config": Annotation("ignored", "BackendConfig for Ingress: ingress-gce"),
    "cloud.google.com/app-protocols": Annotation("ignored", "Ingress backend protocols: ingress-gce"),
}

_INTERNAL_VALUES = ("Internal", "internal")
_TIERS = {"Premium": "PREMIUM", "Standard": "STANDARD", "premium": "PREMIUM", "standard": "STANDARD"}
_BOOLS = {"true": True, "false": False}
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_PROVIDER_ID = re.compile(
    r"^gce://(?P<project>[^/]+)/(?P<zone>[a-z]+-[a-z]+[0-9]+-[a-z])/(?P<name>[a-z0-9-]+)$"
)

log = logging.getLogger("lbprov.gcp")


class GCPOptions(BaseModel):
    """What the annotations asked for; part of the Intent, so plans are pure functions of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scheme: Literal["external", "internal"] = "external"
    network_tier: Literal["PREMIUM", "STANDARD"] = "PREMIUM"
    allow_global_access: bool = False
    subnet: str | None = None  # internal: the annotation's subnetwork, else the setting's
    address_names: tuple[str, ...] = ()  # reserved addresses the user named


@dataclass(frozen=True, order=True)
class Instance:
    """A node's GCE instance, from its providerID ``gce://<project>/<zone>/<name>``."""

    zone: str
    name: str


def _field(key: str) -> str:
    return f"metadata.annotations[{key}]"


def parse_options(annotations: Mapping[str, str]) -> GCPOptions:
    """The annotations in lbprov's GCP namespaces, validated; nothing is silently dropped."""
    for key in sorted(annotations):
        if not key.startswith(NAMESPACES):
            continue
        known = ANNOTATIONS.get(key)
        if known is None:
            implemented = ", ".join(k for k, a in ANNOTATIONS.items() if a.status == "implemented")
            raise InvalidService(
                _field(key),
                f"is not a load-balancer annotation lbprov knows; implemented keys: {implemented}",
            )
        if known.status == "refused":
            raise InvalidService(_field(key), f"is not supported: {known.note}")
    values = {k: annotations[k] for k in (LB_TYPE, LEGACY_LB_TYPE) if k in annotations}
    internal: bool | None = None
    for key, value in values.items():
        if value not in _INTERNAL_VALUES:
            raise InvalidService(
                _field(key),
                f"{value!r} is not supported; accepted values: Internal (or internal). "
                "Leave the annotation out for an external load balancer",
            )
        internal = True
    tier_raw = annotations.get(NETWORK_TIER)
    tier: Literal["PREMIUM", "STANDARD"] = "PREMIUM"
    if tier_raw is not None:
        if tier_raw not in _TIERS:
            raise InvalidService(_field(NETWORK_TIER), f"{tier_raw!r}; accepted values: Premium, Standard")
        tier = "PREMIUM" if _TIERS[tier_raw] == "PREMIUM" else "STANDARD"
        if internal and tier != "PREMIUM":
            raise InvalidService(
                _field(NETWORK_TIER),
                "Standard tier is for external load balancers only; accepted values for an internal one: Premium",
            )
    global_access = False
    if GLOBAL_ACCESS in annotations:
        raw = annotations[GLOBAL_ACCESS]
        if raw not in _BOOLS:
            raise InvalidService(_field(GLOBAL_ACCESS), f"{raw!r}; accepted values: true, false")
        global_access = _BOOLS[raw]
        if global_access and not internal:
            raise InvalidService(
                _field(GLOBAL_ACCESS),
                "global access is for internal load balancers only; accepted values: false",
            )
    subnet = annotations.get(ILB_SUBNET)
    if subnet is not None:
        if not internal:
            raise InvalidService(_field(ILB_SUBNET), "is for internal load balancers only; leave it out")
        if not _NAME.match(subnet):
            raise InvalidService(_field(ILB_SUBNET), f"{subnet!r} is not a subnetwork name")
    names: tuple[str, ...] = ()
    if IP_ADDRESSES in annotations:
        names = tuple(n.strip() for n in annotations[IP_ADDRESSES].split(",") if n.strip())
        bad = [n for n in names if not _NAME.match(n)]
        if not names or bad or len(names) > 2:
            raise InvalidService(
                _field(IP_ADDRESSES),
                f"{annotations[IP_ADDRESSES]!r}; accepted values: one or two reserved address names, comma-separated",
            )
    return GCPOptions(
        scheme="internal" if internal else "external",
        network_tier=tier,
        allow_global_access=global_access,
        subnet=subnet,
        address_names=names,
    )


def validate_source_ranges(ranges: tuple[str, ...], families: tuple[str, ...] = ("IPv4",)) -> None:
    """Each range is of a family the Service has, and each family has a range: GCE firewalls hold
    one family each, so the IPv4 and IPv6 ranges go to separate rules. The default (no ranges:
    ``0.0.0.0/0``) means everyone, ``::/0`` for IPv6."""
    if tuple(ranges) == ("0.0.0.0/0",):  # the default (the core cannot tell it from an explicit one)
        return
    versions = {"IPv4": 4, "IPv6": 6}
    served = {versions[f] for f in families}
    for i, cidr in enumerate(ranges):
        if ipaddress.ip_network(cidr).version not in served:
            raise InvalidService(
                f"spec.loadBalancerSourceRanges[{i}]",
                f"{cidr!r} is not of the Service's IP families {list(families)}; accepted values: "
                + " or ".join(f"{f} CIDRs" for f in families),
            )
    for family in families:
        if not any(ipaddress.ip_network(c).version == versions[family] for c in ranges):
            raise InvalidService(
                "spec.loadBalancerSourceRanges",
                f"{list(ranges)} lists no {family} range, but the Service's IP families are {list(families)}; "
                f"add the {family} sources allowed ({'::/0' if family == 'IPv6' else '0.0.0.0/0'} for all)",
            )


def validate_ipv6(intent: Intent, options: GCPOptions, settings: GCPSettings) -> None:
    """What an IPv6 family needs that the Service or the settings do not give (pure: no reads)."""
    field = "spec.ipFamilies"
    if options.scheme == "external" and options.network_tier == "STANDARD":
        # ingress-gce, forwarding_rules_ipv6.go: "IPv6 address is not supported for External
        # Regional Network Load Balancing with Standard network tier."
        raise InvalidService(
            f"metadata.annotations[{NETWORK_TIER}]",
            f"Standard with spec.ipFamilies {list(intent.ip_families)}: external IPv6 load balancers are "
            "Premium tier only; accepted values with IPv6: Premium (or leave the annotation out)",
        )
    if not ((options.scheme == "internal" and options.subnet) or settings.subnetwork):
        raise InvalidService(
            field,
            f"{list(intent.ip_families)}: an IPv6 forwarding rule takes its IP from a dual-stack subnetwork, "
            "and none is set: set the GCP setting 'subnetwork' (LBPROV_GCP_SUBNETWORK)"
            + (
                " or the annotation networking.gke.io/internal-load-balancer-subnet"
                if options.scheme == "internal"
                else ""
            )
            + ", or ask for IPv4 only",
        )


@by_identity  # the same tuple for every Service: no hashing of its targets per call
@functools.lru_cache(maxsize=16)
def instances(targets: tuple[Target, ...], project: str, region: str) -> tuple[Instance, ...]:
    """The instances of the targets that are in this project and region.

    A node whose providerID names another project or region (or is not a GCE providerID) cannot join
    this region's instance groups: it is left out with a warning, as upstream skips it.

    Every Service of a cluster has (nearly always) the same targets, and each plan asks three times
    (validation, reads, diff): the answer is kept for the last few node sets, so a round of N plans
    parses the nodes' providerIDs once, not 3 N times (issue 14), and the warning is logged once
    per node set.
    """
    out: list[Instance] = []
    for target in targets:
        m = _PROVIDER_ID.match(target.provider_id)
        if not m:
            log.warning(
                "node %s: providerID %r is not gce://<project>/<zone>/<name>; skipped",
                target.node_name,
                target.provider_id,
            )
            continue
        if m["project"] != project or not m["zone"].startswith(region + "-"):
            log.warning(
                "node %s: instance %s is not in project %s, region %s; skipped",
                target.node_name,
                target.provider_id,
                project,
                region,
            )
            continue
        out.append(Instance(zone=m["zone"], name=m["name"]))
    return tuple(sorted(set(out)))


def implemented_elsewhere(service: Mapping[str, Any]) -> str | None:
    """Upstream's ImplementedElsewhere for GCP: ``cloud.google.com/l4-rbs: enabled`` belongs to
    ingress-gce's L4 controller, which makes its own regional backend-service load balancer."""
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    if annotations.get(L4_RBS) == "enabled":
        return f"{L4_RBS}: enabled: ingress-gce's L4 controller serves it"
    return None
