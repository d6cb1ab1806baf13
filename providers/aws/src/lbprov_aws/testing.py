"""Test support for lbprov_aws (used by its tests, and by end-to-end tests of the controller).

Kubernetes objects in the API's JSON shape (``Svc``, ``node_objects``), the invariant checks
(``converge``: convergence + idempotence counted by CloudCalls; ``delete_all``), and ``AwsView``,
which reads the emulator with its own plain boto3 clients, independently of the provider, so that
assertions about what exists do not trust the code under test.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Intent, Plan, ServiceRef
from lbprov.provider import SandboxCloud
from lbprov.render import render_plan
from lbprov.testing import converged
from lbprov_aws.names import nlb_rule_description
from lbprov_aws.provider import AWSProvider
from lbprov_aws.sandbox import MotoSandbox

CLUSTER = "test"
ANN = "service.beta.kubernetes.io/aws-load-balancer-"


#: The cluster identity of the provider tests (a real cluster's is its kube-system Namespace UID;
#: the controller, plan and demo read that from the sandbox Kubernetes API instead).
CLUSTER_ID = "6f1c2a52-5b7e-4c1e-9d0a-2f3b4c5d6e7f"


#: The older node-rule model (NLBs created without security groups: NodePort rules from the source
#: ranges on the node groups), which the tests of that model ask for; new NLBs get security groups
#: by default (tests/test_nlb_security_groups.py).
NODE_RULE_MODEL: dict[str, Any] = {"nlb_security_groups": False}


def fast_settings(cloud: SandboxCloud, **extra: Any) -> dict[str, Any]:
    return {
        **cloud.settings,
        "cluster_id": CLUSTER_ID,
        "retry_initial_seconds": 0.001,
        "retry_max_seconds": 0.01,
        # every request the tests make is checked against botocore's model, as the SDK does by default
        "validate_requests": True,
        **extra,
    }


# -- Kubernetes objects ----------------------------------------------------------------------------


@dataclass
class Svc:
    """A LoadBalancer Service in the API's JSON shape, easy to mutate between reconciles."""

    name: str = "web"
    namespace: str = "default"
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    ports: list[tuple[int, str, int]] = field(default_factory=lambda: [(80, "TCP", 30080)])
    annotations: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)

    def to_k8s(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                "annotations": dict(self.annotations),
            },
            "spec": {
                "type": "LoadBalancer",
                "ports": [
                    {"name": f"p{port}", "port": port, "protocol": proto, "nodePort": node_port}
                    for port, proto, node_port in self.ports
                ],
                **self.spec,
            },
        }

    @property
    def lb_name(self) -> str:
        return naming.lb_name(self.uid)


def node_objects(
    cloud: SandboxCloud, labels: Mapping[str, Mapping[str, str]] | None = None
) -> list[dict[str, Any]]:
    labels = labels or {}
    return [
        {
            "metadata": {
                "name": n.name,
                "labels": {"topology.kubernetes.io/zone": n.zone, **labels.get(n.name, {})},
            },
            "spec": {"providerID": n.provider_id},
            "status": {"addresses": [{"type": "InternalIP", "address": n.internal_ip}]},
        }
        for n in cloud.nodes
    ]


def intent_of(provider: AWSProvider, svc: Svc, nodes: Sequence[Mapping[str, Any]]) -> Intent:
    return build_intent(svc.to_k8s(), nodes, IntentSettings(cluster=CLUSTER), provider)


def converge(provider: AWSProvider, intent: Intent) -> Plan:
    """Apply the plan and check convergence and idempotence (:func:`lbprov.testing.converged`);
    returns the applied plan."""
    return converged(provider, intent)[0]


def delete_all(provider: AWSProvider, svc: Svc) -> Plan:
    intent_ref = build_ref(svc)
    plan = provider.plan_delete(intent_ref)
    provider.apply(plan)
    again = provider.plan_delete(intent_ref)
    assert again.empty, "delete did not converge:\n" + render_plan(again)
    return plan


def build_ref(svc: Svc) -> ServiceRef:
    return ServiceRef(svc.namespace, svc.name, svc.uid)


def kinds(plan: Plan) -> list[tuple[str, str]]:
    return [(c.action.value, c.kind) for c in plan.changes]


# -- an independent view of the emulator -----------------------------------------------------------


