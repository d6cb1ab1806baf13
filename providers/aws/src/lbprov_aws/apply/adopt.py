"""Adoption writes (diff/adopt.py): ownership tags on a predecessor, upstream's node rules taken
over in place (their descriptions) or revoked once lbprov's own rules are in."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from lbprov.model import Change
from lbprov_aws.apply.base import ApplierBase, _tags
from lbprov_aws.operations import error_code


class AdoptApplier(ApplierBase):
    def _add_tags(self, c: Change, ctx: dict[str, Any]) -> None:
        tags = _tags(c.data["tags"])
        if not tags:
            return
        api = c.data["api"]
        if api == "elbv2":
            self.clients.call("elbv2:AddTags", ResourceArns=[c.cloud_id], Tags=tags)
        elif api == "elb":
            self.clients.call("elb:AddTags", LoadBalancerNames=[c.cloud_id], Tags=tags)
        else:
            self.clients.call("ec2:CreateTags", Resources=[c.cloud_id], Tags=tags)

    def _adopt_rule(self, c: Change, ctx: dict[str, Any]) -> None:
        """One call changes the description: the rule itself never goes away."""
        self.clients.call(
            "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
            GroupId=c.cloud_id,
            IpPermissions=[c.data["permission"]],
        )

    def _predecessor_rule(self, c: Change, ctx: dict[str, Any]) -> None:
        try:
            self.clients.call(
                "ec2:RevokeSecurityGroupIngress", GroupId=c.cloud_id, IpPermissions=[c.data["permission"]]
            )
        except ClientError as exc:
            if error_code(exc) != "InvalidPermission.NotFound":  # already gone: nothing to do
                raise
