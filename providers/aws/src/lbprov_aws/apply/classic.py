"""Classic ELB writes: the load balancer, its listeners, health check, instances, tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lbprov.model import Action, Change
from lbprov_aws.apply.base import ApplierBase, _check_same_owner, _tag_diff, _tags
from lbprov_aws.desired import CLASSIC_SSL_POLICY_PREFIX
from lbprov_aws.observe import NOT_FOUND_CODES

#: A new classic ELB's attributes in desired.classic_attributes' view (no write needed for these).
NEW_ELB_ATTRIBUTES = {"access_log": {"enabled": False}, "draining": {"enabled": False}, "idle_timeout": 60}


class ClassicApplier(ApplierBase):
    def _existing_classic(self, c: Change, ctx: dict[str, Any]) -> bool:
        found = self.clients.call_optional(
            "elb:DescribeLoadBalancers", NOT_FOUND_CODES, LoadBalancerNames=[c.name]
        )
        lbs = (found or {}).get("LoadBalancerDescriptions", [])
        if not lbs:
            return False
        tags = self.clients.call("elb:DescribeTags", LoadBalancerNames=[c.name])["TagDescriptions"]
        _check_same_owner("classic load balancer", c, tags[0].get("Tags", []) if tags else [])
        ctx["dns"] = lbs[0].get("DNSName")
        return True

    # -- classic ELB -----------------------------------------------------------------------------

    def _classic(self, c: Change, ctx: dict[str, Any]) -> None:
        call = self.clients.call
        name = c.name
        if c.action in (Action.DELETE, Action.REPLACE):
            call("elb:DeleteLoadBalancer", LoadBalancerName=name)
            if c.action is Action.DELETE:
                return
        after = dict(c.after or {})
        placeholders = {
            c.data.get("sg_name"): ctx["elb_sg_id"],
            c.data.get("backend_name"): ctx["backend_sg_id"],
        }
        sgs = sorted(placeholders.get(g, g) for g in after["security_groups"])
        if c.action is Action.CREATE and self._existing_classic(c, ctx):
            return
        if c.action in (Action.CREATE, Action.REPLACE):
            resp = call(
                "elb:CreateLoadBalancer",
                LoadBalancerName=name,
                Listeners=[self._classic_listener_params(li) for li in after["listeners"]],
                Subnets=after["subnets"],
                SecurityGroups=sgs,
                Scheme=after["scheme"],
                Tags=_tags(after["tags"]),
            )
            ctx["dns"] = resp.get("DNSName")
            self._classic_health(name, after["health_check"])
            if after["cross_zone"]:
                self._classic_cross_zone(name, True)
            if after.get("attributes", NEW_ELB_ATTRIBUTES) != NEW_ELB_ATTRIBUTES:
                self._classic_attributes(name, after["attributes"])
            for li in after["listeners"]:
                if li.get("ssl_policy"):
                    self._classic_ssl_policy(name, li["port"], li["ssl_policy"])
            self._classic_instances(name, [], after["instances"])
            return
        before = dict(c.before or {})
        if before["subnets"] != after["subnets"]:
            add = sorted(set(after["subnets"]) - set(before["subnets"]))
            remove = sorted(set(before["subnets"]) - set(after["subnets"]))
            if add:
                call("elb:AttachLoadBalancerToSubnets", LoadBalancerName=name, Subnets=add)
            if remove:
                call("elb:DetachLoadBalancerFromSubnets", LoadBalancerName=name, Subnets=remove)
        if before["security_groups"] != sgs:
            call("elb:ApplySecurityGroupsToLoadBalancer", LoadBalancerName=name, SecurityGroups=sgs)
        if before["health_check"] != after["health_check"]:
            self._classic_health(name, after["health_check"])
        if before["cross_zone"] != after["cross_zone"]:
            self._classic_cross_zone(name, after["cross_zone"])
        if "attributes" in after and before.get("attributes") != after["attributes"]:
            self._classic_attributes(name, after["attributes"])
        if before["instances"] != after["instances"]:
            self._classic_instances(name, before["instances"], after["instances"])
        if before["tags"] != after["tags"]:
            tags_add, tags_remove = _tag_diff(before["tags"], after["tags"])
            if tags_add:
                call("elb:AddTags", LoadBalancerNames=[name], Tags=_tags(tags_add))
            if tags_remove:
                call("elb:RemoveTags", LoadBalancerNames=[name], Tags=[{"Key": k} for k in tags_remove])

    @staticmethod
    def _classic_listener_params(li: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "Protocol": li["protocol"],
            "LoadBalancerPort": li["port"],
            "InstanceProtocol": li["instance_protocol"],
            "InstancePort": li["instance_port"],
        }
        if li.get("certificate"):
            params["SSLCertificateId"] = li["certificate"]
        return params

    def _classic_health(self, name: str, hc: Mapping[str, Any]) -> None:
        self.clients.call(
            "elb:ConfigureHealthCheck",
            LoadBalancerName=name,
            HealthCheck={
                "Target": hc["target"],
                "Interval": hc["interval"],
                "Timeout": hc["timeout"],
                "HealthyThreshold": hc["healthy"],
                "UnhealthyThreshold": hc["unhealthy"],
            },
        )

    def _classic_cross_zone(self, name: str, enabled: bool) -> None:
        self.clients.call(
            "elb:ModifyLoadBalancerAttributes",
            LoadBalancerName=name,
            LoadBalancerAttributes={"CrossZoneLoadBalancing": {"Enabled": enabled}},
        )

    def _classic_attributes(self, name: str, attrs: Mapping[str, Any]) -> None:
        """Access log, connection draining, idle timeout (see desired.classic_attributes)."""
        log, draining = attrs["access_log"], attrs["draining"]
        access: dict[str, Any] = {"Enabled": log["enabled"]}
        if log["enabled"]:
            access.update(EmitInterval=log["interval"], S3BucketName=log["bucket"])
            if log["prefix"]:
                access["S3BucketPrefix"] = log["prefix"]
        drain: dict[str, Any] = {"Enabled": draining["enabled"]}
        if draining["enabled"]:
            drain["Timeout"] = draining["timeout"]
        self.clients.call(
            "elb:ModifyLoadBalancerAttributes",
            LoadBalancerName=name,
            LoadBalancerAttributes={
                "AccessLog": access,
                "ConnectionDraining": drain,
                "ConnectionSettings": {"IdleTimeout": attrs["idle_timeout"]},
            },
        )

    def _classic_ssl_policy(self, name: str, port: int, policy: str | None) -> None:
        """cloud-provider-aws's way (``ensureSSLNegotiationPolicy`` / ``setSSLNegotiationPolicy``): a
        policy ``k8s-SSLNegotiationPolicy-<name>`` of type SSLNegotiationPolicyType referring to the
        predefined one, set on the listener (no policy: the listener's policies are cleared, which
        gives AWS's default)."""
        names: list[str] = []
        if policy:
            own = CLASSIC_SSL_POLICY_PREFIX + policy
            self.clients.call_optional(
                "elb:CreateLoadBalancerPolicy",
                frozenset({"DuplicatePolicyName"}),
                LoadBalancerName=name,
                PolicyName=own,
                PolicyTypeName="SSLNegotiationPolicyType",
                PolicyAttributes=[{"AttributeName": "Reference-Security-Policy", "AttributeValue": policy}],
            )
            names = [own]
        self.clients.call(
            "elb:SetLoadBalancerPoliciesOfListener",
            LoadBalancerName=name,
            LoadBalancerPort=port,
            PolicyNames=names,
        )

    def _classic_instances(self, name: str, before: list[str], after: list[str]) -> None:
        add = sorted(set(after) - set(before))
        remove = sorted(set(before) - set(after))
        if add:
            self.clients.call(
                "elb:RegisterInstancesWithLoadBalancer",
                LoadBalancerName=name,
                Instances=[{"InstanceId": i} for i in add],
            )
        if remove:
            self.clients.call(
                "elb:DeregisterInstancesFromLoadBalancer",
                LoadBalancerName=name,
                Instances=[{"InstanceId": i} for i in remove],
            )

    def _classic_listener(self, c: Change, ctx: dict[str, Any]) -> None:
        name = c.cloud_id
        if c.action in (Action.DELETE, Action.REPLACE):
            assert c.before is not None
            self.clients.call(
                "elb:DeleteLoadBalancerListeners", LoadBalancerName=name, LoadBalancerPorts=[c.before["port"]]
            )
        if c.action in (Action.CREATE, Action.REPLACE):
            assert c.after is not None
            self.clients.call(
                "elb:CreateLoadBalancerListeners",
                LoadBalancerName=name,
                Listeners=[self._classic_listener_params(c.after)],
            )
            if c.after.get("ssl_policy"):
                self._classic_ssl_policy(str(name), c.after["port"], c.after["ssl_policy"])
        if c.action is Action.UPDATE:  # the SSL policy alone
            assert c.after is not None
            self._classic_ssl_policy(str(name), c.after["port"], c.after.get("ssl_policy"))
