"""The read round's security group listing, kept current by this process's own writes.

Why: every NLB apply of the security-group model creates the Service's frontend group and its
rules. Dropping the round's listing after each such apply made the next plan list every group of
the VPC again (parsing one group per Service: CPU that grew with N for every create). Instead,
the writes whose effect is known exactly are applied to the listing (a new list, so that a plan
holding the old one keeps a consistent view); any other security group write, or one that failed,
drops the listing, which the next plan reads again (observe.py ``Reader.after_write``).

What the plans read of a group is its ID, name, VPC, tags and ingress rules (``IpPermissions``:
protocol, ports, CIDR or source group, description), so those are what a write updates.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lbprov_aws.observe import ObservedSG

#: The EC2 writes mirrored into the listing (any other EC2 write drops it).
MIRRORED = frozenset(
    {
        "ec2:CreateSecurityGroup",
        "ec2:DeleteSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:CreateTags",
        "ec2:DeleteTags",
    }
)

_ENTRY_KEYS = (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6"), ("UserIdGroupPairs", "GroupId"))


def mirror(
    groups: Sequence[ObservedSG],
    vpc_id: str | None,
    operation: str,
    params: Mapping[str, Any],
    result: Mapping[str, Any] | None,
) -> list[ObservedSG] | None:
    """``groups`` (the listing of ``vpc_id``) after a successful ``operation``; None when the
    write's effect on it is not known exactly (the caller drops the listing)."""
    from lbprov_aws.observe import ObservedSG

    if operation not in MIRRORED or vpc_id is None:
        return None
    out = list(groups)
    if operation == "ec2:CreateSecurityGroup":
        group_id = (result or {}).get("GroupId")
        if not group_id:
            return None
        if params.get("VpcId") != vpc_id:
            return out  # another VPC's group: not in this listing
        tags: dict[str, str] = {}
        for spec in params.get("TagSpecifications", []):
            tags.update({t["Key"]: t.get("Value", "") for t in spec.get("Tags", [])})
        # A new group has no ingress rule (AWS adds only the allow-all egress rule).
        out.append(ObservedSG(group_id, str(params.get("GroupName", "")), vpc_id, tags, []))
        return sorted(out, key=lambda sg: sg.id)  # (the listing's order: observe._read_security_groups)
    if operation == "ec2:DeleteSecurityGroup":
        return [sg for sg in out if sg.id != params.get("GroupId")]
    if operation in ("ec2:CreateTags", "ec2:DeleteTags"):
        ids = set(params.get("Resources", []))
        changes = {t["Key"]: t.get("Value") for t in params.get("Tags", [])}
        for i, sg in enumerate(out):
            if sg.id not in ids:
                continue
            if operation == "ec2:CreateTags":
                tags = {**sg.tags, **{k: v or "" for k, v in changes.items()}}
            else:  # DeleteTags: a key with a value is deleted only when the value matches
                tags = {k: v for k, v in sg.tags.items() if k not in changes or changes[k] not in (None, v)}
            out[i] = dataclasses.replace(sg, tags=tags)
        return out
    group_id = params.get("GroupId")
    if not group_id or "GroupName" in params:
        return None  # (a group named, not identified: not mirrored)
    for i, sg in enumerate(out):
        if sg.id != group_id:
            continue
        permissions = copy.deepcopy(sg.permissions)
        for perm in params.get("IpPermissions", []):
            if operation == "ec2:AuthorizeSecurityGroupIngress":
                permissions.append(_normalised(perm))
            else:
                _revoke(permissions, perm)
        out[i] = dataclasses.replace(sg, permissions=[p for p in permissions if _has_entries(p)])
    return out


def _normalised(perm: Mapping[str, Any]) -> dict[str, Any]:
    """A permission as DescribeSecurityGroups shows it (all protocols: no ports)."""
    out = copy.deepcopy(dict(perm))
    if str(out.get("IpProtocol")) == "-1":
        out.pop("FromPort", None)
        out.pop("ToPort", None)
    return out


def _same_ports(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if str(a.get("IpProtocol")) != str(b.get("IpProtocol")):
        return False
    return str(a.get("IpProtocol")) == "-1" or (
        a.get("FromPort") == b.get("FromPort") and a.get("ToPort") == b.get("ToPort")
    )


def _revoke(permissions: list[dict[str, Any]], perm: Mapping[str, Any]) -> None:
    """Remove the entries ``perm`` names (a revoke matches protocol, ports and source, whatever
    the description)."""
    for have in permissions:
        if not _same_ports(have, perm):
            continue
        for key, field in _ENTRY_KEYS:
            gone = {e.get(field) for e in perm.get(key, [])}
            if gone and key in have:
                have[key] = [e for e in have[key] if e.get(field) not in gone]


def _has_entries(perm: Mapping[str, Any]) -> bool:
    return any(perm.get(key) for key, _ in _ENTRY_KEYS) or bool(perm.get("PrefixListIds"))
