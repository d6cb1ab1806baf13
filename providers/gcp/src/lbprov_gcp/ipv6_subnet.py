"""Whether the Service's subnetwork can serve its IPv6 family (read when the Service is observed).

An IPv6 forwarding rule takes its IP from a dual-stack subnetwork (compute.v1.json,
ForwardingRule.subnetwork: "... used with internal load balancers and external passthrough Network
Load Balancers with IPv6"): an external one needs ``ipv6AccessType: EXTERNAL``, an internal one
``INTERNAL`` (Subnetwork.ipv6AccessType). GCE would refuse the rule at apply time, after the other
writes; the plan refuses the Service first, naming ``spec.ipFamilies`` and the subnetwork, so that
the Service gets a Warning event and no cloud write.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from lbprov.model import Intent, InvalidService
from lbprov_gcp.options import GCPOptions

if TYPE_CHECKING:
    from lbprov_gcp.observe import Reader
    from lbprov_gcp.settings import GCPSettings

FIELD = "spec.ipFamilies"
log = logging.getLogger("lbprov.gcp")


def ipv6_subnet_name(settings: GCPSettings, options: GCPOptions) -> str | None:
    if options.scheme == "internal" and options.subnet:
        return options.subnet
    return settings.subnetwork


def served_families(settings: GCPSettings, reader: Reader, intent: Intent, options: GCPOptions) -> Intent:
    """The intent with the families the subnetwork serves; refuses what it cannot serve.

    ``PreferDualStack`` with an IPv4 primary "prefers" dual-stack: on a subnetwork that cannot
    serve IPv6 it is served IPv4 only (as the API server itself serves it single-stack on a
    single-stack cluster), with a warning in the log. Any other Service that asks for IPv6 is
    refused, naming ``spec.ipFamilies``: an IPv6 Service never silently gets IPv4 only.
    """
    if "IPv6" not in intent.ip_families:
        return intent
    try:
        require_ipv6_subnet(settings, reader, intent, options)
    except InvalidService as refused:
        if intent.ip_family_policy == "PreferDualStack" and intent.ip_families[0] == "IPv4":
            log.warning("Service %s: served IPv4 only: %s", intent.ref.key, refused)
            return dataclasses.replace(intent, ip_families=("IPv4",))
        raise
    return intent


def require_ipv6_subnet(settings: GCPSettings, reader: Reader, intent: Intent, options: GCPOptions) -> None:
    name = ipv6_subnet_name(settings, options)
    if name is None:  # resolve() refuses this first; kept for plans of hand-built intents
        raise InvalidService(FIELD, "IPv6 needs the GCP setting 'subnetwork' (a dual-stack subnetwork)")
    found = reader.subnetwork(name)
    if found is None:
        raise InvalidService(
            FIELD,
            f"{list(intent.ip_families)}: subnetwork {name!r} is not in region {settings.region}",
        )
    access = "EXTERNAL" if options.scheme == "external" else "INTERNAL"
    stack = found.get("stackType") or "IPV4_ONLY"
    if stack == "IPV4_ONLY" or found.get("ipv6AccessType") != access:
        raise InvalidService(
            FIELD,
            f"{list(intent.ip_families)}: subnetwork {name!r} has stackType {stack}"
            + (f" and ipv6AccessType {found['ipv6AccessType']}" if found.get("ipv6AccessType") else "")
            + f", so it cannot serve an {access.lower()} IPv6 load balancer; make it dual-stack "
            f"(stackType IPV4_IPV6) with ipv6AccessType {access}, or ask for IPv4 only",
        )
