"""NLB writes: target groups, the load balancer, listeners."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from lbprov.model import Action, Change
from lbprov_aws.apply.base import ApplierBase, _check_same_owner, _tags
from lbprov_aws.apply.nlb_security_groups import BACKEND_LOCK
from lbprov_aws.desired import LB_ATTRIBUTE_DEFAULTS, TG_ATTRIBUTE_DEFAULTS
from lbprov_aws.observe import NOT_FOUND_CODES, chunks

#: ELBv2's error for a CreateLoadBalancer whose name exists with other settings.
DUPLICATE_LB = "DuplicateLoadBalancerName"


class NLBApplier(ApplierBase):
    # -- target groups ---------------------------------------------------------------------------

    def _tg(self, c: Change, ctx: dict[str, Any]) -> None:
        call = self.clients.call
        if c.action is Action.DELETE:
            call("elbv2:DeleteTargetGroup", TargetGroupArn=c.cloud_id)
            ctx["tg_arns"].pop(c.name, None)
            return
        after = dict(c.after or {})
        hc = after["health_check"]
        if c.action is Action.CREATE:
            params: dict[str, Any] = {
                "Name": c.name,
                "Protocol": after["protocol"],
                "Port": after["port"],
                "VpcId": after["vpc"],
                "TargetType": "instance",
                "Tags": _tags(after["tags"]),
                **self._health_params(hc),
            }
            arn = call("elbv2:CreateTargetGroup", **params)["TargetGroups"][0]["TargetGroupArn"]
            ctx["tg_arns"][c.name] = arn
            # Only what differs from a new group's defaults needs a write.
            if any(TG_ATTRIBUTE_DEFAULTS.get(k) != v for k, v in after["attributes"].items()):
                self._tg_attributes(arn, after["attributes"])
            self._targets(arn, [], after["targets"], after["port"])
            return
        before = dict(c.before or {})
        arn = c.cloud_id
        if before["health_check"] != hc:
            call("elbv2:ModifyTargetGroup", TargetGroupArn=arn, **self._health_params(hc))
        if before["attributes"] != after["attributes"]:
            self._tg_attributes(arn, after["attributes"])
        if before["targets"] != after["targets"]:
            self._targets(arn, before["targets"], after["targets"], after["port"])
        if before["tags"] != after["tags"]:
            self._elbv2_tags(arn, before["tags"], after["tags"])

    @staticmethod
    def _health_params(hc: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "HealthCheckProtocol": hc["protocol"],
            "HealthCheckPort": hc["port"],
            "HealthCheckEnabled": True,
            "HealthCheckIntervalSeconds": hc["interval"],
            "HealthCheckTimeoutSeconds": hc["timeout"],
            "HealthyThresholdCount": hc["healthy"],
            "UnhealthyThresholdCount": hc["unhealthy"],
        }
        if hc.get("path"):
            params["HealthCheckPath"] = hc["path"]
        if hc.get("matcher"):
            params["Matcher"] = {"HttpCode": hc["matcher"]}
        return params

    def _tg_attributes(self, arn: str | None, attrs: Mapping[str, str]) -> None:
        self.clients.call(
            "elbv2:ModifyTargetGroupAttributes",
            TargetGroupArn=arn,
            Attributes=[{"Key": k, "Value": v} for k, v in sorted(attrs.items())],
        )

    def _targets(self, arn: str | None, before: list[str], after: list[str], port: int) -> None:
        add = sorted(set(after) - set(before))
        remove = sorted(set(before) - set(after))
        for batch in chunks(add, 100):
            self.clients.call("elbv2:RegisterTargets", TargetGroupArn=arn, Targets=[{"Id": i} for i in batch])
        for batch in chunks(remove, 100):
            self.clients.call(
                "elbv2:DeregisterTargets", TargetGroupArn=arn, Targets=[{"Id": i} for i in batch]
            )

    # -- NLB -------------------------------------------------------------------------------------

    def _nlb(self, c: Change, ctx: dict[str, Any]) -> None:
        call = self.clients.call
        if c.action in (Action.DELETE, Action.REPLACE):
            if c.data.get("unprotect"):  # the replacement's new settings turn deletion protection off
                self._lb_attributes(c.cloud_id, {"deletion_protection.enabled": "false"})
            call("elbv2:DeleteLoadBalancer", LoadBalancerArn=c.cloud_id)
            if c.action is Action.DELETE:
                return
        after = dict(c.after or {})
        # Describe before create, unless the round's fresh listing says the name is free (see
        # _existing_nlb for why, and the DuplicateLoadBalancerName case below for a racing create).
        if c.action is Action.CREATE and not self.name_free(c.name) and self._existing_nlb(c, ctx):
            return
        groups = self._lb_groups(after, ctx)
        if c.action in (Action.CREATE, Action.REPLACE):
            where: dict[str, Any] = {"Subnets": after["subnets"]}
            if after.get("subnet_mappings"):
                where = {"SubnetMappings": [_mapping(m) for m in after["subnet_mappings"]]}
            if groups is not None:  # created with groups, or never able to get any (SetSecurityGroups)
                where["SecurityGroups"] = groups
            with BACKEND_LOCK.read_lock():  # (the backend group's release re-checks who carries it under it)
                try:
                    lb = call(
                        "elbv2:CreateLoadBalancer",
                        Name=c.name,
                        **where,
                        Scheme=after["scheme"],
                        Type="network",
                        IpAddressType=after.get("ip_address_type", "ipv4"),
                        Tags=_tags(after["tags"]),
                    )["LoadBalancers"][0]
                except ClientError as exc:
                    # The name was taken since the listing (another process; with other settings,
                    # or AWS would have returned it): ours is reused, anyone else's refused.
                    code = exc.response.get("Error", {}).get("Code")
                    if c.action is Action.CREATE and code == DUPLICATE_LB and self._existing_nlb(c, ctx):
                        return
                    raise
            ctx["lb_arn"], ctx["dns"] = lb["LoadBalancerArn"], lb.get("DNSName")
            if after["attributes"] != {k: LB_ATTRIBUTE_DEFAULTS.get(k) for k in after["attributes"]}:
                self._lb_attributes(ctx["lb_arn"], after["attributes"])
            return
        before = dict(c.before or {})
        arn = c.cloud_id
        if before["subnets"] != after["subnets"]:
            call("elbv2:SetSubnets", LoadBalancerArn=arn, Subnets=after["subnets"])
        if groups is not None and before.get("security_groups") != groups:
            with BACKEND_LOCK.read_lock():
                call("elbv2:SetSecurityGroups", LoadBalancerArn=arn, SecurityGroups=groups)
        if before.get("ip_address_type", "ipv4") != after.get("ip_address_type", "ipv4"):
            call("elbv2:SetIpAddressType", LoadBalancerArn=arn, IpAddressType=after["ip_address_type"])
        if before["attributes"] != after["attributes"]:
            self._lb_attributes(arn, after["attributes"])
        if before["tags"] != after["tags"]:
            self._elbv2_tags(arn, before["tags"], after["tags"])

    @staticmethod
    def _lb_groups(after: Mapping[str, Any], ctx: dict[str, Any]) -> list[str] | None:
        """The NLB's security group IDs (a group created by this apply is named in the plan)."""
        if "security_groups" not in after:
            return None
        made: dict[str, str] = ctx.get("groups_made", {})
        return sorted(made.get(g, g) for g in after["security_groups"])

    def _existing_nlb(self, c: Change, ctx: dict[str, Any]) -> bool:
        """Describe before create: AWS would return the existing LB for an identical request, but
        moto (and a create with different settings) would not; never create a second one. Skipped
        when the read round's fresh listing shows the name free (Reader.name_free): AWS refuses a
        second load balancer of a name (DuplicateLoadBalancerName, which the strict layer
        reproduces and plain moto does not), and that error brings apply back here."""
        found = self.clients.call_optional("elbv2:DescribeLoadBalancers", NOT_FOUND_CODES, Names=[c.name])
        lbs = (found or {}).get("LoadBalancers", [])
        if not lbs:
            return False
        arn = lbs[0]["LoadBalancerArn"]
        tags = self.clients.call("elbv2:DescribeTags", ResourceArns=[arn])["TagDescriptions"]
        _check_same_owner("network load balancer", c, tags[0].get("Tags", []) if tags else [])
        ctx["lb_arn"], ctx["dns"] = arn, lbs[0].get("DNSName")
        return True

    def _lb_attributes(self, arn: str | None, attrs: Mapping[str, str]) -> None:
        self.clients.call(
            "elbv2:ModifyLoadBalancerAttributes",
            LoadBalancerArn=arn,
            Attributes=[{"Key": k, "Value": v} for k, v in sorted(attrs.items())],
        )

    def _listener(self, c: Change, ctx: dict[str, Any]) -> None:
        if c.action in (Action.DELETE, Action.REPLACE):
            self.clients.call("elbv2:DeleteListener", ListenerArn=c.cloud_id)
            if c.action is Action.DELETE:
                return
        after = dict(c.after or {})
        params: dict[str, Any] = {
            "Protocol": after["protocol"],
            "Port": after["port"],
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": ctx["tg_arns"][after["target_group"]]}],
        }
        if after.get("certificate"):
            params["Certificates"] = [{"CertificateArn": after["certificate"]}]
            params["SslPolicy"] = after["ssl_policy"]
            # AWS's default is no ALPN ("None"): sent on a create only when another is wanted,
            # always on a modify (so that removing the annotation resets it).
            if after.get("alpn", "None") != "None" or c.action is Action.UPDATE:
                params["AlpnPolicy"] = [after.get("alpn", "None")]
        if c.action in (Action.CREATE, Action.REPLACE):
            self.clients.call("elbv2:CreateListener", LoadBalancerArn=ctx["lb_arn"], **params)
        else:
            if (c.before or {}).get("protocol") == after["protocol"]:
                del params["Protocol"]  # unchanged (moto refuses a ModifyListener naming TLS)
            self.clients.call("elbv2:ModifyListener", ListenerArn=c.cloud_id, **params)


def _mapping(m: Mapping[str, str]) -> dict[str, str]:
    out = {"SubnetId": m["subnet"]}
    if m.get("allocation_id"):
        out["AllocationId"] = m["allocation_id"]
    if m.get("private_ipv4"):
        out["PrivateIPv4Address"] = m["private_ipv4"]
    return out
