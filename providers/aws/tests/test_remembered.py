"""remembered.Remembered: tags and details kept current by our own writes (pure logic, no cloud)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from lbprov_aws import remembered as remembered_module
from lbprov_aws.remembered import SHARED_VALUES, Remembered, listener_owner, trim_listener

TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/k8s-a/1"
TG2 = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/k8s-b/2"
LB = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/a/3"


class Fetch:
    def __init__(self, tags: dict[str, dict[str, str]]) -> None:
        self.tags = tags
        self.asked: list[list[str]] = []

    def __call__(self, arns: Sequence[str]) -> dict[str, dict[str, str]]:
        self.asked.append(list(arns))
        return {a: dict(self.tags[a]) for a in arns if a in self.tags}


def test_tags_are_read_once_per_arn() -> None:
    mem, fetch = Remembered(), Fetch({TG: {"k": "1"}, TG2: {"k": "2"}})
    assert mem.tags_of([TG], fetch) == {TG: {"k": "1"}}
    assert mem.tags_of([TG, TG2], fetch) == {TG: {"k": "1"}, TG2: {"k": "2"}}
    assert fetch.asked == [[TG], [TG2]]
    mem.tags_of([TG], fetch, fresh=True)
    assert fetch.asked[-1] == [TG]


def test_a_read_that_raced_a_write_is_not_kept() -> None:
    mem = Remembered()

    def fetch(arns: Sequence[str]) -> dict[str, dict[str, str]]:
        # The write is sent while the read is in flight: what the read saw may be older than it.
        mem.before_write("elbv2:AddTags", {"ResourceArns": [TG], "Tags": [{"Key": "k", "Value": "new"}]})
        mem.after_write("elbv2:AddTags", {"ResourceArns": [TG], "Tags": [{"Key": "k", "Value": "new"}]}, {})
        return {TG: {"k": "old"}}

    assert mem.tags_of([TG], fetch) == {TG: {"k": "old"}}
    assert TG not in mem.tags
    gen = mem.generation(TG)
    mem.before_write("elbv2:ModifyTargetGroupAttributes", {"TargetGroupArn": TG})
    mem.store(mem.tg_attributes, TG, {"a": "stale"}, gen)
    assert TG not in mem.tg_attributes


def test_writes_update_what_they_wrote_and_forget_what_they_may_change() -> None:
    mem = Remembered()
    create = {"Name": "k8s-a", "Tags": [{"Key": "owner", "Value": "me"}]}
    mem.before_write("elbv2:CreateTargetGroup", create)
    mem.after_write("elbv2:CreateTargetGroup", create, {"TargetGroups": [{"TargetGroupArn": TG}]})
    assert mem.tags[TG] == {"owner": "me"} and mem.tg_attributes[TG] == {} and mem.targets[TG] == ()
    register = {"TargetGroupArn": TG, "Targets": [{"Id": "i-1"}, {"Id": "i-2"}]}
    mem.before_write("elbv2:RegisterTargets", register)
    mem.after_write("elbv2:RegisterTargets", register, {})
    deregister = {"TargetGroupArn": TG, "Targets": [{"Id": "i-1"}]}
    mem.before_write("elbv2:DeregisterTargets", deregister)
    mem.after_write("elbv2:DeregisterTargets", deregister, {})
    assert mem.targets[TG] == ("i-2",)
    untag = {"ResourceArns": [TG], "TagKeys": ["owner"]}
    mem.before_write("elbv2:RemoveTags", untag)
    mem.after_write("elbv2:RemoveTags", untag, {})
    assert mem.tags[TG] == {}
    attrs = {"TargetGroupArn": TG, "Attributes": []}
    mem.before_write("elbv2:ModifyTargetGroupAttributes", attrs)
    assert TG not in mem.tg_attributes and mem.targets[TG] == ("i-2",)  # only the attributes go
    mem.before_write("elbv2:DeleteTargetGroup", {"TargetGroupArn": TG})
    assert TG not in mem.tags and TG not in mem.targets


def test_a_failed_write_forgets_everything_it_names() -> None:
    mem = Remembered()
    mem.tags[TG], mem.targets[TG] = {"k": "v"}, ("i-1",)
    params = {"TargetGroupArn": TG, "Targets": [{"Id": "i-2"}]}
    mem.before_write("elbv2:RegisterTargets", params)
    mem.write_failed("elbv2:RegisterTargets", params)
    assert TG not in mem.targets and TG not in mem.tags


def test_listener_writes_keep_or_forget_the_load_balancers_listeners() -> None:
    mem = Remembered()
    create_lb = {"Name": "a", "Tags": []}
    mem.after_write("elbv2:CreateLoadBalancer", create_lb, {"LoadBalancers": [{"LoadBalancerArn": LB}]})
    raw = {
        "ListenerArn": LB.replace("loadbalancer", "listener") + "/9",
        "Port": 80,
        "Protocol": "TCP",
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": TG, "ForwardConfig": {"x": 1}}],
        "AlpnPolicy": [],
    }
    params = {"LoadBalancerArn": LB, "Port": 80}
    mem.before_write("elbv2:CreateListener", params)
    mem.after_write("elbv2:CreateListener", params, {"Listeners": [raw]})
    assert mem.listeners[LB] == (trim_listener(raw),)
    assert mem.listeners[LB][0]["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": TG}]
    mem.before_write("elbv2:DeleteListener", {"ListenerArn": raw["ListenerArn"]})
    assert LB not in mem.listeners


def test_prune_drops_what_a_listing_no_longer_shows_but_not_what_was_written_meanwhile() -> None:
    mem = Remembered()
    mem.tags[TG] = {"k": "v"}
    before = mem.generations()
    create = {"Name": "k8s-b", "Tags": []}
    mem.after_write("elbv2:CreateTargetGroup", create, {"TargetGroups": [{"TargetGroupArn": TG2}]})
    mem.prune(set(), marker=":targetgroup/", before=before)
    assert TG not in mem.tags and TG2 in mem.tags


def _fresh(text: str) -> str:
    """An equal string that is a different object (as each botocore answer parses its own)."""
    return "".join(list(text))


def test_generations_of_deleted_resources_are_dropped() -> None:
    """``_gen`` would otherwise keep an entry for every resource this process ever wrote."""
    mem = Remembered()
    for op, key, params in (
        ("elbv2:DeleteTargetGroup", TG, {"TargetGroupArn": TG}),
        ("elbv2:DeleteLoadBalancer", LB, {"LoadBalancerArn": LB}),
        ("elb:DeleteLoadBalancer", "a" * 32, {"LoadBalancerName": "a" * 32}),
    ):
        mem.before_write("elbv2:AddTags", {"ResourceArns": [key], "Tags": []})
        mem.after_write("elbv2:AddTags", {"ResourceArns": [key], "Tags": []}, {})
        mem.before_write(op, params)
        mem.after_write(op, params, {})
        assert key not in mem._gen, op
    # ... and so are those of resources a listing no longer shows.
    mem.before_write("elbv2:AddTags", {"ResourceArns": [TG2], "Tags": []})
    mem.after_write("elbv2:AddTags", {"ResourceArns": [TG2], "Tags": []}, {})
    mem.prune(set(), marker=":targetgroup/", before=mem.generations())
    assert mem._gen == {}


def test_generations_are_bounded_and_a_read_across_the_bound_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory (issue 14): 10,000 creates would keep 20,000 generations for good. Past the bound
    they are emptied; a read that started before is not kept (read again later), one that
    starts after is; a prune whose snapshot predates the emptying drops nothing."""
    monkeypatch.setattr(remembered_module, "GENERATIONS_MAX", 3)
    mem = Remembered()
    arns = [f"{TG}{i}" for i in range(7)]
    mem.tags[arns[0]] = {"k": "v"}
    snapshot = mem.generations()
    read_started = mem.generation(arns[0])
    for arn in arns[1:]:
        mem.before_write("elbv2:ModifyTargetGroupAttributes", {"TargetGroupArn": arn})
        mem.after_write("elbv2:ModifyTargetGroupAttributes", {"TargetGroupArn": arn}, {})
        assert len(mem._gen) <= 3
    mem.store(mem.tg_attributes, arns[0], {"a": "stale?"}, read_started)
    assert arns[0] not in mem.tg_attributes, "a read across the emptying is not kept"
    mem.store(mem.tg_attributes, arns[0], {"a": "b"}, mem.generation(arns[0]))
    assert mem.tg_attributes[arns[0]] == {"a": "b"}, "a read that starts after is"
    written_last = mem.generation(arns[-1])
    mem.store(mem.tg_attributes, arns[-1], {"a": "c"}, written_last)
    assert mem.tg_attributes[arns[-1]] == {"a": "c"}
    mem.prune(set(), marker=":targetgroup/", before=snapshot)
    assert arns[0] in mem.tags, "a snapshot from before the emptying cannot tell what was written since"
    mem.prune(set(), marker=":targetgroup/", before=mem.generations())
    assert arns[0] not in mem.tags and arns[-1] not in mem.tg_attributes


