"""The AWS annotations: parsed, validated, frozen.

Accepts upstream's names (``service.beta.kubernetes.io/aws-load-balancer-*``) so that users can
migrate from cloud-provider-aws. Every error names the annotation and the accepted values, and no
cloud call is made here (``AWSProvider.resolve`` is pure).

Default load balancer kind: **NLB** (DESIGN.md), unlike upstream cloud-provider-aws whose default is
a classic ELB. ``aws-load-balancer-type: classic`` (or ``clb``/``elb``) asks for a classic ELB.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from lbprov import naming
from lbprov.annotations import annotation_field, get_int, get_pairs
from lbprov.intent import parse_bool
from lbprov.model import Intent, InvalidService, Target
from lbprov_aws import sg_options
from lbprov_aws.annotation_keys import check_all
from lbprov_aws.sg_options import SecurityGroupOptions

PREFIX = "service.beta.kubernetes.io/aws-load-balancer-"
TYPE = PREFIX + "type"
INTERNAL = PREFIX + "internal"
SCHEME = PREFIX + "scheme"
SUBNETS = PREFIX + "subnets"
HC_PROTOCOL = PREFIX + "healthcheck-protocol"
HC_PORT = PREFIX + "healthcheck-port"
HC_PATH = PREFIX + "healthcheck-path"
HC_INTERVAL = PREFIX + "healthcheck-interval"
HC_TIMEOUT = PREFIX + "healthcheck-timeout"
HC_HEALTHY = PREFIX + "healthcheck-healthy-threshold"
HC_UNHEALTHY = PREFIX + "healthcheck-unhealthy-threshold"
PROXY_PROTOCOL = PREFIX + "proxy-protocol"
CROSS_ZONE = PREFIX + "cross-zone-load-balancing-enabled"
ADDITIONAL_TAGS = PREFIX + "additional-resource-tags"
SSL_CERT = PREFIX + "ssl-cert"
SSL_PORTS = PREFIX + "ssl-ports"
TARGET_NODE_LABELS = PREFIX + "target-node-labels"
NLB_TARGET_TYPE = PREFIX + "nlb-target-type"

#: Accepted values of the type annotation and what they mean.
NLB_TYPES = {"nlb": "nlb"}
CLASSIC_TYPES = {"classic": "classic", "clb": "classic", "elb": "classic"}
ELSEWHERE_TYPES = ("external", "nlb-ip")

LbKind = Literal["nlb", "classic"]

_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_CERT_ARN = re.compile(r"^arn:aws[\w-]*:(acm|iam):[\w-]*:\d{12}:(certificate|server-certificate)/.+$")
_INSTANCE_ID = re.compile(r"^i-[0-9a-zA-Z]+$")
_RESERVED_TAG_PREFIXES = ("aws:", naming.CLUSTER_TAG_PREFIX, "lbprov.io/")
_RESERVED_TAG_KEYS = (naming.SERVICE_NAME_TAG,)

#: Health-check ranges: (interval, timeout, healthy, unhealthy) bounds per kind (AWS API limits).
HC_RANGES: dict[str, dict[str, tuple[int, int]]] = {
    "nlb": {"interval": (5, 300), "timeout": (2, 120), "healthy": (2, 10), "unhealthy": (2, 10)},
    "classic": {"interval": (5, 300), "timeout": (2, 60), "healthy": (2, 10), "unhealthy": (2, 10)},
}


class HealthCheckOverrides(BaseModel):
    """Values from the ``healthcheck-*`` annotations; ``None`` = the default for the case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Literal["TCP", "HTTP", "HTTPS"] | None = None
    port: int | Literal["traffic-port"] | None = None
    path: str | None = None
    interval: int | None = None
    timeout: int | None = None
    healthy: int | None = None
    unhealthy: int | None = None


