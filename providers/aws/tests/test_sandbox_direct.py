"""EC2 and ELB requests answered without moto's Flask app (sandbox/direct.py): the same requests,
replayed with the same random seed through Flask and through the direct path, get the same status,
headers and body, byte for byte (errors included; only the creation times and the client's tokens differ)."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lbprov_aws.sandbox import MotoSandbox
from lbprov_aws.sandbox.direct import DirectApp

Answer = tuple[str, int, list[tuple[str, str]], bytes]
_TOKEN = re.compile(rb"<clientToken>[^<]*</clientToken>")
_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _seed_random(box: MotoSandbox) -> None:
    req = urllib.request.Request(f"{box.endpoint}/moto-api/seed?a=14", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass


def _exercise(box: MotoSandbox) -> list[Answer]:
    """A Service's life on the wire, with a few errors; every answer as the client received it."""
    box.reset()
    _seed_random(box)
    cloud = box.seed(["node-a", "node-b"], cluster="direct")
    answers: list[Answer] = []

    def keep(http_response: Any, model: Any, **_: Any) -> None:
        headers = [(k, v) for k, v in http_response.raw.headers.items() if k.lower() != "date"]
        # creation times and the client's own idempotency tokens (RunInstances) differ between runs
        body = _TOKEN.sub(b"<clientToken/>", _TIME.sub(b"<time>", http_response.content))
        answers.append((model.name, http_response.status_code, headers, body))

    ec2, elbv2, elb = box.client("ec2"), box.client("elbv2"), box.client("elb")
    for client in (ec2, elbv2, elb):
        client.meta.events.register("after-call.*.*", keep)
    vpc, subnets = cloud.extra["vpc_id"], cloud.extra["public_subnets"]
    group = ec2.create_security_group(GroupName="g", Description="d", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    tg = elbv2.create_target_group(Name="tg", Protocol="TCP", Port=30080, VpcId=vpc, TargetType="instance")
    tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
    lb = elbv2.create_load_balancer(
        Name="lb", Type="network", Subnets=subnets, SecurityGroups=[group], Tags=[{"Key": "k", "Value": "v"}]
    )
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.create_listener(
        LoadBalancerArn=lb_arn,
        Protocol="TCP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
    )
    instances = [n.provider_id.rsplit("/", 1)[-1] for n in cloud.nodes]
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": i, "Port": 30080} for i in instances])
    elbv2.describe_target_health(TargetGroupArn=tg_arn)
    elbv2.describe_load_balancers(Names=["lb"])
    elbv2.describe_tags(ResourceArns=[lb_arn, tg_arn])
    ec2.describe_instances(InstanceIds=instances)
    ec2.describe_security_groups(GroupIds=[group])
    elb.create_load_balancer(
        LoadBalancerName="clb",
        Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
        Subnets=subnets,
    )
    elb.describe_load_balancers(LoadBalancerNames=["clb"])
    errors: list[Callable[[], Any]] = [
        lambda: elbv2.describe_load_balancers(Names=["missing"]),  # moto's own error
        lambda: ec2.describe_security_groups(GroupIds=["sg-00000000"]),
        lambda: elb.describe_load_balancers(LoadBalancerNames=["missing"]),
        lambda: ec2.create_security_group(GroupName="g", Description="d", VpcId=vpc),  # duplicate
    ]
    for call in errors:
        with pytest.raises(ClientError):
            call()
    elbv2.delete_load_balancer(LoadBalancerArn=lb_arn)
    elbv2.delete_target_group(TargetGroupArn=tg_arn)
    return answers


def test_the_direct_path_answers_as_moto_s_flask_app(moto_server: MotoSandbox) -> None:
    recorder = moto_server.recorder
    direct = recorder.app
    assert isinstance(direct, DirectApp)
    flask_paths: list[str] = []
    moto_app = direct.app

    def counted(environ: dict[str, Any], start_response: Any) -> Any:
        flask_paths.append(environ.get("PATH_INFO", ""))
        return moto_app(environ, start_response)

    direct.app = counted
    try:
        fast = _exercise(moto_server)
        assert fast and all(path.startswith("/moto-api") for path in flask_paths)  # nothing else went there
        recorder.app = counted  # moto's dispatcher and its Flask apps, as without direct.py
        flask_paths.clear()
        own = _exercise(moto_server)
        assert flask_paths.count("/") >= len(own)  # the seeding calls, then the compared ones
    finally:
        recorder.app = direct
        direct.app = moto_app
    assert [a[0] for a in fast] == [a[0] for a in own]
    for mine, theirs in zip(fast, own, strict=True):
        assert mine == theirs, mine[0]
    assert any(status >= 400 for _, status, _, _ in fast)  # errors were compared too
    assert all(("Access-Control-Allow-Origin", "*") in headers for _, _, headers, _ in fast)
