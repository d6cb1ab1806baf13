"""The AWS annotations: parsed, validated, frozen.

Accepts upstream's names (``service.beta.kubernetes.io/aws-load-balancer-*``) so that users can
migrate from cloud-provider-aws. Every error names the annotation and the accepted values, and no
cloud call is made here (``AWSProvider.resolve`` is pure).

Default load balancer kind: **NLB** (DESIGN.md), unlike upstream cloud-provider-aws whose default is
a classic ELB. ``aws-load-balancer-type: classic`` (or ``clb``/``elb``) asks for a classic ELB.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from lbprov import naming
from lbprov.annotations import annotation_field, get_int, get_pairs
from lbprov.intent import parse_bool
from lbprov.model import Intent, InvalidService, Target
from lbprov_aws import attributes, sg_options
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
SSL_POLICY = PREFIX + "ssl-negotiation-policy"
ALPN_POLICY = PREFIX + "alpn-policy"
SUCCESS_CODES = PREFIX + "healthcheck-success-codes"
LB_NAME = PREFIX + "name"
EIP_ALLOCATIONS = PREFIX + "eip-allocations"
PRIVATE_IPV4 = PREFIX + "private-ipv4-addresses"
BACKEND_PROTOCOL = PREFIX + "backend-protocol"
IP_ADDRESS_TYPE = PREFIX + "ip-address-type"
IDLE_TIMEOUT = PREFIX + "connection-idle-timeout"
DRAINING = PREFIX + "connection-draining-enabled"
DRAINING_TIMEOUT = PREFIX + "connection-draining-timeout"
ACCESS_LOG = PREFIX + "access-log-enabled"
ACCESS_LOG_INTERVAL = PREFIX + "access-log-emit-interval"
ACCESS_LOG_BUCKET = PREFIX + "access-log-s3-bucket-name"
ACCESS_LOG_PREFIX = PREFIX + "access-log-s3-bucket-prefix"
#: The classic-only annotations (cloud-provider-aws applies them to classic ELBs only).
CLASSIC_ONLY = (
    IDLE_TIMEOUT,
    DRAINING,
    DRAINING_TIMEOUT,
    ACCESS_LOG,
    ACCESS_LOG_INTERVAL,
    ACCESS_LOG_BUCKET,
    ACCESS_LOG_PREFIX,
)
#: cloud-provider-aws ``backendProtocolMapping``: back-end protocol -> the TLS listener's front end.
BACKEND_TO_FRONTEND = {"https": "https", "http": "https", "ssl": "ssl", "tcp": "ssl"}

#: aws-load-balancer-controller's ``alpn-policy`` values (the NLB TLS listener's ALPN policies).
ALPN_POLICIES = ("HTTP1Only", "HTTP2Only", "HTTP2Optional", "HTTP2Preferred", "None")
#: The classic ELB's predefined SSL negotiation policies (ELB user guide, "Predefined SSL security
#: policies for Classic Load Balancers"; the TLS13 policies are for ALB/NLB only).
CLASSIC_SSL_POLICIES = (
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-2015-05",
    "ELBSecurityPolicy-2015-03",
    "ELBSecurityPolicy-2015-02",
    "ELBSecurityPolicy-2014-10",
    "ELBSecurityPolicy-2014-01",
    "ELBSecurityPolicy-2011-08",
)
#: A predefined ELB security policy name (the list grows; the cloud checks the name itself).
_POLICY_NAME = re.compile(r"^ELBSecurityPolicy-[A-Za-z0-9-]{1,100}$")
#: NLB health-check success codes: a code, a comma list or a range, each 200-599 (ELBv2 API
#: reference, Matcher: "For Network Load Balancers ... values from 200 to 599").
_CODES = re.compile(r"^[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*$")

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


class ClassicAttributes(BaseModel):
    """A classic ELB's attributes as cloud-provider-aws sets them (``getLoadBalancerAttributes``):
    every one reconciled, to these defaults when its annotation is absent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idle_timeout: int = 60
    draining: bool = False
    draining_timeout: int = 300
    access_log: bool = False
    access_log_interval: int = 60
    access_log_bucket: str = ""
    access_log_prefix: str = ""


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
    #: The user's ``attributes`` / ``target-group-attributes`` (attributes.py), validated.
    lb_attributes: tuple[tuple[str, str], ...] = ()
    target_group_attributes: tuple[tuple[str, str], ...] = ()
    #: TLS listeners: ``ssl-negotiation-policy`` (None: lbprov's default, desired.SSL_POLICY) and
    #: ``alpn-policy`` (None: not set, AWS's ``None``).
    ssl_policy: str | None = None
    alpn_policy: str | None = None
    #: ``healthcheck-success-codes`` for HTTP/HTTPS health checks (None: AWS's 200-399).
    success_codes: str | None = None
    #: ``load-balancer-name``: the NLB's name instead of the UID-derived one (None: derived).
    name: str | None = None
    #: ``eip-allocations`` (internet-facing) / ``private-ipv4-addresses`` (internal): one per subnet,
    #: given to the NLB's subnets through SubnetMappings (desired.subnet_mappings pairs them).
    eip_allocations: tuple[str, ...] = ()
    private_ipv4: tuple[str, ...] = ()
    #: Classic ELB: ``backend-protocol`` (None: not set) and the attributes of
    #: ModifyLoadBalancerAttributes, with cloud-provider-aws's defaults when not set.
    backend_protocol: Literal["http", "https", "ssl", "tcp"] | None = None
    classic: ClassicAttributes = ClassicAttributes()
    #: Classic-only annotations of a Service without the type annotation that resolved as an NLB:
    #: refused by the plan if the Service does get an NLB (options._classic).
    classic_only: tuple[str, ...] = ()
    #: ``dualstack``: the NLB gets IPv4 and IPv6 addresses (spec.ipFamilies with both, or
    #: ``ip-address-type: dualstack``).
    ip_address_type: Literal["ipv4", "dualstack"] = "ipv4"
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


