"""remembered.Remembered: tags and details kept current by our own writes (pure logic, no cloud)."""

from __future__ import annotations

from collections.abc import Sequence

from lbprov_aws.remembered import Remembered, trim_listener

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