def test_a_read_that_raced_a_delete_is_not_kept() -> None:
    mem = Remembered()
    mem.before_write("elbv2:ModifyTargetGroupAttributes", {"TargetGroupArn": TG})
    mem.after_write("elbv2:ModifyTargetGroupAttributes", {"TargetGroupArn": TG}, {})
    gen = mem.generation(TG)  # a read starts
    mem.before_write("elbv2:DeleteTargetGroup", {"TargetGroupArn": TG})
    mem.after_write("elbv2:DeleteTargetGroup", {"TargetGroupArn": TG}, {})
    mem.store(mem.tg_attributes, TG, {"a": "stale"}, gen)  # ... and ends after the delete
    assert TG not in mem.tg_attributes
    # A classic ELB's name can come back: a read of the old one must not be kept for the new one.
    name = "a" * 32
    mem.before_write("elb:DeleteLoadBalancer", {"LoadBalancerName": name})
    mem.after_write("elb:DeleteLoadBalancer", {"LoadBalancerName": name}, {})
    gen = mem.generation(name)
    mem.before_write("elb:CreateLoadBalancer", {"LoadBalancerName": name})
    mem.after_write("elb:CreateLoadBalancer", {"LoadBalancerName": name}, {})
    mem.store(mem.classic_attributes, name, {"old": True}, gen)
    assert mem.classic_attributes[name] == {}  # the new ELB's defaults, not the old one's read
    # Reads that start after a delete are kept as before.
    mem.store(mem.tg_attributes, TG2, {"a": "b"}, mem.generation(TG2))
    assert mem.tg_attributes[TG2] == {"a": "b"}