def _tls_policies(
    annotations: Mapping[str, str], kind: LbKind, cert: str | None
) -> tuple[str | None, str | None]:
    """``ssl-negotiation-policy`` and ``alpn-policy``: both need TLS listeners (``ssl-cert``);
    ALPN is an NLB feature."""
    policy = annotations.get(SSL_POLICY, "").strip() or None
    alpn = annotations.get(ALPN_POLICY, "").strip() or None
    if policy is not None:
        if cert is None:
            raise InvalidService(
                _field(SSL_POLICY), f"set, but {SSL_CERT} is missing (no TLS listener to apply it to)"
            )
        if kind == "classic" and policy not in CLASSIC_SSL_POLICIES:
            raise InvalidService(
                _field(SSL_POLICY),
                f"{policy!r} is not a predefined classic ELB policy; accepted: {', '.join(sorted(CLASSIC_SSL_POLICIES))}",
            )
        if not _POLICY_NAME.match(policy):
            raise InvalidService(
                _field(SSL_POLICY),
                f"{policy!r} is not a predefined ELB security policy name (ELBSecurityPolicy-...), "
                "e.g. ELBSecurityPolicy-TLS13-1-2-2021-06",
            )
    if alpn is not None:
        if kind == "classic":
            raise InvalidService(
                _field(ALPN_POLICY), "ALPN policies are for NLB TLS listeners, not a classic ELB"
            )
        if cert is None:
            raise InvalidService(
                _field(ALPN_POLICY), f"set, but {SSL_CERT} is missing (ALPN needs TLS listeners)"
            )
        if alpn not in ALPN_POLICIES:
            raise InvalidService(
                _field(ALPN_POLICY), f"{alpn!r}; accepted values: {', '.join(ALPN_POLICIES)}"
            )
    return policy, alpn


