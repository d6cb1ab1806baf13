"""The sandbox's attribute picker for moto's answers (sandbox/fast_picker.py): for every member of
every answer of a Service's lifecycle, the value moto's own ``get_value`` picks; whole answers the
same as moto's; and the cases it leaves to moto."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lbprov_aws import AWSProvider
from lbprov_aws.sandbox import fast_picker
from lbprov_aws.testing import ANN, AwsView, Svc, converge, delete_all, intent_of, node_objects
from moto.core import serialize

from lbprov.provider import SandboxCloud


class _Compare:
    """Wraps ``ResponseSerializer.serialize``: each answer serialized with moto's ``get_value`` and
    with the fast one; records the answers that differ and the fast calls that went to moto's."""

    def __init__(self, moto_get_value: Any) -> None:
        self.moto_get_value = moto_get_value
        self.answers = 0
        self.fast_calls = 0
        self.fell_back = 0
        self.transformed = 0
        self.different: list[tuple[Any, Any]] = []

    def serialize(self, serializer: Any, result: Any) -> Any:
        serializer.get_value = types.MethodType(self.moto_get_value, serializer)
        theirs = _MOTO_SERIALIZE(serializer, result)
        del serializer.get_value  # the class's: fast_picker.get_value
        ours = _MOTO_SERIALIZE(serializer, result)
        self.answers += 1
        if ours != theirs:
            self.different.append((theirs, ours))
        return theirs


_MOTO_SERIALIZE = serialize.ResponseSerializer.serialize


@pytest.fixture
def compare(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Compare]:
    assert serialize.ResponseSerializer.get_value is fast_picker.get_value  # at_scale.install wired it in
    recorder = _Compare(fast_picker.ORIGINAL["get_value"])

    def fell_back(*args: Any) -> Any:
        recorder.fell_back += 1
        return recorder.moto_get_value(*args)

    def counted(self: Any, value: Any, key: str, shape: Any) -> Any:
        recorder.fast_calls += 1
        path = ".".join(self.path) + "." + key
        if any(path.endswith(p) for p in self._value_picker.response_transformers):
            recorder.transformed += 1
        return fast_picker.get_value(self, value, key, shape)

    monkeypatch.setitem(fast_picker.ORIGINAL, "get_value", fell_back)
    monkeypatch.setattr(serialize.ResponseSerializer, "get_value", counted)

    def serialize_twice(self: Any, result: Any) -> Any:
        return recorder.serialize(self, result)

    monkeypatch.setattr(serialize.ResponseSerializer, "serialize", serialize_twice)
    yield recorder


def test_every_member_of_a_service_lifecycle_is_moto_s_value(
    compare: _Compare, provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    cert = cloud.extra["create_certificate"]("web.example.com")
    svc = Svc(
        ports=[(80, "TCP", 30080), (443, "TCP", 30443), (53, "UDP", 30053)],
        annotations={
            ANN + "additional-resource-tags": "team=web",
            ANN + "ssl-cert": cert,
            ANN + "ssl-ports": "443",
            ANN + "proxy-protocol": "*",
        },
    )
    converge(provider, intent_of(provider, svc, nodes))
    [lb] = view.nlbs(svc.uid)  # DescribeTags, DescribeLoadBalancerAttributes: transformed members
    view.listeners(lb["LoadBalancerArn"])  # DescribeListeners with certificates: transformed
    view.tgs(svc.uid)
    view.lb_attributes(lb["LoadBalancerArn"])
    view.ec2.describe_instances()
    svc.annotations.pop(ANN + "ssl-cert")
    svc.annotations.pop(ANN + "ssl-ports")
    converge(provider, intent_of(provider, svc, nodes[:2]))
    with pytest.raises(ClientError):
        view.elbv2.describe_load_balancers(Names=["no-such-lb"])
    delete_all(provider, svc)

    assert compare.different == []
    assert compare.answers > 30
    assert compare.fast_calls > 1000
    assert compare.fell_back == 0
    assert compare.transformed > 0


def test_a_picker_moto_did_not_build_is_moto_s_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another picker class, or other alias providers: every call goes to moto's get_value."""
    calls: list[Any] = []
    monkeypatch.setitem(fast_picker.ORIGINAL, "get_value", lambda *a: calls.append(a) or "moto")

    class Serializer:
        path = ["Op"]

    other = Serializer()
    other._value_picker = serialize.AttributePicker()  # type: ignore[attr-defined]
    assert fast_picker.get_value(other, {"A": 1}, "A", None) == "moto"
    own_providers = Serializer()
    own_providers._value_picker = serialize.XFormedAttributePicker(  # type: ignore[attr-defined]
        alias_providers=list(serialize.DEFAULT_ALIAS_PROVIDERS)
    )
    assert fast_picker.get_value(own_providers, {"A": 1}, "A", None) == "moto"
    assert len(calls) == 2


def test_explicit_aliases_are_read_on_every_call() -> None:
    """``Meta.serialization_aliases`` is the object's, asked each time (as moto's ExplicitAlias)."""

    class Thing:
        class Meta:
            serialization_aliases = {"Name": "label"}

        label = "by-alias"
        name = "by-name"

    class Serializer:
        path = ["Op"]
        operation_model = types.SimpleNamespace(service_model=None)
        _value_picker = serialize.XFormedAttributePicker(response_transformers={})

    shape = None
    thing = Thing()
    for _ in range(2):
        assert fast_picker.get_value(Serializer(), thing, "Name", shape) == "by-alias"
        assert fast_picker.ORIGINAL["get_value"](Serializer(), thing, "Name", shape) == "by-alias"
    thing.Meta = type("Meta", (), {"serialization_aliases": {}})  # type: ignore[misc]
    assert fast_picker.get_value(Serializer(), thing, "Name", shape) == "by-name"
    assert fast_picker.ORIGINAL["get_value"](Serializer(), thing, "Name", shape) == "by-name"


def test_a_transformer_assigned_later_is_used() -> None:
    """moto assigns into RESPONSE_KEY_PATH_TO_TRANSFORMER at run time (_include_in_response)."""
    transformers: dict[str, Any] = {"Other.Path": lambda v: v}

    class Serializer:
        path = ["Op", "Result"]
        operation_model = types.SimpleNamespace(service_model=None)
        _value_picker = serialize.XFormedAttributePicker(response_transformers=transformers)

    assert fast_picker.get_value(Serializer(), {"Key": "v"}, "Key", None) == "v"
    transformers["Result.Key"] = serialize.never_return  # a new key
    assert fast_picker.get_value(Serializer(), {"Key": "v"}, "Key", None) is None
    transformers["Result.Key"] = lambda v: v.upper()  # the same key, another function
    assert fast_picker.get_value(Serializer(), {"Key": "v"}, "Key", None) == "V"
    for fn in (fast_picker.get_value, fast_picker.ORIGINAL["get_value"]):
        assert fn(Serializer(), {"Key": "v"}, "Key", None) == "V"
