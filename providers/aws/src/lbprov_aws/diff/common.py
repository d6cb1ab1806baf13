"""Shared pieces of the diff: the order of changes, the plan builder, ownership checks.

Order of a plan (so that traffic keeps flowing and a crash between two writes always leaves state
that a fresh plan can finish):

 1. load balancer security groups (classic ELB's, NLB frontend and backend), then their rules
                                                           (the load balancer needs them at creation)
 2. target groups: create, then update (health, attributes, targets, tags)
 3. the load balancer: create / replace / update           (replace = scheme change)
 4. listeners: create / update (forward to the new groups)
 5. node security group: authorise new ranges              (before revoking old ones)
 6. listeners: delete
 7. node security group: revoke old ranges                 (while the target groups still record
                                                            which NodePorts the Service owned)
 8. load balancer of the other kind / of a deleted Service: delete
 9. target groups: delete
10. load balancer security group rules: revoke; then the groups: delete (after the load
    balancer: AWS refuses to delete a group an interface of it still uses)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Action, Change, Ingress, OwnershipConflict, ServiceRef
from lbprov_aws.desired import ADDITIONAL_TAGS_TAG, LB_NAME_TAG
from lbprov_aws.diff.node_rules import RuleConfig
from lbprov_aws.names import HEALTH_NODE_PORT_TAG, NLB_SECURITY_GROUPS_TAG, SOURCE_RANGES_TAG
from lbprov_aws.observe import ObservedSG

(
    P_ELB_SG,
    P_ELB_SG_RULE,
    P_TG_CREATE,
    P_TG_UPDATE,
    P_LB,
    P_LISTENER,
    P_SG_ADD,
    P_LISTENER_DEL,
    P_SG_DEL,
    P_LB_DEL,
    P_TG_DEL,
    P_ELB_SG_RULE_DEL,
    P_ELB_SG_DEL,
) = range(13)


@dataclass
class PlanOutput:
    changes: list[Change]
    data: dict[str, Any]
    ingress: tuple[Ingress, ...]


@dataclass
class _Builder:
    items: list[tuple[int, int, Change]] = field(default_factory=list)

    def add(self, phase: int, change: Change) -> None:
        self.items.append((phase, len(self.items), change))

    def changes(self) -> list[Change]:
        return [c for _, _, c in sorted(self.items, key=lambda t: (t[0], t[1]))]


def _owner_text(tags: dict[str, str]) -> str:
    clusters = [k[len(naming.CLUSTER_TAG_PREFIX) :] for k in tags if k.startswith(naming.CLUSTER_TAG_PREFIX)]
    uid = tags.get(naming.SERVICE_UID_TAG)
    if not clusters:
        return "no cluster ownership tag"
    return f"cluster tag(s) {', '.join(clusters)}" + (
        f", Service UID {uid}" if uid else ", no Service UID tag"
    )


def check_owned(what: str, name: str, tags: dict[str, str], cluster: str, ref: ServiceRef) -> None:
    if not naming.is_owned_by_service(tags, cluster, ref.uid):
        raise OwnershipConflict(
            f"{what} {name!r} already exists but is not owned by Service {ref.key} (uid {ref.uid}) of "
            f"cluster {cluster!r} (it has {_owner_text(tags)}); lbprov never adopts a foreign resource: "
            "delete or rename it, or recreate the Service to get a new UID-derived name"
        )


def observed_managed_tags(observed: dict[str, str], desired: dict[str, str]) -> dict[str, str]:
    """The subset of observed tags lbprov manages: what it wants now and what it set before."""
    keys = set(desired)
    # Space-separated (older lbprov versions wrote commas, which AWS refuses in values).
    keys.update(k for k in re.split(r"[ ,]", observed.get(ADDITIONAL_TAGS_TAG, "")) if k)
    keys.update(
        (ADDITIONAL_TAGS_TAG, HEALTH_NODE_PORT_TAG, SOURCE_RANGES_TAG, NLB_SECURITY_GROUPS_TAG, LB_NAME_TAG)
    )
    return {k: observed[k] for k in sorted(keys) if k in observed}


def sg_delete(sg: ObservedSG, *, reason: str | None, data: dict[str, Any]) -> Change:
    """Deleting a load balancer's security group (classic ELB, NLB frontend or the cluster's NLB
    backend group): the callers matched ``sg`` by that name, so ``sg.name`` is the change's name;
    ``data`` says which group it is for the executor."""
    return Change(
        Action.DELETE,
        "security-group",
        sg.name,
        {"id": sg.id, "vpc": sg.vpc_id},
        None,
        cloud_id=sg.id,
        reason=reason,
        data=data,
    )


def rule_change(
    action: Action, name: str, body: dict[str, Any], *, data: dict[str, Any], cloud_id: str | None = None
) -> Change:
    """A security group rule is only ever created or deleted, never modified: its description is
    the ``after`` of a create and the ``before`` of a delete."""
    return Change(
        action,
        "security-group-rule",
        name,
        None if action is Action.CREATE else body,
        body if action is Action.CREATE else None,
        cloud_id=cloud_id,
        data=data,
    )


# -- pieces of the desired state ------------------------------------------------------------------


class PlannerBase:
    """Settings shared by the NLB and classic planning mixins."""

    def __init__(
        self,
        cluster: str,
        *,
        manage_sg: bool = True,
        node_sg_id: str | None = None,
        rules: RuleConfig | None = None,
        cluster_id: str | None = None,
        nlb_security_groups: bool = True,
    ) -> None:
        self.cluster = cluster
        #: New NLBs get a frontend and the cluster's backend security group (diff/nlb_security_groups.py).
        self.nlb_security_groups = nlb_security_groups
        #: The cluster identity (kube-system UID): tagged on everything created, and required
        #: (identity_matches) before deleting what cloud state alone says nobody uses.
        self.cluster_id = cluster_id
        self.manage_sg = manage_sg
        self.node_sg_id = node_sg_id
        self.rules = rules or RuleConfig()
