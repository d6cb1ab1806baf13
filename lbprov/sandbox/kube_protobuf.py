"""Decode Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``) into JSON objects.

kubectl 1.32 and later create built-in kinds through typed clients that send protobuf whatever the
server's discovery offers, and do not fall back to JSON after a 415 -- a real API server accepts
them, so the sandbox must too. The wire form (``k8s.io/apimachinery/pkg/runtime/serializer/protobuf``)
is the 4-byte magic ``k8s\\0`` followed by a ``runtime.Unknown`` message whose ``raw`` field holds the
object's own message.

No maintained Python package ships the Kubernetes ``generated.proto`` messages, so the field numbers
of the served kinds are tabled here. Each number is the ``protobuf:"...,N,..."`` tag of the Go type in
``k8s.io/api`` / ``k8s.io/apimachinery`` (the same numbers ``generated.proto`` carries); the tests
decode bodies captured from every kubectl version in the image, so a wrong number fails there. A
field number the table does not know is refused with 400 naming it: the sandbox never drops input.

JSON mapping, as the Go types marshal: non-pointer scalars are always on the wire in protobuf and are
``omitempty`` in JSON, so their zero values are dropped; pointer fields (``*bool``, ``*string``,
``*int32``) keep zero values (``allocateLoadBalancerNodePorts: false`` means something); ``Time`` is
RFC 3339 with ``Z``, ``MicroTime`` the same with microseconds, ``IntOrString`` and ``Quantity`` are
scalars, ``FieldsV1`` is raw JSON.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from lbprov.sandbox.kube_errors import ApiError

#: The magic prefix of a protobuf-encoded object (runtime/serializer/protobuf/protobuf.go).
MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


@dataclass(frozen=True)
class Field:
    """One field of a message: its JSON name, its type and how it repeats.

    ``kind`` is a scalar type (``string``, ``int32``, ``int64``, ``bool``, ``bytes``), a special
    (``Time``, ``MicroTime``, ``IntOrString``, ``Quantity``, ``FieldsV1``), ``map:<value kind>`` or the
    name of another message in :data:`MESSAGES`. ``pointer`` marks Go pointer fields, whose zero
    value is meaningful and kept.
    """

    name: str
    kind: str
    repeated: bool = False
    pointer: bool = False


def _f(name: str, kind: str = "string", *, rep: bool = False, ptr: bool = False) -> Field:
    return Field(name, kind, rep, ptr)


# Field numbers: k8s.io/apimachinery/pkg/apis/meta/v1/types.go (ObjectMeta, OwnerReference,
# ManagedFieldsEntry, Condition, DeleteOptions, Preconditions) and runtime/types.go (Unknown, TypeMeta).
_META: dict[str, dict[int, Field]] = {
    "Unknown": {
        1: _f("typeMeta", "TypeMeta"),
        2: _f("raw", "bytes"),
        3: _f("contentEncoding"),
        4: _f("contentType"),
    },
    "TypeMeta": {1: _f("apiVersion"), 2: _f("kind")},
    "ObjectMeta": {
        1: _f("name"),
        2: _f("generateName"),
        3: _f("namespace"),
        4: _f("selfLink"),
        5: _f("uid"),
        6: _f("resourceVersion"),
        7: _f("generation", "int64"),
        8: _f("creationTimestamp", "Time"),
        9: _f("deletionTimestamp", "Time", ptr=True),
        10: _f("deletionGracePeriodSeconds", "int64", ptr=True),
        11: _f("labels", "map:string"),
        12: _f("annotations", "map:string"),
        13: _f("ownerReferences", "OwnerReference", rep=True),
        14: _f("finalizers", rep=True),
        17: _f("managedFields", "ManagedFieldsEntry", rep=True),
    },
    "OwnerReference": {
        1: _f("kind"),
        3: _f("name"),
        4: _f("uid"),
        5: _f("apiVersion"),
        6: _f("controller", "bool", ptr=True),
        7: _f("blockOwnerDeletion", "bool", ptr=True),
    },
    "ManagedFieldsEntry": {
        1: _f("manager"),
        2: _f("operation"),
        3: _f("apiVersion"),
        4: _f("time", "Time", ptr=True),
        6: _f("fieldsType"),
        7: _f("fieldsV1", "FieldsV1", ptr=True),
        8: _f("subresource"),
    },
    "Condition": {
        1: _f("type"),
        2: _f("status"),
        3: _f("observedGeneration", "int64"),
        4: _f("lastTransitionTime", "Time"),
        5: _f("reason"),
        6: _f("message"),
    },
    "DeleteOptions": {
        1: _f("gracePeriodSeconds", "int64", ptr=True),
        2: _f("preconditions", "Preconditions", ptr=True),
        3: _f("orphanDependents", "bool", ptr=True),
        4: _f("propagationPolicy", ptr=True),
        5: _f("dryRun", rep=True),
    },
    "Preconditions": {1: _f("uid", ptr=True), 2: _f("resourceVersion", ptr=True)},
}

# k8s.io/api/core/v1/types.go.
_CORE: dict[str, dict[int, Field]] = {
    "Service": {
        1: _f("metadata", "ObjectMeta"),
        2: _f("spec", "ServiceSpec"),
        3: _f("status", "ServiceStatus"),
    },
    "ServiceSpec": {
        1: _f("ports", "ServicePort", rep=True),
        2: _f("selector", "map:string"),
        3: _f("clusterIP"),
        4: _f("type"),
        5: _f("externalIPs", rep=True),
        7: _f("sessionAffinity"),
        8: _f("loadBalancerIP"),
        9: _f("loadBalancerSourceRanges", rep=True),
        10: _f("externalName"),
        11: _f("externalTrafficPolicy"),
        12: _f("healthCheckNodePort", "int32"),
        13: _f("publishNotReadyAddresses", "bool"),
        14: _f("sessionAffinityConfig", "SessionAffinityConfig", ptr=True),
        17: _f("ipFamilyPolicy", ptr=True),
        18: _f("clusterIPs", rep=True),
        19: _f("ipFamilies", rep=True),
        20: _f("allocateLoadBalancerNodePorts", "bool", ptr=True),
        21: _f("loadBalancerClass", ptr=True),
        22: _f("internalTrafficPolicy", ptr=True),
        23: _f("trafficDistribution", ptr=True),
    },
    "ServicePort": {
        1: _f("name"),
        2: _f("protocol"),
        3: _f("port", "int32"),
        4: _f("targetPort", "IntOrString"),
        5: _f("nodePort", "int32"),
        6: _f("appProtocol", ptr=True),
    },
    "SessionAffinityConfig": {1: _f("clientIP", "ClientIPConfig", ptr=True)},
    "ClientIPConfig": {1: _f("timeoutSeconds", "int32", ptr=True)},
    "ServiceStatus": {
        1: _f("loadBalancer", "LoadBalancerStatus"),
        2: _f("conditions", "Condition", rep=True),
    },
    "LoadBalancerStatus": {1: _f("ingress", "LoadBalancerIngress", rep=True)},
    "LoadBalancerIngress": {
        1: _f("ip"),
        2: _f("hostname"),
        3: _f("ipMode", ptr=True),
        4: _f("ports", "PortStatus", rep=True),
    },
    "PortStatus": {1: _f("port", "int32"), 2: _f("protocol"), 3: _f("error", ptr=True)},
    "Namespace": {
        1: _f("metadata", "ObjectMeta"),
        2: _f("spec", "NamespaceSpec"),
        3: _f("status", "NamespaceStatus"),
    },
    "NamespaceSpec": {1: _f("finalizers", rep=True)},
    "NamespaceStatus": {1: _f("phase"), 2: _f("conditions", "NamespaceCondition", rep=True)},
    "NamespaceCondition": {
        1: _f("type"),
        2: _f("status"),
        4: _f("lastTransitionTime", "Time"),
        5: _f("reason"),
        6: _f("message"),
    },
    "Node": {1: _f("metadata", "ObjectMeta"), 2: _f("spec", "NodeSpec"), 3: _f("status", "NodeStatus")},
    "NodeSpec": {
        1: _f("podCIDR"),
        2: _f("externalID"),
        3: _f("providerID"),
        4: _f("unschedulable", "bool"),
        5: _f("taints", "Taint", rep=True),
        7: _f("podCIDRs", rep=True),
    },
    "Taint": {1: _f("key"), 2: _f("value"), 3: _f("effect"), 4: _f("timeAdded", "Time", ptr=True)},
    "NodeStatus": {
        1: _f("capacity", "map:Quantity"),
        2: _f("allocatable", "map:Quantity"),
        3: _f("phase"),
        4: _f("conditions", "NodeCondition", rep=True),
        5: _f("addresses", "NodeAddress", rep=True),
        7: _f("nodeInfo", "NodeSystemInfo"),
    },
    "NodeCondition": {
        1: _f("type"),
        2: _f("status"),
        3: _f("lastHeartbeatTime", "Time"),
        4: _f("lastTransitionTime", "Time"),
        5: _f("reason"),
        6: _f("message"),
    },
    "NodeAddress": {1: _f("type"), 2: _f("address")},
    "NodeSystemInfo": {
        1: _f("machineID"),
        2: _f("systemUUID"),
        3: _f("bootID"),
        4: _f("kernelVersion"),
        5: _f("osImage"),
        6: _f("containerRuntimeVersion"),
        7: _f("kubeletVersion"),
        8: _f("kubeProxyVersion"),
        9: _f("operatingSystem"),
        10: _f("architecture"),
    },
    "Event": {
        1: _f("metadata", "ObjectMeta"),
        2: _f("involvedObject", "ObjectReference"),
        3: _f("reason"),
        4: _f("message"),
        5: _f("source", "EventSource"),
        6: _f("firstTimestamp", "Time"),
        7: _f("lastTimestamp", "Time"),
        8: _f("count", "int32"),
        9: _f("type"),
        10: _f("eventTime", "MicroTime"),
        11: _f("series", "EventSeries", ptr=True),
        12: _f("action"),
        13: _f("related", "ObjectReference", ptr=True),
        14: _f("reportingComponent"),
        15: _f("reportingInstance"),
    },
    "ObjectReference": {
        1: _f("kind"),
        2: _f("namespace"),
        3: _f("name"),
        4: _f("uid"),
        5: _f("apiVersion"),
        6: _f("resourceVersion"),
        7: _f("fieldPath"),
    },
    "EventSource": {1: _f("component"), 2: _f("host")},
    "EventSeries": {1: _f("count", "int32"), 2: _f("lastObservedTime", "MicroTime")},
    "ConfigMap": {
        1: _f("metadata", "ObjectMeta"),
        2: _f("data", "map:string"),
        3: _f("binaryData", "map:bytes"),
        4: _f("immutable", "bool", ptr=True),
    },
}

# k8s.io/api/coordination/v1/types.go.
_COORDINATION: dict[str, dict[int, Field]] = {
    "Lease": {1: _f("metadata", "ObjectMeta"), 2: _f("spec", "LeaseSpec")},
    "LeaseSpec": {
        1: _f("holderIdentity", ptr=True),
        2: _f("leaseDurationSeconds", "int32", ptr=True),
        3: _f("acquireTime", "MicroTime", ptr=True),
        4: _f("renewTime", "MicroTime", ptr=True),
        5: _f("leaseTransitions", "int32", ptr=True),
        6: _f("strategy", ptr=True),
        7: _f("preferredHolder", ptr=True),
    },
}

MESSAGES: dict[str, dict[int, Field]] = {**_META, **_CORE, **_COORDINATION}

#: The top-level kinds a protobuf body may carry, by (apiVersion, kind).
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Service"): "Service",
    ("v1", "Namespace"): "Namespace",
    ("v1", "Node"): "Node",
    ("v1", "Event"): "Event",
    ("v1", "ConfigMap"): "ConfigMap",
    ("coordination.k8s.io/v1", "Lease"): "Lease",
    ("v1", "DeleteOptions"): "DeleteOptions",
    ("meta.k8s.io/v1", "DeleteOptions"): "DeleteOptions",
}

_SCALARS = ("string", "int32", "int64", "bool", "bytes")


def is_protobuf(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == CONTENT_TYPE


def _bad(message: str) -> ApiError:
    return ApiError(400, "BadRequest", f"the body of the request could not be decoded: {message}")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise _bad("truncated protobuf varint")
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise _bad("protobuf varint too long")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _bad("truncated protobuf field")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def fields(self) -> list[tuple[int, int, Any]]:
        """Every (field number, wire type, raw value) in order."""
        out: list[tuple[int, int, Any]] = []
        while self.pos < len(self.data):
            key = self.varint()
            number, wire = key >> 3, key & 7
            if wire == 0:
                out.append((number, wire, self.varint()))
            elif wire == 2:
                out.append((number, wire, self.take(self.varint())))
            elif wire == 1:
                out.append((number, wire, int.from_bytes(self.take(8), "little")))
            elif wire == 5:
                out.append((number, wire, int.from_bytes(self.take(4), "little")))
            else:
                raise _bad(f"unsupported protobuf wire type {wire} for field {number}")
        return out


def _signed(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    if bits == 32:
        value = ((value + (1 << 31)) % (1 << 32)) - (1 << 31)
    return value


def _time(data: bytes, micro: bool) -> str | None:
    seconds = nanos = 0
    for number, _, value in _Reader(data).fields():
        if number == 1:
            seconds = _signed(value, 64)
        elif number == 2:
            nanos = _signed(value, 32)
    if seconds == 0 and nanos == 0:
        return None  # the zero Time marshals as JSON null
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    if micro:
        when = when.replace(microsecond=nanos // 1000)
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(data: bytes) -> int | str:
    kind, int_val, str_val = 0, 0, ""
    for number, _, value in _Reader(data).fields():
        if number == 1:
            kind = _signed(value, 64)
        elif number == 2:
            int_val = _signed(value, 32)
        elif number == 3:
            str_val = value.decode()
    return str_val if kind == 1 else int_val


def _scalar(kind: str, wire: int, value: Any, path: str) -> Any:
    if kind in ("string", "bytes"):
        if wire != 2:
            raise _bad(f"{path}: expected a length-delimited value")
        if kind == "bytes":
            import base64

            return base64.b64encode(value).decode()
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(f"{path}: invalid UTF-8") from exc
    if wire != 0:
        raise _bad(f"{path}: expected a varint")
    if kind == "bool":
        return bool(value)
    return _signed(value, 32 if kind == "int32" else 64)


def _special(kind: str, data: bytes, path: str) -> Any:
    if kind in ("Time", "MicroTime"):
        return _time(data, kind == "MicroTime")
    if kind == "IntOrString":
        return _int_or_string(data)
    if kind == "Quantity":
        fields = _Reader(data).fields()
        return next((v.decode() for n, _, v in fields if n == 1), "")
    if kind == "FieldsV1":
        raw = next((v for n, _, v in _Reader(data).fields() if n == 1), b"")
        try:
            return json.loads(raw) if raw else {}
        except ValueError as exc:
            raise _bad(f"{path}: fieldsV1 is not JSON") from exc
    raise AssertionError(kind)


def _is_zero(value: Any) -> bool:
    return value is None or value == "" or value == 0 or value is False or value == {} or value == []


def _map_entry(data: bytes, value_kind: str, path: str) -> tuple[str, Any]:
    key, value = "", None
    for number, wire, raw in _Reader(data).fields():
        if number == 1:
            key = _scalar("string", wire, raw, path)
        elif number == 2:
            if value_kind in _SCALARS:
                value = _scalar(value_kind, wire, raw, path)
            else:
                value = _special(value_kind, raw, path)
    if value is None:
        value = "" if value_kind in ("string", "bytes", "Quantity") else value
    return key, value


def decode_message(message: str, data: bytes, path: str = "") -> dict[str, Any]:
    """One message of :data:`MESSAGES` as its JSON object."""
    table = MESSAGES[message]
    out: dict[str, Any] = {}
    for number, wire, raw in _Reader(data).fields():
        field = table.get(number)
        if field is None:
            where = f"{path}: " if path else ""
            raise _bad(f"{where}{message} field number {number} is not known to the sandbox API server")
        where = f"{path}.{field.name}" if path else field.name
        value: Any
        if field.kind.startswith("map:"):
            k, v = _map_entry(raw, field.kind[4:], where)
            out.setdefault(field.name, {})[k] = v
            continue
        if field.kind in _SCALARS:
            if field.repeated and wire == 2 and field.kind not in ("string", "bytes"):
                reader = _Reader(raw)  # a packed repeated scalar
                while reader.pos < len(raw):
                    out.setdefault(field.name, []).append(_scalar(field.kind, 0, reader.varint(), where))
                continue
            value = _scalar(field.kind, wire, raw, where)
        elif wire != 2:
            raise _bad(f"{where}: expected a length-delimited value")
        elif field.kind in MESSAGES:
            value = decode_message(field.kind, raw, where)
        else:
            value = _special(field.kind, raw, where)
        if field.repeated:
            out.setdefault(field.name, []).append(value)
        elif field.pointer or not _is_zero(value):
            if value is not None:
                out[field.name] = value
        else:
            out.pop(field.name, None)
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """A ``k8s\\0``-framed protobuf body as the JSON object a client would have sent."""
    if not body.startswith(MAGIC):
        raise _bad("protobuf body does not start with the k8s\\0 magic prefix")
    unknown = _Reader(body[len(MAGIC) :]).fields()
    type_meta: dict[str, Any] = {}
    raw = b""
    encoding = ""
    for number, wire, value in unknown:
        if number == 1 and wire == 2:
            type_meta = decode_message("TypeMeta", value, "typeMeta")
        elif number == 2 and wire == 2:
            raw = value
        elif number == 3 and wire == 2:
            encoding = value.decode()
    if encoding:
        raise _bad(f"protobuf contentEncoding {encoding!r} is not supported")
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    message = KINDS.get((api_version, kind))
    if message is None:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the sandbox API server cannot decode {kind or 'an object'} ({api_version or 'no apiVersion'}) "
            f"from protobuf; send it as application/json",
        )
    obj = decode_message(message, raw)
    return {"apiVersion": api_version, "kind": kind, **obj}


__all__ = ["CONTENT_TYPE", "KINDS", "MAGIC", "MESSAGES", "decode_message", "decode_object", "is_protobuf"]
