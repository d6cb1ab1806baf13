"""The sandbox's name index of moto's load balancers and target groups (sandbox/by_name.py), and the
strict layer's and at_scale.py's lookups that use it: each answers what a pass over every resource
answered, through moto's own writes and through random edits of the dict."""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lbprov_aws.sandbox import at_scale, by_name
from lbprov_aws.sandbox.by_name import ByName
from lbprov_aws.sandbox.strict import StrictRules
from lbprov_aws.testing import AwsView
from moto.ec2.models import ec2_backends
from moto.elbv2.models import elbv2_backends

from lbprov.provider import SandboxCloud

ACCOUNT, REGION = "123456789012", "us-east-1"


@dataclass
class Named:
    name: str


def _pass_first(objects: Any, name: str) -> Any:
    return next((o for o in objects.values() if o.name == name), None)


def _pass_last(objects: Any, name: str) -> Any:
    found = None
    for o in objects.values():
        if o.name == name:
            found = o
    return found


def _agrees(index: ByName, plain: OrderedDict[str, Any], names: list[str]) -> None:
    assert list(index.items()) == list(plain.items())
    for name in names:
        assert by_name.first(index, name) is _pass_first(plain, name), name
        assert by_name.last(index, name) is _pass_last(plain, name), name
    # no name left indexed without a value, no empty entry
    assert all(index.named.values())
    assert sum(len(keys) for keys in index.named.values()) == len(index)


def test_every_edit_of_the_dict_keeps_the_index_in_its_order() -> None:
    rng = random.Random(14)
    names = ["a", "b", "c", "d"]
    keys = [f"arn-{i}" for i in range(12)]
    index, plain = ByName(), OrderedDict[str, Any]()
    for _ in range(3000):
        op = rng.choice(["set", "set", "set", "del", "pop", "popitem", "setdefault", "move", "update"])
        key, value = rng.choice(keys), Named(rng.choice(names))
        if op == "set":
            index[key] = plain[key] = value
        elif op == "del" and key in plain:
            del index[key], plain[key]
        elif op == "pop":
            assert index.pop(key, None) is plain.pop(key, None)
        elif op == "popitem" and plain:
            last = rng.random() < 0.5
            assert index.popitem(last) == plain.popitem(last)
        elif op == "setdefault":
            assert index.setdefault(key, value) is plain.setdefault(key, value)
        elif op == "move" and key in plain:
            last = rng.random() < 0.5
            index.move_to_end(key, last)
            plain.move_to_end(key, last)
        elif op == "update":
            more = {rng.choice(keys): Named(rng.choice(names)) for _ in range(3)}
            index.update(more)
            plain.update(more)
        _agrees(index, plain, names)
    with pytest.raises(KeyError):
        ByName().pop("missing")
    index.clear()
    assert not index.named and by_name.first(index, "a") is None


def test_a_copy_and_a_plain_dict_answer_as_the_pass() -> None:
    index = ByName({"1": Named("a"), "2": Named("b"), "3": Named("a")})
    copied = index.copy()
    assert isinstance(copied, ByName) and list(copied.items()) == list(index.items())
    assert by_name.first(copied, "a") is index["1"] and by_name.last(copied, "a") is index["3"]
    plain = {"1": Named("a"), "2": Named("a")}
    assert by_name.first(plain, "a") is plain["1"] and by_name.last(plain, "a") is plain["2"]
    assert by_name.first(plain, "z") is None


def test_moto_s_own_writes_keep_the_index(cloud: SandboxCloud, view: AwsView) -> None:
    backend = elbv2_backends[ACCOUNT][REGION]
    assert isinstance(backend.load_balancers, ByName) and isinstance(backend.target_groups, ByName)
    arns = [
        view.elbv2.create_load_balancer(
            Name=f"lb-{i}", Type="network", Subnets=cloud.extra["public_subnets"]
        )["LoadBalancers"][0]["LoadBalancerArn"]
        for i in range(4)
    ]
    tgs = [
        view.elbv2.create_target_group(
            Name=f"tg-{i}", Protocol="TCP", Port=30000 + i, VpcId=cloud.extra["vpc_id"], TargetType="instance"
        )["TargetGroups"][0]["TargetGroupArn"]
        for i in range(3)
    ]
    view.elbv2.delete_load_balancer(LoadBalancerArn=arns[1])
    view.elbv2.delete_target_group(TargetGroupArn=tgs[0])
    # moto itself makes a second load balancer of a name (the strict layer refuses it over HTTP)
    twin = backend.create_load_balancer(
        name="lb-2", security_groups=[], subnet_ids=cloud.extra["public_subnets"], loadbalancer_type="network"
    )
    for name in ["lb-0", "lb-1", "lb-2", "lb-3", "lb-9"]:
        assert by_name.first(backend.load_balancers, name) is _pass_first(backend.load_balancers, name)
        assert by_name.last(backend.load_balancers, name) is _pass_last(backend.load_balancers, name)
    assert by_name.last(backend.load_balancers, "lb-2") is twin
    for name in ["tg-0", "tg-1", "tg-2"]:
        assert by_name.first(backend.target_groups, name) is _pass_first(backend.target_groups, name)
    # the describe by name keeps moto's answer (the last of a name)
    assert at_scale._describe_load_balancers(backend, None, ["lb-2"]) == [twin]


