"""The protobuf body decoder, on bodies captured from kubectl 1.33 and on hand-framed messages."""

from __future__ import annotations

import pytest

from lbprov.sandbox.kube_errors import ApiError
from lbprov.sandbox.kube_protobuf import decode_object

# `kubectl create service loadbalancer w1 --tcp=80:8080` (kubectl 1.33), byte for byte.
KUBECTL_SERVICE = (
    b'k8s\x00\n\r\n\x02v1\x12\x07Service\x12i\n\x1d\n\x02w1\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00Z\t'
    b'\n\x03app\x12\x02w1\x12D\n\x1b\n\x0780-8080\x12\x03TCP\x18P"\x07\x08\x00\x10\x90?\x1a\x00(\x00\x12\t'
    b'\n\x03app\x12\x02w1\x1a\x00"\x0cLoadBalancer:\x00B\x00R\x00Z\x00`\x00h\x00\x1a\x02\n\x00\x1a\x00"\x00'
)
# `kubectl create ns shop` (kubectl 1.33).
KUBECTL_NAMESPACE = b'k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x1c\n\x14\n\x04shop\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00\x12\x00\x1a\x02\n\x00\x1a\x00"\x00'


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _frame(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw)


def test_kubectl_service_body_decodes_to_the_json_kubectl_would_send() -> None:
    assert decode_object(KUBECTL_SERVICE) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "w1", "labels": {"app": "w1"}},
        "spec": {
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "w1"},
            "type": "LoadBalancer",
        },
    }


def test_kubectl_namespace_body_decodes() -> None:
    assert decode_object(KUBECTL_NAMESPACE) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop"},
    }


def test_pointer_fields_keep_zero_values_and_times_use_z() -> None:
    spec = _field(20, 0) + _field(21, b"lbprov.io/aws") + _field(4, b"LoadBalancer")
    port = _field(3, 443) + _field(4, _field(1, 1) + _field(3, b"https"))
    spec += _field(1, port)
    meta = _field(1, b"s") + _field(8, _field(1, 1_700_000_000)) + _field(14, b"a/b") + _field(14, b"c/d")
    obj = decode_object(_frame("v1", "Service", _field(1, meta) + _field(2, spec)))
    assert obj["spec"]["allocateLoadBalancerNodePorts"] is False
    assert obj["spec"]["loadBalancerClass"] == "lbprov.io/aws"
    assert obj["spec"]["ports"] == [{"port": 443, "targetPort": "https"}]
    assert obj["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert obj["metadata"]["finalizers"] == ["a/b", "c/d"]


def test_lease_micro_time() -> None:
    spec = _field(1, b"me") + _field(2, 15) + _field(4, _field(1, 1_700_000_000) + _field(2, 123_456_000))
    obj = decode_object(
        _frame("coordination.k8s.io/v1", "Lease", _field(1, _field(1, b"l")) + _field(2, spec))
    )
    assert obj["spec"] == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "renewTime": "2023-11-14T22:13:20.123456Z",
    }


def test_unknown_field_numbers_are_refused_by_number() -> None:
    with pytest.raises(ApiError) as err:
        decode_object(_frame("v1", "Service", _field(2, _field(99, b"x"))))
    assert err.value.code == 400 and "ServiceSpec field number 99" in err.value.message


def test_unserved_kinds_and_bad_frames_are_refused() -> None:
    with pytest.raises(ApiError) as err:
        decode_object(_frame("apps/v1", "Deployment", b""))
    assert err.value.code == 415 and "Deployment" in err.value.message
    with pytest.raises(ApiError) as err:
        decode_object(b'{"kind": "Service"}')
    assert err.value.code == 400
    with pytest.raises(ApiError):
        decode_object(KUBECTL_SERVICE[:40])