def _success_codes(
    annotations: Mapping[str, str], kind: LbKind, intent: Intent, health: HealthCheckOverrides
) -> str | None:
    """``healthcheck-success-codes``: HTTP/HTTPS health checks only (the Local policy's, or an
    explicit ``healthcheck-protocol``); refused with a TCP check, and on a classic ELB."""
    if SUCCESS_CODES not in annotations:
        return None
    raw = annotations[SUCCESS_CODES].strip().replace(" ", "")
    if kind == "classic":
        raise InvalidService(_field(SUCCESS_CODES), "a classic ELB health check has no success codes")
    protocol = health.protocol or (intent.health_check.protocol if intent.health_check else "TCP")
    if protocol not in ("HTTP", "HTTPS"):
        raise InvalidService(
            _field(SUCCESS_CODES),
            f"success codes need an HTTP or HTTPS health check, and this one is {protocol} "
            f"(set {HC_PROTOCOL}: HTTP, or remove {SUCCESS_CODES})",
        )
    bad = not _CODES.match(raw)
    for part in raw.split(",") if not bad else ():
        lo, _, hi = part.partition("-")
        if not 200 <= int(lo) <= 599 or (hi and not int(lo) < int(hi) <= 599):
            bad = True
    if bad:
        raise InvalidService(
            _field(SUCCESS_CODES),
            f"{annotations[SUCCESS_CODES]!r}; accepted values: HTTP codes 200-599 as a code, a list "
            "(200,202) or a range (200-299)",
        )
    return raw


#: ELBv2 CreateLoadBalancer Name: "unique per region per account, can have a maximum of 32
#: characters, must contain only alphanumeric characters or hyphens, must not begin or end with a
#: hyphen, and must not begin with 'internal-'".
_LB_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")


def _lb_name(annotations: Mapping[str, str], kind: LbKind) -> str | None:
    """``aws-load-balancer-name`` (aws-load-balancer-controller: NLB only, at most 32 characters)."""
    if LB_NAME not in annotations:
        return None
    name = annotations[LB_NAME].strip()
    if kind == "classic":
        raise InvalidService(
            _field(LB_NAME), "a classic ELB keeps its UID-derived name; the name is for an NLB"
        )
    if not _LB_NAME.match(name) or name.startswith("internal-"):
        raise InvalidService(
            _field(LB_NAME),
            f"{name!r}: AWS load balancer names are 1-32 letters, digits and hyphens, neither starting "
            "nor ending with a hyphen, and not starting with 'internal-'",
        )
    return name


_EIP = re.compile(r"^eipalloc-[0-9a-f]{8,17}$")


