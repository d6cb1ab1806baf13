"""Writes of the NLB security groups: frontend and backend groups, their rules, the release.

The cluster's backend group is shared by the applies of many Services, possibly at once: one
creates it while another, whose plan saw nobody using it, releases it. ``BACKEND_LOCK`` is a
readers-writer lock within this process. Every NLB create or SetSecurityGroups that attaches the
group (apply/nlb.py) holds it *shared*: attaches exclude a release, not each other. The group's
creation, its node rules and its release hold it *exclusively*; the release re-reads under it which
load balancers carry the group and gives up if any does. A release that loses the race against
another process still cannot break an NLB: AWS refuses to delete a group a load balancer uses
(DependencyViolation). Under the exclusive lock, the group's creation and its node rules are single
flights (apply/flights.py): the applies planned before the first one made them use what it made
instead of failing on a duplicate.

Why shared for the attaches: with one plain lock, every new NLB's CreateLoadBalancer of the whole
process went out one at a time (a round trip each, plus the cloud's time), and that queue, not the
workers, bounded a create of many Services (issue 14). A waiting release goes first: the lock
prefers writers, so attaches that keep coming cannot starve it.
"""

from __future__ import annotations

from typing import Any

import fasteners  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from lbprov.model import Action, Change, OwnershipConflict
from lbprov_aws import names
from lbprov_aws.apply.base import ApplierBase, _tags
from lbprov_aws.observe import tag_dict