def test_what_is_remembered_shares_one_copy_of_each_name_and_short_value() -> None:
    mem = Remembered()
    for arn in (TG, TG2):
        mem.store(
            mem.tg_attributes,
            _fresh(arn),
            {_fresh("deregistration_delay.timeout_seconds"): _fresh("300")},
            mem.generation(arn),
        )
        mem.store(mem.targets, _fresh(arn), (_fresh("i-0123456789abcdef0"),), mem.generation(arn))
    mem.tags_of([_fresh(TG)], lambda arns: {_fresh(arns[0]): {_fresh("owner"): _fresh("me")}})
    (k1, v1), (k2, v2) = (next(iter(mem.tg_attributes[a].items())) for a in (TG, TG2))
    assert k1 is k2 and v1 is v2
    assert mem.targets[TG][0] is mem.targets[TG2][0]
    arns = {id(k) for table in (mem.tg_attributes, mem.targets, mem.tags) for k in table if k == TG}
    assert len(arns) == 1  # one string object for the ARN, whichever answer stored it
    assert mem.tags[TG] == {"owner": "me"}


def test_a_remembered_listener_shares_its_target_groups_arn_and_keeps_no_empty_alpn() -> None:
    """Memory at 10,000 Services (issue 14): a listener read or created refers to its target group
    by the ARN string the target group's entries are keyed by (not a copy per listener), and an
    empty ``AlpnPolicy`` is not kept (observe.py reads a missing one the same)."""
    mem = Remembered()
    mem.after_write(
        "elbv2:CreateTargetGroup",
        {"Name": "a", "Tags": []},
        {"TargetGroups": [{"TargetGroupArn": _fresh(TG)}]},
    )
    mem.after_write(
        "elbv2:CreateLoadBalancer", {"Name": "a", "Tags": []}, {"LoadBalancers": [{"LoadBalancerArn": LB}]}
    )
    raw = {
        "ListenerArn": LB.replace("loadbalancer", "listener") + "/9",
        "Port": 80,
        "Protocol": "TCP",
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": _fresh(TG)}],
        "AlpnPolicy": [],
    }
    mem.after_write("elbv2:CreateListener", {"LoadBalancerArn": LB, "Port": 80}, {"Listeners": [raw]})
    (listener,) = mem.listeners[LB]
    (tg_key,) = [k for k in mem.tags if k == TG]
    assert listener["DefaultActions"][0]["TargetGroupArn"] is tg_key
    assert "AlpnPolicy" not in listener
    read = trim_listener({**raw, "DefaultActions": [{"Type": "forward", "TargetGroupArn": _fresh(TG)}]})
    assert read["DefaultActions"][0]["TargetGroupArn"] is tg_key, "a listener read shares it too"
    tls = trim_listener({**raw, "AlpnPolicy": ["HTTP2Preferred"]})
    assert tls["AlpnPolicy"] == ["HTTP2Preferred"]


