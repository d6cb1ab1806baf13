"""The read round's security group listing, kept current by this process's own writes.

Why: every NLB apply of the security-group model creates the Service's frontend group and its
rules. Dropping the round's listing after each such apply made the next plan list every group of
the VPC again (parsing one group per Service: CPU that grew with N for every create). Instead,
the writes whose effect is known exactly are applied to the listing; any other security group
write, or one that failed, drops the listing, which the next plan reads again (observe.py
``Reader.after_write``).

A :class:`Listing` is persistent (a hash array mapped trie, ``immutables.Map``): a write makes a new
listing that shares every group but the ones it touched, in O(log N), so that a plan holding the
old listing keeps a consistent view without the write copying the whole listing (a copy per write
was a cost that grew with N^2 over N creates: issue 14). Its ID order is sorted only when someone
iterates it (rare paths: sg_index.py serves the plans' lookups).

What the plans read of a group is its ID, name, VPC, tags and ingress rules (``IpPermissions``:
protocol, ports, CIDR or source group, description), so those are what a write updates.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

import immutables

if TYPE_CHECKING:
    from lbprov_aws.observe import ObservedSG

#: Sorts of a listing into ID order (a test counts them: none per write).
SORTS = {"count": 0}
_SORTS_LOCK = threading.Lock()


class Listing(Sequence["ObservedSG"]):
    """A VPC's security groups by ID, in ID order when iterated (the order of
    ``observe._read_security_groups``); immutable: :func:`mirror` makes new ones."""

    __slots__ = ("_ordered", "by_id")

    def __init__(self, by_id: immutables.Map[str, ObservedSG]) -> None:
        self.by_id = by_id
        self._ordered: tuple[ObservedSG, ...] | None = None

    @classmethod
    def of(cls, groups: Iterable[ObservedSG]) -> Listing:
        """The listing of ``groups`` (the first of an ID kept, like a listing read from AWS)."""
        m = immutables.Map[str, "ObservedSG"]().mutate()
        for sg in groups:
            if sg.id not in m:
                m[sg.id] = sg
        return cls(m.finish())

    def ordered(self) -> tuple[ObservedSG, ...]:
        """The groups in ID order (sorted once per listing, when first needed)."""
        if self._ordered is None:
            with _SORTS_LOCK:
                SORTS["count"] += 1
            self._ordered = tuple(sorted(self.by_id.values(), key=lambda sg: sg.id))
        return self._ordered

    def get(self, group_id: str) -> ObservedSG | None:
        return self.by_id.get(group_id)

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[ObservedSG]:
        return iter(self.ordered())

    def __contains__(self, sg: object) -> bool:
        group_id = getattr(sg, "id", None)
        return isinstance(group_id, str) and self.by_id.get(group_id) == sg

    @overload
    def __getitem__(self, i: int) -> ObservedSG: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[ObservedSG]: ...
    def __getitem__(self, i: int | slice) -> ObservedSG | Sequence[ObservedSG]:
        return self.ordered()[i]

    def __repr__(self) -> str:
        return f"Listing({list(self.by_id)!r})"


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
    groups: Listing,
    vpc_id: str | None,
    operation: str,
    params: Mapping[str, Any],
    result: Mapping[str, Any] | None,
) -> tuple[Listing, frozenset[str]] | None:
    """``groups`` (the listing of ``vpc_id``) after a successful ``operation``, and the IDs of the
    groups it changed (added, replaced or removed: what an index updates, sg_index.py); None when
    the write's effect on it is not known exactly (the caller drops the listing). O(log N) per
    group touched: ``groups`` itself is not changed."""
    from lbprov_aws.observe import ObservedSG

    if operation not in MIRRORED or vpc_id is None:
        return None
    by_id = groups.by_id
    if operation == "ec2:CreateSecurityGroup":
        group_id = (result or {}).get("GroupId")
        if not group_id:
            return None
        if params.get("VpcId") != vpc_id:
            return groups, frozenset()  # another VPC's group: not in this listing
        tags: dict[str, str] = {}
        for spec in params.get("TagSpecifications", []):
            tags.update({t["Key"]: t.get("Value", "") for t in spec.get("Tags", [])})
        # A new group has no ingress rule (AWS adds only the allow-all egress rule).
        new = ObservedSG(group_id, str(params.get("GroupName", "")), vpc_id, tags, [])
        return Listing(by_id.set(group_id, new)), frozenset({group_id})
    if operation == "ec2:DeleteSecurityGroup":
        group_id = str(params.get("GroupId"))
        if group_id not in by_id:
            return groups, frozenset()
        return Listing(by_id.delete(group_id)), frozenset({group_id})
    if operation in ("ec2:CreateTags", "ec2:DeleteTags"):
        ids = [i for i in dict.fromkeys(params.get("Resources", [])) if i in by_id]
        changes = {t["Key"]: t.get("Value") for t in params.get("Tags", [])}
        with by_id.mutate() as m:
            for group_id in ids:
                sg = m[group_id]
                if operation == "ec2:CreateTags":
                    tags = {**sg.tags, **{k: v or "" for k, v in changes.items()}}
                else:  # DeleteTags: a key with a value is deleted only when the value matches
                    tags = {
                        k: v for k, v in sg.tags.items() if k not in changes or changes[k] not in (None, v)
                    }
                m[group_id] = dataclasses.replace(sg, tags=tags)
            return Listing(m.finish()), frozenset(ids)
    group_id = params.get("GroupId")
    if not group_id or "GroupName" in params:
        return None  # (a group named, not identified: not mirrored)
    written = by_id.get(group_id)
    if written is None:
        return groups, frozenset()
    permissions = copy.deepcopy(written.permissions)
    for perm in params.get("IpPermissions", []):
        if operation == "ec2:AuthorizeSecurityGroupIngress":
            permissions.append(_normalised(perm))
        else:
            _revoke(permissions, perm)
    new = dataclasses.replace(written, permissions=[p for p in permissions if _has_entries(p)])
    return Listing(by_id.set(group_id, new)), frozenset({group_id})


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
