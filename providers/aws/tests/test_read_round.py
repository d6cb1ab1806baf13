"""Read rounds (one batched listing shared by many plans), list_owned, and the operation registry."""

from __future__ import annotations

import math

from lbprov_aws import AWSProvider, AWSSettings
from lbprov_aws.operations import OPERATIONS, iam_permissions, is_write
from lbprov_aws.testing import (
    ANN,
    NODE_RULE_MODEL,
    AwsView,
    Svc,
    converge,
    delete_all,
    intent_of,
    node_objects,
)

from lbprov import naming
from lbprov.provider import SandboxCloud, load_provider

#: Read rounds with the node-rule model, whose shared rules the round must re-read after each apply
#: (the group model: test_nlb_security_groups.py).
#: (conftest.py's ``provider`` fixture builds the module's provider with these settings.)
PROVIDER_SETTINGS = NODE_RULE_MODEL


def _services(n: int) -> list[Svc]:
    return [Svc(name=f"svc{i}", ports=[(80, "TCP", 30200 + i)]) for i in range(n)]


def test_read_round_batches_shared_reads_and_plans_stay_correct(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    nodes = node_objects(cloud)
    services = _services(21)
    intents = [intent_of(provider, s, nodes) for s in services]
    for intent in intents:
        provider.apply(provider.plan(intent))

    provider.calls.reset()
    assert all(provider.plan(i).empty for i in intents)
    direct = provider.calls.reset()

    with provider.read_round():
        assert all(provider.plan(i).empty for i in intents)
    rounded = provider.calls.reset()
    by_op = {op: n for (op, _), n in rounded.sent.items()}
    # Account-wide listings happen once per round; tags were read by the plans before, and are
    # remembered by ARN (remembered.py): none is read again.
    assert by_op["elbv2:DescribeLoadBalancers"] == 1
    assert by_op["elbv2:DescribeTargetGroups"] == 1
    assert by_op["elb:DescribeLoadBalancers"] == 1
    assert by_op.get("elbv2:DescribeTags", 0) == 0
    for op in (
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeInstances",
    ):
        assert by_op[op] == 1, op
    # Details (listeners, attributes, targets) come from the last reads, kept current by our writes:
    # outside the periodic resync's deep checks (test_scale_reads.py) a round reads none of them.
    for op in (
        "elbv2:DescribeListeners",
        "elbv2:DescribeTargetHealth",
        "elbv2:DescribeLoadBalancerAttributes",
    ):
        assert by_op.get(op, 0) == 0, op
    assert rounded.reads < direct.reads / 2, (rounded.reads, direct.reads)
    assert rounded.writes == direct.writes == 0

    # A fresh provider (a restart) remembers nothing: its first round reads tags 20 ARNs per call,
    # and every Service's details once.
    restarted = AWSProvider.from_settings(provider.settings)
    with restarted.read_round():
        assert all(restarted.plan(i).empty for i in intents)
    first = {op: n for (op, _), n in restarted.calls.reset().sent.items()}
    assert first["elbv2:DescribeTags"] == 2 * math.ceil(21 / 20)
    assert first["elbv2:DescribeListeners"] == 21


def test_plans_in_a_round_see_writes_made_in_the_same_round(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    services = _services(4)
    with provider.read_round():
        for svc in services:
            provider.apply(provider.plan(intent_of(provider, svc, nodes)))
        # Same round: the shared node rules and each Service's resources were re-read after apply.
        for svc in services:
            assert provider.plan(intent_of(provider, svc, nodes)).empty
        services[1].ports = [(80, "TCP", 30299)]
        provider.apply(provider.plan(intent_of(provider, services[1], nodes)))
        for svc in services:
            assert provider.plan(intent_of(provider, svc, nodes)).empty
    assert view.node_rules() == {
        ("tcp", 30200, 30200, "0.0.0.0/0"),
        ("tcp", 30202, 30203, "0.0.0.0/0"),
        ("tcp", 30299, 30299, "0.0.0.0/0"),
    }


def test_list_owned_finds_every_kind_and_skips_foreign(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    nlb, classic = (
        Svc(name="a"),
        Svc(name="b", annotations={ANN + "type": "classic"}, ports=[(80, "TCP", 30081)]),
    )
    for svc in (nlb, classic):
        converge(provider, intent_of(provider, svc, nodes))
    view.elbv2.create_load_balancer(
        Name="someone-elses", Subnets=cloud.extra["public_subnets"], Type="network"
    )
    owned = {o.ref.uid: o for o in provider.list_owned()}
    assert set(owned) == {nlb.uid, classic.uid}
    assert owned[nlb.uid].kind == "nlb" and owned[nlb.uid].ref.key == "default/a"
    assert owned[classic.uid].kind == "classic" and owned[classic.uid].name == classic.lb_name
    assert any(kind == "target-group" for kind, _ in owned[nlb.uid].resources)
    for svc in (nlb, classic):
        delete_all(provider, svc)
    assert provider.list_owned() == []


def test_every_operation_sent_is_registered_with_its_iam_permission(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    nodes = node_objects(cloud)
    svc = Svc(
        annotations={
            ANN + "additional-resource-tags": "a=b",
            ANN + "cross-zone-load-balancing-enabled": "true",
        }
    )
    sent: set[str] = set()
    provider.calls.listeners.append(lambda e: sent.add(e.operation) if e.result == "sent" else None)
    converge(provider, intent_of(provider, svc, nodes))
    svc.annotations.clear()
    svc.ports = [(81, "TCP", 30081)]
    converge(provider, intent_of(provider, svc, nodes))
    svc.annotations[ANN + "type"] = "classic"
    converge(provider, intent_of(provider, svc, nodes))
    svc.annotations[ANN + "additional-resource-tags"] = "a=b"
    converge(provider, intent_of(provider, svc, nodes))
    delete_all(provider, svc)
    assert sent <= set(OPERATIONS), sent - set(OPERATIONS)
    assert len(sent) >= 30
    for op in sent:
        assert is_write(op) == (not op.split(":")[1].startswith("Describe"))
    assert "elasticloadbalancing:CreateTargetGroup" in iam_permissions()
    assert is_write("elbv2:SomethingNew") and not is_write("elbv2:DescribeSomethingNew")


def test_entry_point_and_settings_never_show_credentials(cloud: SandboxCloud) -> None:
    assert load_provider("aws") is AWSProvider
    settings = AWSSettings(**cloud.settings)
    assert "testing" not in repr(settings) and "testing" not in str(settings.model_dump())
    provider = AWSProvider.from_settings(cloud.settings)
    assert "testing" not in repr(provider)
    assert provider.cluster == cloud.extra["cluster"]
    assert all(f.description for f in AWSSettings.model_fields.values())


def test_sandbox_nodes_and_recorder(cloud: SandboxCloud, view: AwsView) -> None:
    zones = [n.zone for n in cloud.nodes]
    assert zones == ["us-east-1a", "us-east-1b", "us-east-1a"]
    for n in cloud.nodes:
        assert n.provider_id.startswith(f"aws:///{n.zone}/i-") and n.internal_ip.startswith("10.0.1")
    new = cloud.add_node("node-z")
    assert new.zone == "us-east-1b"
    assert cloud.mutating_requests() == ["ec2:RunInstances"]
    [res] = view.ec2.describe_instances(InstanceIds=[new.provider_id.rsplit("/", 1)[1]])["Reservations"]
    inst = res["Instances"][0]
    assert [g["GroupId"] for g in inst["SecurityGroups"]] == [cloud.extra["node_security_group_id"]]
    subnets = view.ec2.describe_subnets(SubnetIds=cloud.extra["public_subnets"])["Subnets"]
    for s in subnets:
        tags = {t["Key"]: t["Value"] for t in s["Tags"]}
        assert tags[naming.cluster_tag_key("test")] == "owned" and tags["kubernetes.io/role/elb"] == "1"


def test_public_sandbox_context_starts_and_stops_its_own_server() -> None:
    import urllib.error
    import urllib.request

    with AWSProvider.sandbox(["n1", "n2"], cluster="ctx") as cloud:
        provider = AWSProvider.from_settings(cloud.settings)
        nodes = [
            {"metadata": {"name": n.name, "labels": {}}, "spec": {"providerID": n.provider_id}}
            for n in cloud.nodes
        ]
        from lbprov.intent import IntentSettings, build_intent

        svc = Svc()
        intent = build_intent(svc.to_k8s(), nodes, IntentSettings(cluster="ctx"), provider)
        [ingress] = provider.apply(provider.plan(intent))
        assert ingress.hostname and provider.plan(intent).empty
        assert "elbv2:CreateLoadBalancer" in cloud.mutating_requests()
        endpoint = cloud.endpoint
    try:
        urllib.request.urlopen(endpoint, timeout=2)
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
    else:
        raise AssertionError("the sandbox server still answers after the context exited")