def test_a_reset_backend_keeps_its_index(moto_server: Any, cloud: SandboxCloud) -> None:
    moto_server.reset()
    backend = elbv2_backends[ACCOUNT][REGION]
    assert isinstance(backend.load_balancers, ByName) and not backend.load_balancers
    assert isinstance(backend.target_groups, ByName) and not backend.target_groups


def test_the_listener_and_group_lookups_answer_as_the_pass(cloud: SandboxCloud, view: AwsView) -> None:
    lb = view.elbv2.create_load_balancer(Name="lb-l", Type="network", Subnets=cloud.extra["public_subnets"])
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    tg = view.elbv2.create_target_group(
        Name="tg-l", Protocol="TCP", Port=30000, VpcId=cloud.extra["vpc_id"], TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    listener = view.elbv2.create_listener(
        LoadBalancerArn=lb_arn,
        Protocol="TCP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )["Listeners"][0]["ListenerArn"]
    backend = elbv2_backends[ACCOUNT][REGION]
    rules = StrictRules()

    def scan(arn: str) -> Any:
        return next(
            (li for b in backend.load_balancers.values() for li in b.listeners.values() if li.arn == arn),
            None,
        )

    for arn in [listener, listener + "0", lb_arn, "arn:aws:elasticloadbalancing:x:listener/net/a/b/c", ""]:
        assert rules._listener(arn) is scan(arn), arn
    assert rules._listener(listener) is not None

    ec2 = ec2_backends[ACCOUNT][REGION]
    group_ids = [g.id for groups in ec2.groups.values() for g in groups.values()]
    assert group_ids
    for gid in [*group_ids, "sg-00000000", "", "sandbox-nodes"]:
        assert ec2.get_security_group_from_id(gid) is at_scale.ORIGINAL["get_security_group_from_id"](
            ec2, gid
        )


def test_moto_s_passes_narrowed_to_what_they_can_find_keep_their_answers(
    cloud: SandboxCloud, view: AwsView
) -> None:
    """create_target_group still refuses a namesake; _validate_actions still refuses a forward to
    an unknown target group and accepts known ones; other threads see every value meanwhile."""
    from moto.elbv2.exceptions import ActionTargetGroupNotFoundError, DuplicateTargetGroupName
    from moto.elbv2.models import FakeAction

    backend = elbv2_backends[ACCOUNT][REGION]
    arns = [
        view.elbv2.create_target_group(
            Name=f"tg-n{i}",
            Protocol="TCP",
            Port=30000 + i,
            VpcId=cloud.extra["vpc_id"],
            TargetType="instance",
        )["TargetGroups"][0]["TargetGroupArn"]
        for i in range(3)
    ]
    with pytest.raises(DuplicateTargetGroupName):
        backend.create_target_group("tg-n1", protocol="TCP", port="1", vpc_id=cloud.extra["vpc_id"])
    assert len(backend.target_groups) == 3

    def forward(*targets: str) -> FakeAction:
        if len(targets) == 1:
            return FakeAction({"Type": "forward", "TargetGroupArn": targets[0]})
        return FakeAction(
            {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": t} for t in targets]}}
        )

    backend._validate_actions([forward(arns[2]), forward(arns[1], arns[0])])
    for bad in ([forward(arns[0] + "x")], [forward(arns[0]), forward(arns[1], "arn:missing")]):
        with pytest.raises(ActionTargetGroupNotFoundError):
            backend._validate_actions(bad)
    # a malformed forward config: moto's own method and its own error
    broken = FakeAction({"Type": "forward", "ForwardConfig": {"TargetGroups": [{}]}})
    with pytest.raises(KeyError):
        backend._validate_actions([broken])

    seen: list[int] = []
    with by_name.narrowed(backend.target_groups, name="tg-n0"):
        assert [tg.name for tg in backend.target_groups.values()] == ["tg-n0"]
        other = threading.Thread(target=lambda: seen.append(len(list(backend.target_groups.values()))))
        other.start()
        other.join()
    assert seen == [3]
    assert len(list(backend.target_groups.values())) == 3


def test_security_groups_by_name_answer_as_moto_s_pass(cloud: SandboxCloud, view: AwsView) -> None:
    ec2 = ec2_backends[ACCOUNT][REGION]
    for i in range(3):
        view.ec2.create_security_group(GroupName=f"g{i}", Description="d", VpcId=cloud.extra["vpc_id"])
    with pytest.raises(ClientError) as err:
        view.ec2.create_security_group(GroupName="g1", Description="d", VpcId=cloud.extra["vpc_id"])
    assert err.value.response["Error"]["Code"] == "InvalidGroup.Duplicate"
    vpcs = list(ec2.groups)
    assert all(isinstance(ec2.groups[v], ByName) for v in vpcs)
    for name in ["g0", "g2", "default", "sandbox-nodes", "nope"]:
        for vpc in [None, cloud.extra["vpc_id"], *vpcs]:
            assert ec2.get_security_group_from_name(name, vpc) is at_scale.ORIGINAL[
                "get_security_group_from_name"
            ](ec2, name, vpc), (name, vpc)