def test_equal_attributes_and_target_sets_are_one_object() -> None:
    """10,000 target groups with AWS's defaults and every node as target hold one dict and one
    tuple between them, not 10,000 equal ones (never changed in place, so safe to share)."""
    mem = Remembered()
    arns = [f"{TG}{i}" for i in range(3)]
    for arn in arns:
        attrs = {
            _fresh("stickiness.enabled"): _fresh("false"),
            _fresh("deregistration_delay.timeout_seconds"): "300",
        }
        mem.store(mem.tg_attributes, arn, attrs, mem.generation(arn))
        mem.store(mem.targets, arn, (_fresh("i-1"), _fresh("i-2")), mem.generation(arn))
    assert len({id(mem.tg_attributes[a]) for a in arns}) == 1
    assert len({id(mem.targets[a]) for a in arns}) == 1
    # A write replaces what it changes: the others keep the shared value.
    params = {"TargetGroupArn": arns[0], "Targets": [{"Id": "i-3"}]}
    mem.before_write("elbv2:RegisterTargets", params)
    mem.after_write("elbv2:RegisterTargets", params, {})
    assert mem.targets[arns[0]] == ("i-1", "i-2", "i-3") and mem.targets[arns[1]] == ("i-1", "i-2")
    assert mem.store(mem.tg_attributes, arns[1], {"other": "x"}, mem.generation(arns[1])) is None
    assert mem.tg_attributes[arns[2]] == {
        "stickiness.enabled": "false",
        "deregistration_delay.timeout_seconds": "300",
    }


def test_node_churn_past_the_shared_table_keeps_the_current_target_set_shared() -> None:
    """A long-lived controller sees many node sets (autoscaling): each RegisterTargets makes a new
    one. Past SHARED_VALUES of them, the sets no target group holds any more are dropped, so the
    current set is still one object across every target group (else 10,000 equal tuples)."""
    mem = Remembered()
    arns = [f"{TG}{i}" for i in range(3)]
    for arn in arns:
        mem.store(mem.targets, arn, ("i-0",), mem.generation(arn))
    joined = SHARED_VALUES + 50
    for n in range(1, joined + 1):  # one node joins at a time, on every target group
        for arn in arns:
            params = {"TargetGroupArn": arn, "Targets": [{"Id": f"i-{n}"}]}
            mem.before_write("elbv2:RegisterTargets", params)
            mem.after_write("elbv2:RegisterTargets", params, {})
    assert len(mem.targets[arns[0]]) == joined + 1
    assert len({id(mem.targets[a]) for a in arns}) == 1
    assert len(mem._values) < SHARED_VALUES  # the old sets are gone, not pinned for ever


def test_listener_generations_go_with_their_delete_or_their_load_balancer() -> None:
    mem = Remembered()
    lb = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/k8s-a/50dc6c495c0c9188"
    li = "arn:aws:elasticloadbalancing:us-east-1:1:listener/net/k8s-a/50dc6c495c0c9188/f2f7dc8efc522ab2"
    assert listener_owner(li) == lb and listener_owner(lb) is None
    for op in ("elbv2:ModifyListener", "elbv2:DeleteListener"):
        mem.before_write(op, {"ListenerArn": li})
        mem.after_write(op, {"ListenerArn": li}, {})
    assert li not in mem._gen  # a deleted listener's generation is dropped
    mem.before_write("elbv2:ModifyListener", {"ListenerArn": li})
    mem.after_write("elbv2:ModifyListener", {"ListenerArn": li}, {})
    assert li in mem._gen
    mem.prune({lb}, marker=":loadbalancer/", before=mem.generations())
    assert li in mem._gen  # its load balancer is still listed
    mem.prune(set(), marker=":loadbalancer/", before=mem.generations())
    assert li not in mem._gen  # ... and goes when the load balancer is gone