class AwsView:
    """Reads moto with plain boto3 clients (not the provider's), for assertions."""

    def __init__(self, cloud: SandboxCloud) -> None:
        box: MotoSandbox = cloud.extra["sandbox"]
        self.cloud = cloud
        self.ec2 = box.client("ec2")
        self.elbv2 = box.client("elbv2")
        self.elb = box.client("elb")

    def _elbv2_tags(self, arns: list[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for i in range(0, len(arns), 20):
            for d in self.elbv2.describe_tags(ResourceArns=arns[i : i + 20])["TagDescriptions"]:
                out[d["ResourceArn"]] = {t["Key"]: t["Value"] for t in d["Tags"]}
        return out

    def nlbs(self, uid: str | None = None) -> list[dict[str, Any]]:
        lbs = self.elbv2.describe_load_balancers()["LoadBalancers"]
        tags = self._elbv2_tags([lb["LoadBalancerArn"] for lb in lbs])
        for lb in lbs:
            lb["Tags"] = tags.get(lb["LoadBalancerArn"], {})
        return [lb for lb in lbs if uid is None or lb["Tags"].get(naming.SERVICE_UID_TAG) == uid]

    def tgs(self, uid: str | None = None) -> list[dict[str, Any]]:
        groups = self.elbv2.describe_target_groups()["TargetGroups"]
        tags = self._elbv2_tags([tg["TargetGroupArn"] for tg in groups])
        for tg in groups:
            tg["Tags"] = tags.get(tg["TargetGroupArn"], {})
            tg["Attributes"] = {
                a["Key"]: a["Value"]
                for a in self.elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])[
                    "Attributes"
                ]
            }
            tg["Targets"] = sorted(
                d["Target"]["Id"]
                for d in self.elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])[
                    "TargetHealthDescriptions"
                ]
            )
        return sorted(
            (tg for tg in groups if uid is None or tg["Tags"].get(naming.SERVICE_UID_TAG) == uid),
            key=lambda tg: tg["Port"],
        )

    def listeners(self, lb_arn: str) -> list[dict[str, Any]]:
        return sorted(
            self.elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"], key=lambda li: li["Port"]
        )

    def lb_attributes(self, lb_arn: str) -> dict[str, str]:
        attrs = self.elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]
        return {a["Key"]: a["Value"] for a in attrs}

    def classics(self, uid: str | None = None) -> list[dict[str, Any]]:
        lbs = self.elb.describe_load_balancers()["LoadBalancerDescriptions"]
        out = []
        for lb in lbs:
            tags = self.elb.describe_tags(LoadBalancerNames=[lb["LoadBalancerName"]])["TagDescriptions"]
            lb["Tags"] = {t["Key"]: t["Value"] for t in tags[0]["Tags"]} if tags else {}
            if uid is None or lb["Tags"].get(naming.SERVICE_UID_TAG) == uid:
                out.append(lb)
        return out

    def security_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.ec2.describe_security_groups()["SecurityGroups"]
        return groups

    def node_sg(self) -> dict[str, Any]:
        sg_id = self.cloud.extra["node_security_group_id"]
        group: dict[str, Any] = self.ec2.describe_security_groups(GroupIds=[sg_id])["SecurityGroups"][0]
        return group

    def node_rules(self, kind: str | None = None) -> set[tuple[str, int, int, str]]:
        """(protocol, from, to, cidr) of the node SG entries with lbprov's NLB descriptions."""
        wanted = {nlb_rule_description(k, CLUSTER) for k in ("client", "health") if kind in (None, k)}
        if kind == "kube-proxy":
            wanted = {nlb_rule_description(kind, CLUSTER)}
        out = set()
        for perm in self.node_sg()["IpPermissions"]:
            for r in perm.get("IpRanges", []):
                if r.get("Description") in wanted:
                    out.add((perm["IpProtocol"], perm["FromPort"], perm["ToPort"], r["CidrIp"]))
        return out

    def node_pair_rules(self) -> list[tuple[str, str | None]]:
        return [
            (pair.get("GroupId"), pair.get("Description"))
            for perm in self.node_sg()["IpPermissions"]
            for pair in perm.get("UserIdGroupPairs", [])
        ]

    def assert_nothing_owned(self, svc: Svc, node_ports: Sequence[int] = ()) -> None:
        """No leaks: nothing tagged with the Service UID remains, nor a rule for its NodePorts."""
        assert self.nlbs(svc.uid) == []
        assert self.tgs(svc.uid) == []
        assert self.classics(svc.uid) == []
        assert [sg for sg in self.security_groups() if sg["GroupName"] == f"k8s-elb-{svc.lb_name}"] == []
        for _proto, lo, hi, _cidr in self.node_rules():
            assert not any(lo <= p <= hi for p in node_ports), (lo, hi, node_ports)
        assert not any(desc and svc.lb_name in desc for _, desc in self.node_pair_rules())


def raw_target_group(
    view: AwsView, cloud: SandboxCloud, name: str = "k8s-ok-tg", protocol: str = "TCP", **kw: Any
) -> str:
    """A target group made directly through boto3 (past the provider), for the strict layer's tests;
    its ARN."""
    arn: str = view.elbv2.create_target_group(
        Name=name, Protocol=protocol, Port=30080, VpcId=cloud.extra["vpc_id"], TargetType="instance", **kw
    )["TargetGroups"][0]["TargetGroupArn"]
    return arn


def raw_nlb(view: AwsView, cloud: SandboxCloud, name: str = "lb-ok", **kw: Any) -> str:
    """An NLB made directly through boto3 in the public subnets (unless ``SubnetMappings`` are given);
    its ARN."""
    if "SubnetMappings" not in kw:
        kw["Subnets"] = cloud.extra["public_subnets"]
    arn: str = view.elbv2.create_load_balancer(Name=name, Type="network", **kw)["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    return arn
