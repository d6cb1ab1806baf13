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

import copy
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import immutables

from lbprov_aws.diff.node_rules import RuleRange, parse_rules
from lbprov_aws.names import KUBE_PROXY_RULE, nlb_rule_description
from lbprov_aws.sg_listing import Listing

if TYPE_CHECKING:
    from lbprov_aws.observe import ClusterContext, ObservedSG

#: cloud-provider-aws's NLB node rule description (diff/adopt.py UPSTREAM_NLB_RULE) -> its load balancer.
_UPSTREAM_NLB_RULE = re.compile(r"^kubernetes\.io/rule/nlb/(?:client|health|mtu)=(.+)$")

#: Builds of an index (a test counts them: one per listing read, not one per plan or per write),
#: and updates of one after a write (:meth:`GroupIndex.updated`).
BUILDS = {"count": 0}
UPDATES = {"count": 0}
_BUILDS_LOCK = threading.Lock()


class GroupIndex:
    """Lookups over ``groups`` (a listing, in its order) for ``cluster``; read-only once built.

    Its maps are persistent (``immutables.Map``): :meth:`updated` makes the index of a listing
    that a write changed (sg_listing.mirror) in O(log N) per changed group, sharing the rest with
    this index, which stays the consistent index of the old listing for the plans holding it."""

    def __init__(self, groups: Sequence[ObservedSG], cluster: str) -> None:
        with _BUILDS_LOCK:
            BUILDS["count"] += 1
        self.groups = groups
        self.cluster = cluster
        #: Group ID -> its place in ``groups`` (None for a Listing: its order is the IDs').
        self._position: dict[str, int] | None = None
        #: Group ID -> (the group, what its rules say).
        self._facts: immutables.Map[str, tuple[ObservedSG, _Facts]] = immutables.Map()
        self.by_id: immutables.Map[str, ObservedSG] = immutables.Map()
        self.by_name: immutables.Map[str, tuple[ObservedSG, ...]] = immutables.Map()
        self.by_name_tag: immutables.Map[str, tuple[ObservedSG, ...]] = immutables.Map()
        #: Group ID -> its lbprov node rules and the keys of its other CIDR rules (parse_rules), only
        #: for the groups that have lbprov node rules.
        self.rules: immutables.Map[str, tuple[set[RuleRange], set[tuple[str, int, int, str]]]] = (
            immutables.Map()
        )
        #: Group ID -> the CIDRs of its kube-proxy health rule (only groups that have one).
        self.kube_proxy: immutables.Map[str, set[str]] = immutables.Map()
        #: Load balancer name -> the groups holding cloud-provider-aws's NLB rules for it.
        self.upstream_rules: immutables.Map[str, frozenset[str]] = immutables.Map()
        #: Group ID -> the groups with a rule admitting it (UserIdGroupPairs).
        self.admitted_by: immutables.Map[str, frozenset[str]] = immutables.Map()
        if isinstance(groups, Listing):
            self.by_id = groups.by_id
            ordered: Iterable[ObservedSG] = groups.ordered()
        else:
            self._position = {}
            for i, sg in enumerate(groups):
                self._position.setdefault(sg.id, i)
            ordered = groups
        self._edit([(None, sg) for sg in ordered], set_by_id=not isinstance(groups, Listing))

    def updated(self, groups: Listing, changed: Iterable[str]) -> GroupIndex:
        """The index of ``groups``: this index's listing after a write that changed the groups of
        these IDs (added, replaced or removed). Only an index of a :class:`Listing` is updated."""
        if not isinstance(self.groups, Listing):
            raise TypeError("only the index of a Listing is updated in place of a rebuild")
        with _BUILDS_LOCK:
            UPDATES["count"] += 1
        new = copy.copy(self)
        new.groups = groups
        new.by_id = groups.by_id
        new._edit([(self.by_id.get(i), groups.get(i)) for i in sorted(set(changed))], set_by_id=False)
        return new

    def _edit(self, edits: Iterable[tuple[ObservedSG | None, ObservedSG | None]], *, set_by_id: bool) -> None:
        """Replace each ``old`` group by ``new`` (None: absent) in the maps (new maps: the old ones
        may be shared with another index)."""
        by_id, by_name, by_tag = self.by_id.mutate(), self.by_name.mutate(), self.by_name_tag.mutate()
        facts_of, rules, kube_proxy = self._facts.mutate(), self.rules.mutate(), self.kube_proxy.mutate()
        upstream, admitted = self.upstream_rules.mutate(), self.admitted_by.mutate()
        for old, new in edits:
            if old is not None:
                gone = facts_of.get(old.id)
                _remove(by_name, old.name, old)
                if "Name" in old.tags:
                    _remove(by_tag, old.tags["Name"], old)
                for m in (facts_of, rules, kube_proxy):
                    m.pop(old.id, None)
                if set_by_id:
                    by_id.pop(old.id, None)
                for lb in gone[1].upstream_lbs if gone else ():
                    _discard(upstream, lb, old.id)
                for source in gone[1].admits if gone else ():
                    _discard(admitted, source, old.id)
            if new is None or (set_by_id and new.id in by_id):
                continue  # (a listing's first group of an ID is the one looked up)
            if set_by_id:
                by_id[new.id] = new
            _insert(by_name, new.name, new, self._order)
            if "Name" in new.tags:
                _insert(by_tag, new.tags["Name"], new, self._order)
            reused = self._facts.get(new.id)
            facts = reused[1] if reused is not None and reused[0] is new else _facts_of(new, self.cluster)
            facts_of[new.id] = (new, facts)
            if facts.ours:
                rules[new.id] = (facts.ours, facts.foreign)
            if facts.kube_proxy:
                kube_proxy[new.id] = facts.kube_proxy
            for lb in facts.upstream_lbs:
                upstream[lb] = upstream.get(lb, frozenset()) | {new.id}
            for source in facts.admits:
                admitted[source] = admitted.get(source, frozenset()) | {new.id}
        self.by_id, self.by_name, self.by_name_tag = by_id.finish(), by_name.finish(), by_tag.finish()
        self._facts, self.rules, self.kube_proxy = facts_of.finish(), rules.finish(), kube_proxy.finish()
        self.upstream_rules, self.admitted_by = upstream.finish(), admitted.finish()

    def _order(self, sg: ObservedSG) -> int | str:
        """A group's place in the listing's order."""
        return sg.id if self._position is None else self._position[sg.id]

    def position(self, group_id: str) -> int | str:
        """The sort key of a listed group's place in the listing (KeyError: not listed)."""
        if group_id not in self.by_id:
            raise KeyError(group_id)
        return group_id if self._position is None else self._position[group_id]

    # -- lookups ---------------------------------------------------------------------------------

    def named(self, name: str, vpc_id: str | None = None) -> list[ObservedSG]:
        """The groups of that name (in that VPC, when given), in listing order."""
        found = self.by_name.get(name, ())
        return [sg for sg in found if vpc_id is None or sg.vpc_id == vpc_id]

    def matching(self, ref: str) -> list[ObservedSG]:
        """The groups whose ID, group name or ``Name`` tag is ``ref``, each once, in listing order."""
        found = [sg for sg in [self.by_id.get(ref)] if sg is not None]
        found += [*self.by_name.get(ref, ()), *self.by_name_tag.get(ref, ())]
        unique = {id(sg): sg for sg in found}
        return sorted(unique.values(), key=self._order)

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
        known = [i for i in set(ids) if i in self.by_id]
        return [self.by_id[i] for i in sorted(known, key=self.position)]