#: See the module docstring: ``read_lock()`` to attach the backend group, ``write_lock()`` to create,
#: admit or release it (re-entrant; a writer may also take the read lock).
BACKEND_LOCK = fasteners.ReaderWriterLock()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class NLBSecurityGroupApplier(ApplierBase):
    def _nlb_sg(self, c: Change, ctx: dict[str, Any]) -> None:
        """Create or delete a frontend or backend group."""
        role = c.data.get("role")
        if c.action is Action.DELETE:
            try:  # (DependencyViolation while the NLB's interfaces go is retried by CloudCalls)
                self.clients.call("ec2:DeleteSecurityGroup", GroupId=c.cloud_id)
            except ClientError as exc:
                if _code(exc) != "InvalidGroup.NotFound":
                    raise
            return
        after = dict(c.after or {})
        key = "frontend_sg_id" if role == "frontend" else "nlb_backend_sg_id"
        if role == "backend":
            with BACKEND_LOCK.write_lock():  # (its release re-checks under the lock)
                flight = ("backend-group", after["vpc"], c.name)
                made = self.flights.joined(flight, ctx.get("planned_at"))
                if made is None:  # (else a concurrent apply made it since this plan: apply/flights.py)
                    made = self._create_group(c, after)
                    self.flights.made(flight, made)
                ctx[key] = made
        else:
            ctx[key] = self._create_group(c, after)
        ctx.setdefault("groups_made", {})[c.name] = ctx[key]

    def _create_group(self, c: Change, after: dict[str, Any]) -> str:
        try:
            resp = self.clients.call(
                "ec2:CreateSecurityGroup",
                GroupName=c.name,
                Description=after["description"],
                VpcId=after["vpc"],
                TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(after["tags"])}],
            )
        except ClientError as exc:  # made since the plan (another Service's apply): use it if ours
            if _code(exc) != "InvalidGroup.Duplicate":
                raise
            found = self._existing_group(c.name, after)
            if found is None:
                raise
            return found
        return str(resp["GroupId"])

    def _existing_group(self, name: str, after: dict[str, Any]) -> str | None:
        """The group of that name in the VPC, if it exists and carries the wanted owner tags (the
        cluster's, and the Service UID for a frontend group); a foreign namesake is a conflict."""
        groups = self.clients.call(
            "ec2:DescribeSecurityGroups",
            Filters=[
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [after["vpc"]]},
            ],
        ).get("SecurityGroups", [])
        if not groups:
            return None
        tags = tag_dict(groups[0].get("Tags"))
        wanted = dict(after["tags"])
        owners = [k for k in wanted if k.startswith("kubernetes.io/cluster/") or k == "lbprov.io/service-uid"]
        lbc = tags.get(names.LBC_RESOURCE_TAG) == names.LBC_BACKEND_SG and tags.get(
            names.LBC_CLUSTER_TAG
        ) == wanted.get(names.LBC_CLUSTER_TAG)
        if not (all(tags.get(k) == wanted[k] for k in owners) or lbc):
            raise OwnershipConflict(
                f"security group {name!r} appeared after the plan was made and is not ours; lbprov "
                "never adopts a foreign resource"
            )
        return str(groups[0]["GroupId"])

    def _nlb_sg_rule(self, c: Change, ctx: dict[str, Any]) -> None:
        """A rule of the Service's frontend group (the group is the Service's alone). A retried
        write whose first answer was lost finds its work done: that is success."""
        try:
            self._ingress(c.action, ctx["frontend_sg_id"], c.data["permission"])
        except ClientError as exc:
            if _code(exc) not in ("InvalidPermission.Duplicate", "InvalidPermission.NotFound"):
                raise

    def _backend_rule(self, c: Change, ctx: dict[str, Any]) -> None:
        """A node group's rule admitting the backend group: another Service's apply may have added
        it since the plan (the same rule is the same wish)."""
        assert c.cloud_id is not None
        perm = dict(c.data["permission"])
        perm["UserIdGroupPairs"] = [
            {**pair, "GroupId": pair.get("GroupId") or ctx["nlb_backend_sg_id"]}
            for pair in perm["UserIdGroupPairs"]
        ]
        source = perm["UserIdGroupPairs"][0]["GroupId"]
        flight = ("backend-rule", c.cloud_id, perm["IpProtocol"], perm["FromPort"], perm["ToPort"], source)
        self._rule_once(flight, c.cloud_id, perm, source, ctx)

    def _rule_once(
        self, flight: tuple[Any, ...], group_id: str, perm: dict[str, Any], source: str, ctx: dict[str, Any]
    ) -> None:
        """Authorize ``perm`` on ``group_id`` once for the applies planned at once (apply/flights.py),
        under the backend lock's write side; a duplicate is the same wish, already done."""
        with BACKEND_LOCK.write_lock():
            if self.flights.joined(flight, ctx.get("planned_at")) is not None:
                return
            try:
                self._ingress(Action.CREATE, group_id, perm)
            except ClientError as exc:
                if _code(exc) != "InvalidPermission.Duplicate":
                    raise
            self.flights.made(flight, source)

    def _backend_release(self, c: Change, ctx: dict[str, Any]) -> None:
        """At the first change of a group's release: under the lock, re-read which load balancers
        carry the group, and if none, revoke every node rule admitting it and delete it. The
        release's other changes were done (or given up) with it."""
        group = c.data["group"]
        done: set[str] = ctx.setdefault("backend_released", set())
        if group in done:
            return
        done.add(group)
        release = ctx["backend_release"][group]
        with BACKEND_LOCK.write_lock():
            if self.load_balancers_using is not None and self.load_balancers_using({group}):
                return  # an NLB attached it since the plan: it stays
            self.flights.forget(group)  # (a plan made before the release must not join it)
            for group_id, perm in release["rules"]:
                try:
                    self.clients.call(
                        "ec2:RevokeSecurityGroupIngress", GroupId=group_id, IpPermissions=[perm]
                    )
                except ClientError as exc:
                    if _code(exc) not in ("InvalidPermission.NotFound", "InvalidGroup.NotFound"):
                        raise
            try:
                self.clients.call("ec2:DeleteSecurityGroup", GroupId=group)
            except ClientError as exc:
                if _code(exc) != "InvalidGroup.NotFound":
                    raise
