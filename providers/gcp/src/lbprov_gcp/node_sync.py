"""The node sync: the cluster's zone instance groups, for every Service at once.

What of a Service's load balancer follows the nodes on GCP:

* the membership of the cluster's instance groups (``k8s-ig--<clusterID>``, one per zone): shared by
  every Service, the same for all of them (:func:`lbprov_gcp.desired.place_nodes`), so a node change
  costs one ``addInstances`` / ``removeInstances`` per zone group in all;
* each backend service's list of groups: it changes only when the *set* of groups does (a node in
  a new zone, a zone's last node gone);
* each firewall's target tags: they change only when the nodes' network tags do (when the setting
  ``node_tags`` is unset and they are found from the instances, as upstream).

So the node sync plans the membership changes once (:func:`lbprov_gcp.diff.groups.group_changes`,
the same function a Service's plan uses) and covers every Service, except when the set of groups or
the nodes' tags change: then each Service's own plan has per-Service writes to make, and every
Service is left uncovered (the controller re-plans each, as before). The membership changes go
through the same :class:`~lbprov_gcp.apply.Applier` as a Service's plan, with its per-group locks and
its correction of plans that another write overtook, so a Service applied at the same moment never
adds an instance twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from lbprov.identity_memo import distinct
from lbprov.model import Intent
from lbprov.provider import NodeSyncPlan
from lbprov_gcp import names as N
from lbprov_gcp.apply import Applier
from lbprov_gcp.desired import host_tags, place_nodes
from lbprov_gcp.diff.groups import group_changes
from lbprov_gcp.diff.planner import Planner
from lbprov_gcp.observe import Reader
from lbprov_gcp.options import Instance, instances
from lbprov_gcp.settings import GCPSettings

GroupKey = tuple[str, str]


class NodeSync:
    """Plans and applies the instance groups' membership for all the intents given."""

    def __init__(
        self, settings: GCPSettings, planner: Planner, applier: Applier, reader: Callable[[], Reader]
    ) -> None:
        self.settings = settings
        self.planner = planner
        self.applier = applier
        self._reader = reader

    def plan(self, intents: Sequence[Intent]) -> NodeSyncPlan | None:
        """The membership changes for every Service (reads only); None when the intents disagree on
        the nodes (then each Service's own plan decides, as before)."""
        provider = self.planner.provider
        if not intents:
            return NodeSyncPlan(provider)
        s = self.settings
        node_sets = {instances(t, s.project, s.region) for t in distinct(i.targets for i in intents)}
        if len(node_sets) != 1:
            return None  # a per-Service node set: the shared groups cannot serve them all
        (nodes,) = node_sets
        keys = frozenset(i.ref.key for i in intents)
        r = self._reader()
        read_at = time.monotonic()  # before the reads: the applier compares it with its own writes
        groups, listed_at = r.groups_at(N.IG_PREFIX)
        read_at = min(read_at, listed_at or read_at)  # a round's listing may be older
        members = r.members_of(groups)  # the zones' groups at the same time: one round trip
        group = N.ig_name(self.planner.cluster, s.gce_cluster_id)
        usable = {
            key
            for key, found in groups.items()
            if key[1] == group or N.owned_as_shared(found.get("description"), self.planner.cluster)
        }
        placement = place_nodes(nodes, group, members, usable)
        if placement.conflicts:
            # each Service's plan names the node and the foreign group in its Warning event
            return NodeSyncPlan(
                provider, uncovered=dict.fromkeys(keys, "a node is in a foreign instance group")
            )
        changes = tuple(group_changes(self.planner, placement.groups, groups, members, usable, read_at))
        # the groups every backend service lists when converged: the usable groups that hold nodes
        held = {key for key in usable if members.get(key)}
        why: str | None = None
        if set(placement.groups) != held:
            why = "the set of zone instance groups changes, and each backend service lists them"
        elif not s.node_tags and self._tags_change(r, nodes, members, usable):
            why = "the nodes' network tags change, and each Service's firewalls target them"
        if why is not None:
            return NodeSyncPlan(provider, changes, uncovered=dict.fromkeys(keys, why))
        return NodeSyncPlan(provider, changes, covered=keys, updated=keys if changes else frozenset())

    def _tags_change(
        self,
        r: Reader,
        nodes: tuple[Instance, ...],
        members: dict[GroupKey, list[str]],
        usable: set[GroupKey],
    ) -> bool:
        """Whether the nodes' tags (found from the instances, as upstream) differ between the
        instances the groups hold now and the new nodes: one read per zone for both."""
        before = {Instance(key[0], member) for key in usable for member in members.get(key, ())}
        after = set(nodes)
        if before == after:
            return False
        zones: dict[str, set[str]] = {}
        for inst in before | after:
            zones.setdefault(inst.zone, set()).add(inst.name)
        found = {
            (zone, str(i.get("name"))): i
            for zone, names in sorted(zones.items())
            for i in r.instances(zone, names)
        }
        try:
            old = host_tags(
                [found[(i.zone, i.name)] for i in sorted(before, key=str) if (i.zone, i.name) in found]
            )
            new = host_tags(
                [found[(i.zone, i.name)] for i in sorted(after, key=str) if (i.zone, i.name) in found]
            )
        except ValueError:
            return True  # an instance without a tag: each Service's plan says so
        return old != new or any((i.zone, i.name) not in found for i in after)

    def apply(self, plan: NodeSyncPlan) -> None:
        """Exactly the plan's membership changes, through the Services' applier."""
        self.applier.apply_changes(plan.changes)