@dataclass(frozen=True)
class _Facts:
    """What one group's ingress rules say (see GroupIndex)."""

    ours: set[RuleRange]
    foreign: set[tuple[str, int, int, str]]
    kube_proxy: set[str]
    upstream_lbs: frozenset[str]
    admits: frozenset[str]


def _remove(m: Any, key: str, sg: ObservedSG) -> None:
    """Drop ``sg`` (that object) from the tuple at ``key`` of map mutation ``m``."""
    kept = tuple(g for g in m.get(key, ()) if g is not sg)
    if kept:
        m[key] = kept
    else:
        m.pop(key, None)


def _insert(m: Any, key: str, sg: ObservedSG, order: Callable[[ObservedSG], int | str]) -> None:
    """Put ``sg`` in the tuple at ``key`` of map mutation ``m``, in listing order."""
    have = m.get(key, ())
    if not have or order(have[-1]) <= order(sg):  # type: ignore[operator]
        m[key] = (*have, sg)  # (a listing's groups come in its order: built in O(N))
    else:
        m[key] = tuple(sorted((*have, sg), key=order))


def _discard(m: Any, key: str, group_id: str) -> None:
    kept = m.get(key, frozenset()) - {group_id}
    if kept:
        m[key] = kept
    else:
        m.pop(key, None)


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
