"""Lookups over one listing of security groups, computed once and shared by the plans of a round.

Why: every NLB of the security-group model has a frontend group of its own, so the VPC's listing
holds a group per Service. A plan that scanned the whole listing (by name, by ID, parsing every
group's rules, deep-copying every group's permissions to look for upstream's rules) cost CPU that
grew with the Services: at 1,000 Services an unchanged resync took ~43 ms of controller CPU per
Service. A :class:`GroupIndex` is built once per listing (``Reader.security_groups`` keeps it with
the listing in the read round), so a plan looks up what it needs, whatever the number of groups.

An index belongs to one list object: :func:`index_of` builds a new one when a plan replaced
``ClusterContext.security_groups`` (a classic ELB's own group added, adoption re-tagging a group).
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lbprov_aws.diff.node_rules import RuleRange, parse_rules
from lbprov_aws.names import KUBE_PROXY_RULE, nlb_rule_description

if TYPE_CHECKING:
    from lbprov_aws.observe import ClusterContext, ObservedSG

#: cloud-provider-aws's NLB node rule description (diff/adopt.py UPSTREAM_NLB_RULE) -> its load balancer.
_UPSTREAM_NLB_RULE = re.compile(r"^kubernetes\.io/rule/nlb/(?:client|health|mtu)=(.+)$")

#: Builds of an index (a test counts them: one per listing, not one per plan).
BUILDS = {"count": 0}
_BUILDS_LOCK = threading.Lock()


class GroupIndex:
    """Lookups over ``groups`` (a listing, in its order) for ``cluster``; read-only once built."""

    def __init__(
        self, groups: Sequence[ObservedSG], cluster: str, previous: GroupIndex | None = None
    ) -> None:
        with _BUILDS_LOCK:
            BUILDS["count"] += 1
        self.groups = groups
        self.cluster = cluster
        self.position: dict[str, int] = {}
        self.by_id: dict[str, ObservedSG] = {}
        self.by_name: dict[str, list[ObservedSG]] = defaultdict(list)
        self.by_name_tag: dict[str, list[ObservedSG]] = defaultdict(list)
        #: Group ID -> its lbprov node rules and the keys of its other CIDR rules (parse_rules), only
        #: for the groups that have lbprov node rules.
        self.rules: dict[str, tuple[set[RuleRange], set[tuple[str, int, int, str]]]] = {}
        #: Group ID -> the CIDRs of its kube-proxy health rule (only groups that have one).
        self.kube_proxy: dict[str, set[str]] = {}
        #: Load balancer name -> the groups holding cloud-provider-aws's NLB rules for it.
        self.upstream_rules: dict[str, set[str]] = defaultdict(set)
        #: Group ID -> the groups with a rule admitting it (UserIdGroupPairs).
        self.admitted_by: dict[str, set[str]] = defaultdict(set)
        #: id(group) -> (the group, what its rules say): reused by the next index of a listing
        #: that keeps the group object (sg_listing.py replaces only the groups a write changed).
        self._facts: dict[int, tuple[ObservedSG, _Facts]] = {}
        reuse = previous._facts if previous is not None and previous.cluster == cluster else {}
        for i, sg in enumerate(groups):
            self.position.setdefault(sg.id, i)
            self.by_id.setdefault(sg.id, sg)
            self.by_name[sg.name].append(sg)
            if "Name" in sg.tags:
                self.by_name_tag[sg.tags["Name"]].append(sg)
            known = reuse.get(id(sg))
            facts = known[1] if known is not None and known[0] is sg else _facts_of(sg, cluster)
            self._facts[id(sg)] = (sg, facts)
            if facts.ours:
                self.rules[sg.id] = (facts.ours, facts.foreign)
            if facts.kube_proxy:
                self.kube_proxy[sg.id] = facts.kube_proxy
            for lb in facts.upstream_lbs:
                self.upstream_rules[lb].add(sg.id)
            for source in facts.admits:
                self.admitted_by[source].add(sg.id)

    # -- lookups ---------------------------------------------------------------------------------

    def named(self, name: str, vpc_id: str | None = None) -> list[ObservedSG]:
        """The groups of that name (in that VPC, when given), in listing order."""
        found = self.by_name.get(name, [])
        return [sg for sg in found if vpc_id is None or sg.vpc_id == vpc_id]

    def matching(self, ref: str) -> list[ObservedSG]:
        """The groups whose ID, group name or ``Name`` tag is ``ref``, each once, in listing order."""
        found = [sg for sg in [self.by_id.get(ref)] if sg is not None]
        found += self.by_name.get(ref, []) + self.by_name_tag.get(ref, [])
        unique = {id(sg): sg for sg in found}
        return sorted(unique.values(), key=lambda sg: self.position[sg.id])

    def parsed(self, sg: ObservedSG) -> tuple[set[RuleRange], set[tuple[str, int, int, str]]]:
        """parse_rules of a group (kept for the listing's groups with lbprov rules, else parsed)."""
        if self.by_id.get(sg.id) is sg and sg.id in self.rules:
            ours, foreign = self.rules[sg.id]
            return set(ours), set(foreign)
        return parse_rules(sg.permissions, self.cluster)

    def kube_proxy_of(self, sg: ObservedSG) -> set[str]:
        """The CIDRs of a group's kube-proxy health rule."""
        if self.by_id.get(sg.id) is sg:
            return set(self.kube_proxy.get(sg.id, ()))
        from lbprov_aws.diff.nlb import kube_proxy_entries

        return kube_proxy_entries(sg.permissions, nlb_rule_description(KUBE_PROXY_RULE, self.cluster))

    def in_order(self, ids: Iterable[str]) -> list[ObservedSG]:
        """The listing's groups of these IDs, in listing order (unknown IDs are skipped)."""
        known = [i for i in set(ids) if i in self.position]
        return [self.by_id[i] for i in sorted(known, key=self.position.__getitem__)]


@dataclass(frozen=True)
class _Facts:
    """What one group's ingress rules say (see GroupIndex)."""

    ours: set[RuleRange]
    foreign: set[tuple[str, int, int, str]]
    kube_proxy: set[str]
    upstream_lbs: frozenset[str]
    admits: frozenset[str]


def _facts_of(sg: ObservedSG, cluster: str) -> _Facts:
    from lbprov_aws.diff.nlb import kube_proxy_entries  # (diff.nlb imports observe, which imports this)

    ours, foreign = parse_rules(sg.permissions, cluster)
    upstream: set[str] = set()
    admits: set[str] = set()
    for perm in sg.permissions:
        for key in ("IpRanges", "Ipv6Ranges"):
            for entry in perm.get(key, []):
                if m := _UPSTREAM_NLB_RULE.match(entry.get("Description") or ""):
                    upstream.add(m.group(1))
        admits |= {pair["GroupId"] for pair in perm.get("UserIdGroupPairs", []) if pair.get("GroupId")}
    kube_proxy = kube_proxy_entries(sg.permissions, nlb_rule_description(KUBE_PROXY_RULE, cluster))
    return _Facts(ours, foreign, kube_proxy, frozenset(upstream), frozenset(admits))


def index_of(ctx: ClusterContext, cluster: str) -> GroupIndex:
    """The index of ``ctx.security_groups`` (the round's shared one while the plan has not replaced
    the list; otherwise built for this plan and kept on ``ctx``)."""
    index = ctx.sg_index
    if index is None or index.groups is not ctx.security_groups or index.cluster != cluster:
        index = GroupIndex(ctx.security_groups, cluster)
        ctx.sg_index = index
    return index
