"""Writes of the classic ELB security groups: the Service's ``k8s-elb-<lb>`` group, the cluster's
shared ``k8s-elb-backend-<cluster>`` group, and the node rules admitting the shared one.

Why the shared group needs care: at the start of a create every worker's plan is made before any
apply has made the backend group, so every plan lists "create the group" and "admit it in each node
group". Sent by every apply, all but the first answered ``InvalidGroup.Duplicate`` and
``InvalidPermission.Duplicate``, and those syncs failed and were requeued (18 at 1,000 classic
Services). Now, as for the NLB backend group (apply/nlb_security_groups.py), the group's creation
and its node rules are single flights under ``BACKEND_LOCK``'s write lock (apply/flights.py): the
applies planned before the first one made them use what it made. A Duplicate that still comes back
(another process made it, or our retried call's first answer was lost) is a reason to re-read: the
group found is used if it carries this cluster's ownership tags, and is an ownership conflict if
not; a duplicate rule is the same wish, done.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from lbprov.model import Action, Change
from lbprov_aws.apply.nlb_security_groups import BACKEND_LOCK, NLBSecurityGroupApplier, _code

#: The descriptions of the classic groups (cloud-provider-aws's are "Security group for Kubernetes
#: ELB <name> (<service>)"; ours say who made them).
SHARED_DESCRIPTION = "lbprov: shared backend group of the classic ELBs of the cluster"


class ClassicSecurityGroupApplier(NLBSecurityGroupApplier):
    def _elb_sg(self, c: Change, ctx: dict[str, Any]) -> None:
        if c.action is Action.DELETE:
            with BACKEND_LOCK.write_lock():
                self.flights.forget(str(c.cloud_id))  # (a plan made before must not join it)
            self.clients.call("ec2:DeleteSecurityGroup", GroupId=c.cloud_id)
            return
        after = dict(c.after or {})
        shared = bool(after.get("shared"))
        after["description"] = (
            SHARED_DESCRIPTION if shared else f"lbprov: classic ELB {c.name[len('k8s-elb-') :]}"
        )
        key = c.data.get("ctx_key", "elb_sg_id")
        if not shared:
            ctx[key] = self._create_group(c, after)  # (a Duplicate of ours is re-read and used)
            return
        with BACKEND_LOCK.write_lock():
            flight = ("classic-backend-group", after["vpc"], c.name)
            made = self.flights.joined(flight, ctx.get("planned_at"))
            if made is None:  # (else a concurrent apply made it since this plan: apply/flights.py)
                made = self._create_group(c, after)
                self.flights.made(flight, made)
            ctx[key] = made

    def _elb_sg_rule(self, c: Change, ctx: dict[str, Any]) -> None:
        """A rule of the Service's own group (the group is the Service's alone): a create that finds
        it there, or a revoke that finds it gone, is a retried write whose first answer was lost."""
        try:
            self._ingress(c.action, ctx["elb_sg_id"], c.data["permission"])
        except ClientError as exc:
            if _code(exc) not in ("InvalidPermission.Duplicate", "InvalidPermission.NotFound"):
                raise

    def _node_pair(self, c: Change, ctx: dict[str, Any]) -> None:
        """A node group's rule admitting everything from the shared backend group: the same rule
        wished by several applies at once is written once; a duplicate is the same wish, done."""
        assert c.cloud_id is not None
        source = c.data.get("source") or ctx["backend_sg_id"]
        perm = {
            "IpProtocol": "-1",
            "UserIdGroupPairs": [{"GroupId": source, "Description": c.data["description"]}],
        }
        if c.action is not Action.CREATE:
            self._ingress(c.action, c.cloud_id, perm)
            return
        self._rule_once(("classic-backend-rule", c.cloud_id, source), c.cloud_id, perm, source, ctx)