def _static_ips(
    annotations: Mapping[str, str], kind: LbKind, scheme: str, subnets: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``eip-allocations`` and ``private-ipv4-addresses`` (aws-load-balancer-controller's syntax:
    comma-separated; internet-facing / internal NLBs only; as many as the load balancer's subnets,
    checked here against the ``subnets`` annotation and at plan time against discovered ones)."""
    out: list[tuple[str, ...]] = []
    for key, wants in ((EIP_ALLOCATIONS, "external"), (PRIVATE_IPV4, "internal")):
        items = tuple(v.strip() for v in annotations.get(key, "").split(",") if v.strip())
        out.append(items)
        if key not in annotations:
            continue
        if kind == "classic":
            raise InvalidService(_field(key), "static addresses are for an NLB; a classic ELB has none")
        if not items:
            raise InvalidService(_field(key), "empty; list one address per subnet, comma-separated")
        if scheme != wants:
            need = "internet-facing" if wants == "external" else "internal"
            raise InvalidService(
                _field(key),
                f"only for an {need} NLB, and this one is {'internal' if scheme == 'internal' else 'internet-facing'}",
            )
        for item in items:
            ok = _EIP.match(item) if key == EIP_ALLOCATIONS else _ipv4(item)
            if not ok:
                what = (
                    "an Elastic IP allocation ID (eipalloc-...)"
                    if key == EIP_ALLOCATIONS
                    else "an IPv4 address"
                )
                raise InvalidService(_field(key), f"{item!r} is not {what}")
        if len(set(items)) != len(items):
            raise InvalidService(_field(key), "an address is listed twice")
        if subnets and len(items) != len(subnets):
            raise InvalidService(
                _field(key),
                f"{len(items)} addresses for {len(subnets)} subnets in {SUBNETS}; give one per subnet",
            )
    return out[0], out[1]


def _ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


def _classic(
    annotations: Mapping[str, str], kind: LbKind, cert: str | None
) -> tuple[Any, ClassicAttributes, tuple[str, ...]]:
    """``backend-protocol`` and the classic attribute annotations (cloud-provider-aws syntax), and
    the classic-only keys an NLB would have to refuse. With an explicit NLB type they are refused
    here; without the type annotation they are kept for the plan (the Service may keep a classic
    ELB it has, AWSProvider.plan), which refuses them if the Service gets an NLB after all."""
    backend = None
    if BACKEND_PROTOCOL in annotations:
        raw = annotations[BACKEND_PROTOCOL].strip().lower()
        if raw not in BACKEND_TO_FRONTEND:
            raise InvalidService(
                _field(BACKEND_PROTOCOL),
                f"{annotations[BACKEND_PROTOCOL]!r}; accepted values: http, https, ssl, tcp",
            )
        backend = raw
    classic_only = [k for k in CLASSIC_ONLY if k in annotations]
    if backend not in (None, "tcp"):
        classic_only.insert(0, BACKEND_PROTOCOL)
    if kind == "nlb" and classic_only and TYPE in annotations:
        raise InvalidService(_field(classic_only[0]), nlb_refuses(classic_only[0]))
    if kind == "nlb" and not classic_only:
        return backend, ClassicAttributes(), ()
    deferred = tuple(classic_only) if kind == "nlb" else ()
    from lbprov.annotations import get_bool

    interval = get_int(annotations, ACCESS_LOG_INTERVAL, 5, 60)
    if interval is not None and interval not in (5, 60):
        raise InvalidService(_field(ACCESS_LOG_INTERVAL), f"{interval}; accepted values: 5, 60 (minutes)")
    bucket = annotations.get(ACCESS_LOG_BUCKET, "").strip()
    log = get_bool(annotations, ACCESS_LOG, False)
    if log and not bucket:
        raise InvalidService(_field(ACCESS_LOG), f"true needs {ACCESS_LOG_BUCKET}")
    if bucket and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise InvalidService(_field(ACCESS_LOG_BUCKET), f"{bucket!r} is not an S3 bucket name")
    prefix = annotations.get(ACCESS_LOG_PREFIX, "").strip()
    attrs = ClassicAttributes(
        idle_timeout=get_int(annotations, IDLE_TIMEOUT, 1, 4000, unit="seconds") or 60,
        draining=get_bool(annotations, DRAINING, False),
        draining_timeout=get_int(annotations, DRAINING_TIMEOUT, 1, 3600, unit="seconds") or 300,
        access_log=log,
        access_log_interval=interval or 60,
        access_log_bucket=bucket,
        access_log_prefix=prefix,
    )
    return backend, attrs, deferred


def nlb_refuses(key: str) -> str:
    """Why an NLB refuses a classic-only annotation."""
    if key == BACKEND_PROTOCOL:
        return f"this value is for a classic ELB (set {TYPE}: classic); an NLB's back ends are TCP (accepted: tcp)"
    return (
        "a classic ELB attribute (cloud-provider-aws applies it to classic ELBs only); for an NLB use "
        f"{attributes.LB_ATTRIBUTES_KEY} (access_logs.s3.*) or remove it"
    )


def _ip_address_type(
    annotations: Mapping[str, str], kind: LbKind, intent: Intent
) -> Literal["ipv4", "dualstack"]:
    """spec.ipFamilies (DESIGN.md "IP families") and ``ip-address-type``: an NLB serves IPv4, or
    IPv4 and IPv6 as a dualstack NLB; it cannot be IPv6-only, and a classic ELB is IPv4 only. A
    PreferDualStack Service is served IPv4 where dual-stack is not possible; RequireDualStack and
    IPv6-only Services are refused, never given an IPv4-only load balancer."""
    families = intent.ip_families
    dual = set(families) == {"IPv4", "IPv6"}
    annotated = None
    if IP_ADDRESS_TYPE in annotations:
        annotated = annotations[IP_ADDRESS_TYPE].strip().lower()
        if annotated not in ("ipv4", "dualstack"):
            raise InvalidService(
                _field(IP_ADDRESS_TYPE), f"{annotations[IP_ADDRESS_TYPE]!r}; accepted values: ipv4, dualstack"
            )
    fields = f"spec.ipFamilies {list(families)} ({intent.ip_family_policy})"
    if families == ("IPv6",):
        what = (
            "a classic ELB is IPv4 only"
            if kind == "classic"
            else "an NLB cannot be IPv6-only (it is IPv4 or dualstack)"
        )
        raise InvalidService("spec.ipFamilies", f"{fields}: {what}; use [IPv4, IPv6] for a dualstack NLB")
    if kind == "classic":
        if annotated == "dualstack":
            raise InvalidService(
                _field(IP_ADDRESS_TYPE), "a classic ELB is IPv4 only; dualstack needs an NLB"
            )
        if dual and intent.ip_family_policy == "RequireDualStack":
            raise InvalidService(
                "spec.ipFamilies", f"{fields}: a classic ELB is IPv4 only; use an NLB for dual-stack"
            )
        if families[0] != "IPv4":
            raise InvalidService("spec.ipFamilies", f"{fields}: a classic ELB is IPv4 only")
        return "ipv4"
    if annotated == "ipv4" and dual and intent.ip_family_policy == "RequireDualStack":
        raise InvalidService(
            _field(IP_ADDRESS_TYPE), f"ipv4 contradicts {fields}; remove it or set dualstack"
        )
    if annotated == "ipv4":
        if families[0] == "IPv6":
            raise InvalidService(_field(IP_ADDRESS_TYPE), f"ipv4 contradicts {fields} (IPv6 primary)")
        return "ipv4"
    return "dualstack" if dual or annotated == "dualstack" else "ipv4"


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
    ssl_policy, alpn = _tls_policies(annotations, kind, cert)
    eips, private_ips = _static_ips(annotations, kind, scheme, subnets)
    backend, classic_attrs, classic_only = _classic(annotations, kind, cert)
    address_type = _ip_address_type(annotations, kind, intent)
    labels = _labels(annotations)
    lb_attrs = attributes.load_balancer_attributes(annotations)
    tg_attrs = attributes.target_group_attributes(annotations)
    if kind == "classic" and (lb_attrs or tg_attrs):
        key = attributes.LB_ATTRIBUTES_KEY if lb_attrs else attributes.TG_ATTRIBUTES_KEY
        raise InvalidService(
            _field(key), "ELBv2 attributes apply to an NLB, not a classic ELB (use the classic annotations)"
        )
    attributes.agree(
        dict(lb_attrs),
        "load_balancing.cross_zone.enabled",
        CROSS_ZONE,
        cross_zone if CROSS_ZONE in annotations else None,
        attributes.LB_ATTRIBUTES_KEY,
    )
    attributes.agree(dict(tg_attrs), "proxy_protocol_v2.enabled", PROXY_PROTOCOL, True if proxy else None)
    attributes.agree(
        dict(tg_attrs),
        "stickiness.enabled",
        "spec.sessionAffinity: ClientIP",
        True if intent.session_affinity else None,
    )
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
        lb_attributes=lb_attrs,
        target_group_attributes=tg_attrs,
        ssl_policy=ssl_policy,
        alpn_policy=alpn,
        success_codes=_success_codes(annotations, kind, intent, health),
        name=_lb_name(annotations, kind),
        eip_allocations=eips,
        private_ipv4=private_ips,
        backend_protocol=backend,
        classic=classic_attrs,
        classic_only=classic_only,
        ip_address_type=address_type,
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