class AWSOptions(BaseModel):
    """The validated AWS options of one Service (``Intent.options``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: LbKind = "nlb"
    subnets: tuple[str, ...] = ()
    health: HealthCheckOverrides = HealthCheckOverrides()
    proxy_protocol: bool = False
    cross_zone: bool = False
    additional_tags: tuple[tuple[str, str], ...] = ()
    ssl_cert: str | None = None
    #: Ports (numbers or names) that get TLS listeners; ``("*",)`` = all. Only with ``ssl_cert``.
    ssl_ports: tuple[str, ...] = ()
    target_node_labels: tuple[tuple[str, str], ...] = ()
    #: security-groups / extra-security-groups / manage-backend-security-group-rules (sg_options.py).
    groups: SecurityGroupOptions = SecurityGroupOptions()
    #: Whether ``kind`` came from the type annotation (else from default_load_balancer_type: a
    #: Service keeps the kind of load balancer it has, see AWSProvider.plan).
    kind_explicit: bool = False
    #: The Service's annotations of this namespace, to resolve it again as the other kind.
    annotations: tuple[tuple[str, str], ...] = ()

    def uses_tls(self, port: int, name: str) -> bool:
        if not self.ssl_cert:
            return False
        return "*" in self.ssl_ports or str(port) in self.ssl_ports or (bool(name) and name in self.ssl_ports)


_field = annotation_field


#: aws-load-balancer-controller's load balancer class (its ``--load-balancer-class`` default).
LBC_CLASS = "service.k8s.aws/nlb"


def implemented_elsewhere(service: Mapping[str, Any]) -> str | None:
    """Why ``service`` belongs to aws-load-balancer-controller (None: it is lbprov's to serve).

    cloud-provider-aws answers ImplementedElsewhere for ``aws-load-balancer-type: external`` or
    ``nlb-ip`` (``isLBExternal``), and aws-load-balancer-controller takes Services of its class
    ``service.k8s.aws/nlb``: such Services must be skipped without events, as upstream does. The
    core has no hook for this yet (see the provider README): ``AWSProvider.implemented_elsewhere``
    exposes this function for it, and resolve() still refuses such a Service if asked to serve it.
    """
    spec = service.get("spec") or {}
    if spec.get("loadBalancerClass") == LBC_CLASS:
        return f"spec.loadBalancerClass is {LBC_CLASS} (aws-load-balancer-controller)"
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    value = str(annotations.get(TYPE, "")).strip().lower()
    if value in ELSEWHERE_TYPES:
        return f"{TYPE}={value} is served by aws-load-balancer-controller"
    return None


def _kind(annotations: Mapping[str, str], default: LbKind = "nlb") -> LbKind:
    raw = annotations.get(TYPE)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in NLB_TYPES:
        return "nlb"
    if value in CLASSIC_TYPES:
        return "classic"
    accepted = ", ".join([*NLB_TYPES, *CLASSIC_TYPES])
    if value in ELSEWHERE_TYPES:
        raise InvalidService(
            _field(TYPE),
            f"{raw!r} means the Service is handled by aws-load-balancer-controller, not lbprov "
            f"(set spec.loadBalancerClass to route it there); lbprov accepts: {accepted}",
        )
    raise InvalidService(_field(TYPE), f"{raw!r} is not a load balancer type; accepted values: {accepted}")


def internal_of(value: str) -> bool:
    """Upstream's exact reading of ``aws-load-balancer-internal`` (cloud-provider-aws
    ``pkg/providers/v1/aws.go``, EnsureLoadBalancer: ``if internalAnnotation == "false" {internal =
    false} else if internalAnnotation != "" {internal = true}``): ``false`` or an empty value is
    internet-facing; *any other value* is internal, including ``0.0.0.0/0`` (the legacy documented
    value), ``False``, ``0`` and ``true``. No trimming and no case folding, as upstream."""
    return value not in ("false", "")


def _scheme(annotations: Mapping[str, str]) -> Literal["external", "internal"]:
    internal: bool | None = None
    if INTERNAL in annotations:
        internal = internal_of(annotations[INTERNAL])
    if SCHEME in annotations:
        raw = annotations[SCHEME].strip()
        if raw not in ("internal", "internet-facing"):
            raise InvalidService(_field(SCHEME), f"{raw!r}; accepted values: internal, internet-facing")
        from_scheme = raw == "internal"
        if internal is not None and internal != from_scheme:
            raise InvalidService(
                _field(SCHEME), f"{raw!r} contradicts {INTERNAL}={annotations[INTERNAL]!r}; set only one"
            )
        internal = from_scheme
    return "internal" if internal else "external"


def _int_in(annotations: Mapping[str, str], key: str, bounds: tuple[int, int]) -> int | None:
    return get_int(annotations, key, *bounds)


def _health(annotations: Mapping[str, str], kind: LbKind) -> HealthCheckOverrides:
    ranges = HC_RANGES[kind]
    protocol: Literal["TCP", "HTTP", "HTTPS"] | None = None
    if HC_PROTOCOL in annotations:
        raw = annotations[HC_PROTOCOL].strip().upper()
        if raw not in ("TCP", "HTTP", "HTTPS"):
            raise InvalidService(
                _field(HC_PROTOCOL), f"{annotations[HC_PROTOCOL]!r}; accepted values: TCP, HTTP, HTTPS"
            )
        protocol = raw  # type: ignore[assignment]
    port: int | Literal["traffic-port"] | None = None
    if HC_PORT in annotations:
        raw = annotations[HC_PORT].strip()
        port = "traffic-port" if raw == "traffic-port" else _int_in(annotations, HC_PORT, (1, 65535))
    path: str | None = None
    if HC_PATH in annotations:
        path = annotations[HC_PATH].strip()
        if not path.startswith("/") or len(path) > 1024 or any(c.isspace() for c in path):
            raise InvalidService(
                _field(HC_PATH), f"{path!r} is not a URL path; accepted values: a path starting with '/'"
            )
    overrides = HealthCheckOverrides(
        protocol=protocol,
        port=port,
        path=path,
        interval=_int_in(annotations, HC_INTERVAL, ranges["interval"]),
        timeout=_int_in(annotations, HC_TIMEOUT, ranges["timeout"]),
        healthy=_int_in(annotations, HC_HEALTHY, ranges["healthy"]),
        unhealthy=_int_in(annotations, HC_UNHEALTHY, ranges["unhealthy"]),
    )
    if overrides.interval and overrides.timeout:
        # Classic (ConfigureHealthCheck): the timeout must be less than the interval; ELBv2
        # (CreateTargetGroup/ModifyTargetGroup): at most the interval.
        if kind == "classic" and overrides.timeout >= overrides.interval:
            raise InvalidService(
                _field(HC_TIMEOUT),
                f"{overrides.timeout} must be less than the interval ({overrides.interval}) for a classic ELB",
            )
        if kind == "nlb" and overrides.timeout > overrides.interval:
            raise InvalidService(
                _field(HC_TIMEOUT), f"{overrides.timeout} must be at most the interval ({overrides.interval})"
            )
    if kind == "classic" and path is not None and len(f"HTTPS:65535{path}") > 1024:
        # The classic health check Target ("HTTP:port/path") is at most 1,024 characters.
        raise InvalidService(
            _field(HC_PATH),
            f"{len(path)} characters; a classic ELB takes at most 1013 (its target is <= 1024)",
        )
    return overrides


def _tags(annotations: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    tags = get_pairs(annotations, ADDITIONAL_TAGS, "k1=v1,k2=v2")
    for k, v in tags:
        if not _TAG_KEY.match(k):
            raise InvalidService(
                _field(ADDITIONAL_TAGS), f"tag key {k!r}: 1-128 letters, digits, spaces and _.:/=+-@"
            )
        if not _TAG_VALUE.match(v):
            raise InvalidService(
                _field(ADDITIONAL_TAGS),
                f"tag value {v!r} of {k!r}: 0-256 letters, digits, spaces and _.:/=+-@",
            )
        if k.startswith(_RESERVED_TAG_PREFIXES) or k in _RESERVED_TAG_KEYS:
            raise InvalidService(
                _field(ADDITIONAL_TAGS), f"tag key {k!r} is reserved (aws:*, ownership and lbprov.io/* tags)"
            )
        if " " in k:
            # lbprov records the keys it set in one tag value, space-separated (see desired.py).
            raise InvalidService(_field(ADDITIONAL_TAGS), f"tag key {k!r}: spaces are not supported in keys")
    # Every resource also carries the ownership tags and bookkeeping tags: stay under AWS's 50.
    if len(tags) > 40:
        raise InvalidService(_field(ADDITIONAL_TAGS), f"{len(tags)} tags; accepted: at most 40")
    if len(" ".join(k for k, _ in tags)) > 256:
        raise InvalidService(_field(ADDITIONAL_TAGS), "the tag keys together exceed 256 characters")
    return tags


#: Classic ELB: "Each load balancer can have a maximum of 10 tags" (ELB API reference, AddTags).
CLASSIC_MAX_TAGS = 10
#: Tags lbprov itself puts on a classic ELB: ownership (cluster, service name, UID, managed-by,
#: cluster id), the kind, and the list of additional tag keys.
CLASSIC_OWN_TAGS = 7


def _labels(annotations: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    labels = get_pairs(annotations, TARGET_NODE_LABELS, "label1=value1,label2=value2")
    for k, v in labels:
        if not _LABEL_KEY.match(k) or not _LABEL_VALUE.match(v):
            raise InvalidService(_field(TARGET_NODE_LABELS), f"{k}={v} is not a valid label selector")
    return labels


def _ssl(annotations: Mapping[str, str]) -> tuple[str | None, tuple[str, ...]]:
    cert = annotations.get(SSL_CERT, "").strip() or None
    ports_raw = annotations.get(SSL_PORTS)
    if cert is None:
        if ports_raw is not None and ports_raw.strip():
            raise InvalidService(
                _field(SSL_PORTS), f"set, but {SSL_CERT} is missing; add the certificate ARN"
            )
        return None, ()
    if not _CERT_ARN.match(cert):
        raise InvalidService(
            _field(SSL_CERT),
            f"{cert!r} is not a certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)",
        )
    if ports_raw is None or ports_raw.strip() in ("", "*"):
        return cert, ("*",)
    ports = tuple(sorted({p.strip() for p in ports_raw.split(",") if p.strip()}))
    for p in ports:
        if p.isdigit() and not 1 <= int(p) <= 65535:
            raise InvalidService(
                _field(SSL_PORTS), f"{p!r}; accepted values: '*', port numbers or port names"
            )
    return cert, ports


def provider_id_instance(provider_id: str) -> str | None:
    """Instance ID of an AWS providerID (``aws:///<zone>/i-…``, ``aws:////i-…`` or ``i-…``)."""
    if provider_id.startswith("aws://"):
        rest = provider_id[len("aws://") :]
        last = rest.rstrip("/").rsplit("/", 1)[-1]
    elif "/" not in provider_id:
        last = provider_id
    else:
        return None
    return last if _INSTANCE_ID.match(last) else None


def _targets(intent: Intent, labels: tuple[tuple[str, str], ...]) -> tuple[Target, ...]:
    targets = intent.targets
    if labels:
        targets = tuple(t for t in targets if all(t.label(k) == v for k, v in labels))
        if intent.targets and not targets:
            wanted = ",".join(f"{k}={v}" for k, v in labels)
            raise InvalidService(_field(TARGET_NODE_LABELS), f"no eligible node has the labels {wanted}")
    parsed = tuple(t for t in targets if provider_id_instance(t.provider_id))
    if targets and not parsed:
        examples = ", ".join(repr(t.provider_id) for t in targets[:3])
        raise InvalidService(
            "nodes[].spec.providerID",
            f"no node has an AWS providerID (got {examples}); expected aws:///<zone>/i-<id>",
        )
    return parsed


def resolve(intent: Intent, annotations: Mapping[str, str], default_kind: LbKind = "nlb") -> Intent:
    """Validate the AWS annotations and the spec fields AWS cannot honour; return the resolved intent.
    ``default_kind``: the kind without a type annotation (the default_load_balancer_type setting)."""
    kind = _kind(annotations, default_kind)  # first: a Service for aws-load-balancer-controller says so
    check_all(annotations)  # every other key of the namespace: implemented or refused, never ignored
    scheme = _scheme(annotations)
    if intent.requested_ip:
        raise InvalidService(
            "spec.loadBalancerIP",
            "AWS load balancers get their addresses from AWS; remove spec.loadBalancerIP",
        )
    subnets = tuple(s.strip() for s in annotations.get(SUBNETS, "").split(",") if s.strip())
    health = _health(annotations, kind)
    proxy = False
    if PROXY_PROTOCOL in annotations:
        if annotations[PROXY_PROTOCOL].strip() != "*":
            raise InvalidService(
                _field(PROXY_PROTOCOL), f"{annotations[PROXY_PROTOCOL]!r}; accepted values: *"
            )
        proxy = True
    cross_zone = False
    if CROSS_ZONE in annotations:
        parsed = parse_bool(annotations[CROSS_ZONE].strip())
        if parsed is None:
            raise InvalidService(
                _field(CROSS_ZONE), f"{annotations[CROSS_ZONE]!r}; accepted values: true, false"
            )
        cross_zone = parsed
    cert, ssl_ports = _ssl(annotations)
    labels = _labels(annotations)
    options = AWSOptions(
        kind=kind,
        subnets=subnets,
        health=health,
        proxy_protocol=proxy,
        cross_zone=cross_zone,
        additional_tags=_tags(annotations),
        ssl_cert=cert,
        ssl_ports=ssl_ports,
        target_node_labels=labels,
        groups=sg_options.parse(annotations, kind),
        kind_explicit=TYPE in annotations,
        annotations=tuple(sorted((k, v) for k, v in annotations.items() if k.startswith(PREFIX))),
    )
    if kind == "classic":
        if len(options.additional_tags) > CLASSIC_MAX_TAGS - CLASSIC_OWN_TAGS:
            raise InvalidService(
                _field(ADDITIONAL_TAGS),
                f"{len(options.additional_tags)} tags; a classic ELB takes {CLASSIC_MAX_TAGS} tags, "
                f"{CLASSIC_OWN_TAGS} of them lbprov's: accepted at most {CLASSIC_MAX_TAGS - CLASSIC_OWN_TAGS}",
            )
        for i, port in enumerate(intent.ports):
            if port.protocol != "TCP":
                raise InvalidService(
                    f"spec.ports[{i}].protocol",
                    f"{port.protocol} is not supported by a classic ELB; "
                    "accepted values: TCP (use the default NLB for UDP)",
                )
        if intent.session_affinity:
            raise InvalidService(
                "spec.sessionAffinity",
                "ClientIP is not supported by a classic ELB with TCP listeners; "
                "accepted values: None (or use the default NLB)",
            )
    else:
        numbers: dict[int, int] = {}
        for i, port in enumerate(intent.ports):
            if port.port in numbers and intent.ports[numbers[port.port]].node_port != port.node_port:
                raise InvalidService(
                    f"spec.ports[{i}].nodePort",
                    f"TCP and UDP on port {port.port} share one NLB listener (TCP_UDP), which forwards "
                    "to one NodePort: give both ports the same nodePort",
                )
            numbers[port.port] = i
    if kind == "nlb" and cert:
        for i, port in enumerate(intent.ports):
            if port.protocol == "UDP" and options.uses_tls(port.port, port.name) and "*" not in ssl_ports:
                raise InvalidService(_field(SSL_PORTS), f"spec.ports[{i}] is UDP and cannot use TLS")
    return dataclasses.replace(intent, scheme=scheme, options=options, targets=_targets(intent, labels))
