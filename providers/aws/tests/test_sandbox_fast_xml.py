"""The sandbox's XML writer for moto's answers (sandbox/fast_xml.py): xmltodict's text, character for
character, for every answer of a Service's lifecycle (errors included) and for seeded random
documents; what it does not handle goes to xmltodict, which answers or raises as it always does."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import xmltodict
from botocore.exceptions import ClientError
from lbprov_aws import AWSProvider
from lbprov_aws.sandbox import at_scale, fast_xml
from lbprov_aws.testing import ANN, AwsView, Svc, converge, delete_all, intent_of, node_objects
from moto.core import serialize

from lbprov.provider import SandboxCloud

#: The options moto's serializers pass (BaseXMLSerializer: not a full document; EC2: a full one;
#: RestXML: full, long empty elements).
OPTIONS = [
    {"full_document": False, "short_empty_elements": True, "pretty": False},
    {"full_document": True, "short_empty_elements": True, "pretty": False},
    {"full_document": True, "short_empty_elements": False, "pretty": False},
]


class _Compare:
    """Stands for ``xmltodict`` in moto's serializer: answers xmltodict's text, records both."""

    def __init__(self) -> None:
        self.roots: list[str] = []
        self.unhandled: list[Any] = []
        self.different: list[tuple[str, str | None]] = []

    def unparse(self, input_dict: Any, output: Any = None, **kwargs: Any) -> Any:
        ours = fast_xml.fast_unparse(input_dict, **kwargs)
        theirs = xmltodict.unparse(input_dict, output, **kwargs)
        self.roots.extend(input_dict)
        if ours is None:
            self.unhandled.append(input_dict)
        elif ours != theirs:
            self.different.append((theirs, ours))
        return theirs


@pytest.fixture
def compare(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Compare]:
    assert isinstance(serialize.xmltodict, fast_xml.FastXmlToDict)  # at_scale.install wired it in
    recorder = _Compare()
    monkeypatch.setattr(serialize, "xmltodict", recorder)
    yield recorder


def test_every_answer_of_a_service_lifecycle_is_xmltodicts_text(
    compare: _Compare, provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    svc = Svc(
        ports=[(80, "TCP", 30080), (53, "UDP", 30053)],
        annotations={ANN + "additional-resource-tags": "team=web,note=a b+c@d"},
    )
    converge(provider, intent_of(provider, svc, nodes))
    svc.annotations[ANN + "healthcheck-path"] = "/ready"
    svc.annotations[ANN + "healthcheck-protocol"] = "HTTP"
    converge(provider, intent_of(provider, svc, nodes[:2]))  # a node less: DeregisterTargets
    [lb] = view.nlbs(svc.uid)
    view.elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])
    view.elbv2.describe_target_health(TargetGroupArn=view.tgs(svc.uid)[0]["TargetGroupArn"])
    rule = {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "1.2.3.4/32"}]}
    node_group = cloud.extra["node_security_group_id"]
    view.ec2.authorize_security_group_ingress(GroupId=node_group, IpPermissions=[rule])
    errors = 0
    for call in (
        lambda: view.elbv2.describe_load_balancers(Names=["no-such-lb"]),
        lambda: view.ec2.describe_security_groups(GroupIds=["sg-0123456789abcdef0"]),
        lambda: view.ec2.authorize_security_group_ingress(GroupId=node_group, IpPermissions=[rule]),
    ):
        with pytest.raises(ClientError):
            call()
        errors += 1
    delete_all(provider, svc)

    assert compare.different == []
    assert compare.unhandled == []
    roots = set(compare.roots)
    for op in (
        "CreateLoadBalancer",
        "CreateTargetGroup",
        "CreateListener",
        "RegisterTargets",
        "DeregisterTargets",
        "ModifyTargetGroup",
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "DescribeTargetHealth",
        "DescribeSecurityGroups",
        "DeleteLoadBalancer",
    ):
        assert f"{op}Response" in roots, op
    assert {"ErrorResponse", "Response"} <= roots  # an ELBv2 error and an EC2 error
    assert errors == 3


_NAMES = ["a", "Item", "member", "requestId", "x-y", "@attr", "@xmlns", "#text", "b_c", "Tags"]
_TEXTS = ["", " ", "plain", "a&b", "<tag>", "x > y", "quote\"'", "tab\tnl\ncr\r", "ünï", "]]>"]


def _value(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(12 if depth < 4 else 7)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice(_TEXTS)
    if pick == 2:
        return rng.choice([0, 7, -3, 10**12])
    if pick == 3:
        return rng.choice([True, False])
    if pick == 4:
        return 1.5
    if pick == 5:
        return []
    if pick == 6:
        return {}
    if pick in (7, 8):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(1, 4))]
    if pick == 9:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(1, 3)))
    return {rng.choice(_NAMES): _value(rng, depth + 1) for _ in range(rng.randrange(1, 5))}


def _outcome(fn: Any) -> tuple[str, str]:
    try:
        return ("text", fn())
    except ValueError as exc:
        return ("ValueError", str(exc))


def test_seeded_random_documents_are_xmltodicts_text() -> None:
    rng = random.Random(20261130)
    fast = 0
    for _ in range(3000):
        doc = {rng.choice(["Root", "ErrorResponse"]): _value(rng, 0)}
        for options in OPTIONS:
            ours = fast_xml.fast_unparse(doc, **options)
            theirs = _outcome(lambda: xmltodict.unparse(doc, **options))  # noqa: B023
            if ours is not None:
                fast += 1
                assert ("text", ours) == theirs, doc
            assert _outcome(lambda: fast_xml.unparse(doc, **options)) == theirs  # noqa: B023
    assert fast > 3000  # most documents take the fast path (the rest are xmltodict's own cases)


@pytest.mark.parametrize(
    "make, options",
    [
        (lambda: {"a": {"b": "1"}}, {"pretty": True}),  # pretty printing
        (lambda: {"a": {"#comment": "note", "b": "1"}}, {}),  # a comment
        (lambda: {"a": {"b": (x for x in ["1", "2"])}}, {}),  # a generator: xmltodict consumes it
        (lambda: {"a": {"b": {"1", "2"}}}, {}),  # a set
        (lambda: {"a": {"@xmlns": {"p": "urn:x"}, "b": "1"}}, {}),  # a namespace dict
        (lambda: {"a": {"b c": "1"}}, {}),  # a name xmltodict refuses
        (lambda: {"a": {"@b=": "1"}}, {}),  # an attribute name xmltodict refuses
        (lambda: {"a": "1", "b": "2"}, {"full_document": True}),  # two roots
        (lambda: {"a": ["1", "2"]}, {"full_document": True}),  # two roots from a list
        (lambda: {}, {"full_document": True}),  # no root
        (lambda: {"a": {1: "x"}}, {}),  # a name that is not a string
        (lambda: {"a": {"b": "1"}}, {"attr_prefix": "!"}),  # an option moto never passes
        (
            lambda: {"a": {"b": "\u00e9t\u00e9".encode("latin-1")}},
            {"encoding": "latin-1"},
        ),  # bytes in latin-1
    ],
)
def test_what_the_writer_does_not_handle_is_xmltodicts_answer(make: Any, options: dict[str, Any]) -> None:
    assert fast_xml.fast_unparse(make(), **options) is None
    assert _outcome(lambda: fast_xml.unparse(make(), **options)) == _outcome(
        lambda: xmltodict.unparse(make(), **options)
    )


def test_the_opt_out_leaves_moto_s_own_writer() -> None:
    code = (
        "import xmltodict\n"
        "from moto.core import serialize\n"
        "from lbprov_aws.sandbox import at_scale\n"
        "at_scale.install()\n"
        "assert serialize.xmltodict is xmltodict, serialize.xmltodict\n"
        "assert at_scale._INSTALLED['done']\n"
    )
    env = {**os.environ, "LBPROV_SANDBOX_STOCK_MOTO": "1"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert at_scale.ORIGINAL["xmltodict"] is xmltodict  # this process: the fast writer, moto's kept
