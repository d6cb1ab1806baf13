"""The GCP annotations lbprov understands, validated into a frozen options model.

Names and values follow cloud-provider-gcp so Services can move over unchanged:
``networking.gke.io/load-balancer-type: Internal`` (or the deprecated
``cloud.google.com/load-balancer-type``; ``internal`` is accepted too) selects an internal passthrough
load balancer, and ``cloud.google.com/network-tier: Standard|Premium`` picks the external tier.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lbprov.model import InvalidService, Target

LB_TYPE = "networking.gke.io/load-balancer-type"
LEGACY_LB_TYPE = "cloud.google.com/load-balancer-type"
NETWORK_TIER = "cloud.google.com/network-tier"

_INTERNAL_VALUES = ("Internal", "internal")
_TIERS = {"Premium": "PREMIUM", "Standard": "STANDARD", "premium": "PREMIUM", "standard": "STANDARD"}
_PROVIDER_ID = re.compile(
    r"^gce://(?P<project>[^/]+)/(?P<zone>[a-z]+-[a-z]+[0-9]+-[a-z])/(?P<name>[a-z0-9-]+)$"
)

log = logging.getLogger("lbprov.gcp")


class GCPOptions(BaseModel):
    """What the annotations asked for; part of the Intent, so plans are pure functions of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scheme: Literal["external", "internal"] = "external"
    network_tier: Literal["PREMIUM", "STANDARD"] = "PREMIUM"


@dataclass(frozen=True, order=True)
class Instance:
    """A node's GCE instance, from its providerID ``gce://<project>/<zone>/<name>``."""

    zone: str
    name: str


def parse_options(annotations: Mapping[str, str]) -> GCPOptions:
    values = {k: annotations[k] for k in (LB_TYPE, LEGACY_LB_TYPE) if k in annotations}
    internal: bool | None = None
    for key, value in values.items():
        if value not in _INTERNAL_VALUES:
            raise InvalidService(
                f"metadata.annotations[{key}]",
                f"{value!r} is not supported; accepted values: Internal (or internal). "
                "Leave the annotation out for an external load balancer",
            )
        internal = True
    tier_raw = annotations.get(NETWORK_TIER)
    tier = "PREMIUM"
    if tier_raw is not None:
        if tier_raw not in _TIERS:
            raise InvalidService(
                f"metadata.annotations[{NETWORK_TIER}]", f"{tier_raw!r}; accepted values: Premium, Standard"
            )
        tier = _TIERS[tier_raw]
        if internal and tier != "PREMIUM":
            raise InvalidService(
                f"metadata.annotations[{NETWORK_TIER}]",
                "Standard tier is for external load balancers only; accepted values for an internal one: Premium",
            )
    return GCPOptions(scheme="internal" if internal else "external", network_tier=tier)


def validate_source_ranges(ranges: tuple[str, ...]) -> None:
    for i, cidr in enumerate(ranges):
        if ipaddress.ip_network(cidr).version != 4:
            raise InvalidService(
                f"spec.loadBalancerSourceRanges[{i}]",
                f"{cidr!r}: the GCP provider makes IPv4 load balancers; accepted values: IPv4 CIDRs",
            )


def instances(targets: tuple[Target, ...], project: str, region: str) -> tuple[Instance, ...]:
    """The instances of the targets that are in this project and region.

    A node whose providerID names another project or region (or is not a GCE providerID) cannot join
    this region's instance groups: it is left out with a warning, as upstream skips it.
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
