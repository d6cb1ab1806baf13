"""The cluster's instance groups: shared with upstream (``k8s-ig--<clusterID>``), never owned,
never deleted; a node is never put in a second load-balanced group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lbprov.model import Action, Change, Intent
from lbprov_gcp import names as N
from lbprov_gcp.options import Instance

if TYPE_CHECKING:
    from lbprov_gcp.diff.planner import Planner

Json = dict[str, Any]


class ForeignInstanceGroup(RuntimeError):
    """A node sits in a load-balanced instance group lbprov cannot use; GCE allows only one."""

    def __init__(self, conflicts: Sequence[tuple[Instance, tuple[str, str]]], intent: Intent) -> None:
        node_of = {t.provider_id.rsplit("/", 1)[-1]: t.node_name for t in intent.targets}
        listed = "; ".join(
            f"node {node_of.get(inst.name, inst.name)} (instance {inst.zone}/{inst.name}) is in instance "
            f"group {zone}/{group}"
            for inst, (zone, group) in conflicts
        )
        super().__init__(
            f"{listed}, which is not this cluster's (k8s-ig--<cluster ID> or lbprov's own); GCE allows an "
            "instance in only one load-balanced instance group, so lbprov does not add it to another: "
            "remove the instance from that group, or label the node "
            "node.kubernetes.io/exclude-from-external-load-balancers=true"
        )
        self.conflicts = tuple(conflicts)


def group_changes(
    planner: Planner,
    wanted_groups: Mapping[tuple[str, str], tuple[str, ...]],
    groups: Mapping[tuple[str, str], Json],
    members: Mapping[tuple[str, str], list[str]],
    usable: set[tuple[str, str]],
    read_at: float | None = None,
) -> list[Change]:
    """Create the groups a node needs, and keep every usable group's members the eligible nodes.

    ``wanted_groups``: each group's wanted instances (:func:`lbprov_gcp.desired.place_nodes`); the
    same for every Service, so a Service's plan and the node sync (:mod:`lbprov_gcp.node_sync`) agree.

    ``read_at`` (monotonic) is when the membership was read: the applier uses it to tell a plan made
    before another worker's write to the same group (whose add it then drops) from a later one.
    """
    s = planner.settings
    out: list[Change] = []
    # -- instance groups: shared with upstream, never owned, never deleted ----------------------
    for (zone, name), wanted in wanted_groups.items():
        found = groups.get((zone, name))
        after: Json = {"zone": zone, "instances": list(wanted)}
        if found is None:
            out.append(
                Change(
                    Action.CREATE,
                    "instance-group",
                    f"{zone}/{name}",
                    after=after,
                    data={
                        "zone": zone,
                        "name": name,
                        "add": list(wanted),
                        "remove": [],
                        # a plan that found no group, made before this process created it: the
                        # applier adds what its own create left out, without reading it back
                        "read_at": read_at,
                        "body": {
                            "name": name,
                            # network is output only: GCE takes it from the first instance added
                            "description": N.cluster_description(planner.cluster, s.cluster_id),
                        },
                    },
                )
            )
            continue
        current = members[(zone, name)]
        add = sorted(set(wanted) - set(current))
        remove = sorted(set(current) - set(wanted))
        if add or remove:
            out.append(
                Change(
                    Action.UPDATE,
                    "instance-group",
                    f"{zone}/{name}",
                    before={"zone": zone, "instances": current},
                    after=after,
                    cloud_id=found.get("selfLink"),
                    data={"zone": zone, "name": name, "add": add, "remove": remove, "read_at": read_at},
                )
            )
    for (zone, name), found in sorted(groups.items()):
        if (zone, name) in wanted_groups or (zone, name) not in usable:
            continue
        if not members[(zone, name)]:
            continue
        # As upstream: a member that is no longer an eligible node leaves the group.
        out.append(
            Change(
                Action.UPDATE,
                "instance-group",
                f"{zone}/{name}",
                before={"zone": zone, "instances": members[(zone, name)]},
                after={"zone": zone, "instances": []},
                reason="no eligible node left in the group",
                cloud_id=found.get("selfLink"),
                data={
                    "zone": zone,
                    "name": name,
                    "add": [],
                    "remove": members[(zone, name)],
                    "read_at": read_at,
                },
            )
        )
    return out
