"""VPC firewall rules: validation of ``firewalls`` writes."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from lbprov_gcp.sandbox.errors import invalid
from lbprov_gcp.sandbox.fields import check_port_items, int_field

if TYPE_CHECKING:
    from lbprov_gcp.sandbox.emulator import ComputeEmulator
    from lbprov_gcp.sandbox.routes import Route

Json = dict[str, Any]


_FIREWALL_PROTOCOLS = {"tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"}
_TAG = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def validate(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    net = emu._require_ref(
        body.get("network") or "global/networks/default",
        field="resource.network",
        project=route.project,
        scope="global",
        collection="networks",
    )
    body["network"] = net["selfLink"]
    direction = body.setdefault("direction", "INGRESS")
    int_field(body, "priority", 1000, 0, 65535)
    allowed, denied = body.get("allowed") or [], body.get("denied") or []
    if bool(allowed) == bool(denied):
        raise invalid("resource.allowed", "exactly one of allowed and denied must be given")
    key = "allowed" if allowed else "denied"
    for i, rule in enumerate(allowed or denied):
        proto = str(rule.get("IPProtocol", ""))
        if proto not in _FIREWALL_PROTOCOLS and not (proto.isdigit() and 0 <= int(proto) <= 255):
            raise invalid(
                f"resource.{key}[{i}].IPProtocol",
                f"'{proto}' is not a protocol name ({', '.join(sorted(_FIREWALL_PROTOCOLS))}) or number",
            )
        if rule.get("ports"):
            if proto not in ("tcp", "udp", "sctp", "all", "6", "17", "132"):
                raise invalid(
                    f"resource.{key}[{i}].ports", f"ports are only valid with tcp, udp or sctp, not '{proto}'"
                )
            check_port_items(rule["ports"], f"resource.{key}[{i}].ports")
    for field in ("sourceRanges", "destinationRanges"):
        for i, cidr in enumerate(body.get(field) or []):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise invalid(f"resource.{field}[{i}]", f"'{cidr}' is not a CIDR") from None
    if direction == "INGRESS" and "destinationRanges" in body and not body["destinationRanges"]:
        body.pop("destinationRanges")
    if direction == "INGRESS" and not (
        body.get("sourceRanges") or body.get("sourceTags") or body.get("sourceServiceAccounts")
    ):
        raise invalid(
            "resource.sourceRanges", "an INGRESS rule needs sourceRanges, sourceTags or sourceServiceAccounts"
        )
    for i, tag in enumerate(body.get("targetTags") or []):
        if not _TAG.match(tag):
            raise invalid(f"resource.targetTags[{i}]", f"'{tag}' is not a valid network tag")
    if body.get("targetTags") and body.get("targetServiceAccounts"):
        raise invalid(
            "resource.targetServiceAccounts", "targetTags and targetServiceAccounts are mutually exclusive"
        )
    if len(body.get("sourceRanges") or []) > 5000:
        raise invalid("resource.sourceRanges", "at most 5000 source ranges")
    body.setdefault("disabled", False)
    body.setdefault("logConfig", {"enable": False})
    return body
