"""The Azure annotations lbprov honours, validated into a frozen :class:`AzureOptions`.

Names are upstream cloud-provider-azure's (``service.beta.kubernetes.io/azure-*``) so Services
migrate unchanged. Every value is checked here, before any cloud call, and a bad one raises
:class:`~lbprov.model.InvalidService` naming the annotation and the accepted values. An
``azure-*`` annotation lbprov does not implement is an error too: silently ignoring an option the
user asked for would give them a load balancer other than the one they described.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lbprov.annotations import annotation_field, get_bool, get_int, get_pairs
from lbprov.model import Intent, InvalidService

PREFIX = "service.beta.kubernetes.io/azure-"
INTERNAL = PREFIX + "load-balancer-internal"
INTERNAL_SUBNET = PREFIX + "load-balancer-internal-subnet"
IPV4 = PREFIX + "load-balancer-ipv4"
PIP_NAME = PREFIX + "pip-name"
DNS_LABEL = PREFIX + "dns-label-name"
PIP_TAGS = PREFIX + "pip-tags"
RESOURCE_GROUP = PREFIX + "load-balancer-resource-group"
IDLE_TIMEOUT = PREFIX + "load-balancer-tcp-idle-timeout"
DISABLE_TCP_RESET = PREFIX + "load-balancer-disable-tcp-reset"
PROBE_PROTOCOL = PREFIX + "load-balancer-health-probe-protocol"
PROBE_INTERVAL = PREFIX + "load-balancer-health-probe-interval"
PROBE_COUNT = PREFIX + "load-balancer-health-probe-num-of-probe"
PROBE_PATH = PREFIX + "load-balancer-health-probe-request-path"
DISABLE_NSG_RULE = PREFIX + "disable-load-balancer-nsg-rule"
DISABLE_FLOATING_IP = PREFIX + "disable-load-balancer-floating-ip"

SUPPORTED = (
    INTERNAL,
    INTERNAL_SUBNET,
    IPV4,
    PIP_NAME,
    DNS_LABEL,
    PIP_TAGS,
    RESOURCE_GROUP,
    IDLE_TIMEOUT,
    DISABLE_TCP_RESET,
    PROBE_PROTOCOL,
    PROBE_INTERVAL,
    PROBE_COUNT,
    PROBE_PATH,
    DISABLE_NSG_RULE,
    DISABLE_FLOATING_IP,
)

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
_RG = re.compile(r"^[-\w._()]{1,90}$")
_DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
_BAD_TAG_CHARS = set("<>%&\\?/")
#: Tag keys lbprov manages itself; pip-tags may not override them.
_RESERVED_TAG_PREFIXES = ("kubernetes.io_", "lbprov.io_")


class AzureOptions(BaseModel):
    """The validated Azure options of one Service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    internal: bool = False
    internal_subnet: str | None = None
    #: Requested frontend address: annotation ``…-ipv4`` or ``spec.loadBalancerIP``.
    ipv4: str | None = None
    pip_name: str | None = None
    pip_resource_group: str | None = None
    dns_label: str | None = None
    pip_tags: tuple[tuple[str, str], ...] = ()
    idle_timeout_minutes: int = 4
    tcp_reset: bool = True
    probe_protocol: Literal["Tcp", "Http", "Https"] | None = None
    probe_interval_seconds: int = 5
    probe_count: int = 2
    probe_path: str | None = None
    nsg_rules: bool = True
    #: On by default, as upstream (rules keep the service port; NSG rules target the frontend IP).
    floating_ip: bool = True


def _int(annotations: Mapping[str, str], key: str, default: int, low: int, high: int, unit: str) -> int:
    value = get_int(annotations, key, low, high, unit=unit)
    return default if value is None else value


def _tags(annotations: Mapping[str, str], key: str) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}
    for name, value in get_pairs(annotations, key, "key=value[,key=value]"):
        if len(name) > 512 or set(name) & _BAD_TAG_CHARS:
            raise InvalidService(
                annotation_field(key),
                f"tag name {name!r} is invalid; Azure tag names have at most 512 characters and none of <>%&\\?/",
            )
        if len(value) > 256:
            raise InvalidService(annotation_field(key), f"the value of tag {name!r} is longer than 256")
        if name.startswith(_RESERVED_TAG_PREFIXES):
            raise InvalidService(
                annotation_field(key), f"tag {name!r} is managed by lbprov; use another tag name"
            )
        out[name] = value
    if len(out) > 40:
        raise InvalidService(annotation_field(key), "at most 40 tags (Azure allows 50 per resource)")
    return tuple(sorted(out.items()))


#: Upstream's probe rules (cloud-provider-azure ``azure_loadbalancer_healthprobe.go``, citing the
#: ARM Probe reference): at least 2 probes, an interval of at least 5 s, interval x probes < 120 s.
MIN_PROBES = 2
MIN_PROBE_INTERVAL = 5
MAX_PROBE_TOTAL = 120


def probe_timing(
    annotations: Mapping[str, str],
    interval_key: str,
    count_key: str,
    default_interval: int = 5,
    default_count: int = 2,
) -> tuple[int, int]:
    """(interval seconds, number of probes) from two annotations, validated as upstream does."""
    interval = _int(
        annotations, interval_key, default_interval, MIN_PROBE_INTERVAL, MAX_PROBE_TOTAL - 1, "seconds"
    )
    count = _int(
        annotations, count_key, default_count, MIN_PROBES, MAX_PROBE_TOTAL // MIN_PROBE_INTERVAL, "probes"
    )
    if interval * count >= MAX_PROBE_TOTAL:
        key = count_key if count_key in annotations else interval_key
        raise InvalidService(
            annotation_field(key),
            f"interval {interval} s x {count} probes = {interval * count} s; the total must be below "
            f"{MAX_PROBE_TOTAL} s (as cloud-provider-azure requires): lower {interval_key} or {count_key}",
        )
    return interval, count


def parse_options(intent: Intent, annotations: Mapping[str, str]) -> AzureOptions:
    """Validate the Service's Azure annotations (pure; no cloud call)."""
    for key in sorted(annotations):
        if key.startswith(PREFIX) and key not in SUPPORTED:
            raise InvalidService(
                annotation_field(key),
                "this Azure annotation is not supported by lbprov; supported: " + ", ".join(SUPPORTED),
            )
    a = {k: str(v) for k, v in annotations.items()}
    internal = get_bool(a, INTERNAL, False)
    subnet = a.get(INTERNAL_SUBNET, "").strip() or None
    if subnet is not None:
        if not internal:
            raise InvalidService(
                f"metadata.annotations[{INTERNAL_SUBNET}]",
                f"applies to internal Services only; set {INTERNAL}: 'true'",
            )
        if not _NAME.match(subnet):
            raise InvalidService(
                f"metadata.annotations[{INTERNAL_SUBNET}]",
                f"{subnet!r} is not a subnet name; accepted: 1-80 letters, digits, '-', '_', '.'",
            )
    ipv4 = a.get(IPV4, "").strip() or None
    if ipv4 is not None:
        try:
            parsed = ipaddress.ip_address(ipv4)
        except ValueError:
            parsed = None
        if parsed is None or parsed.version != 4:
            raise InvalidService(
                f"metadata.annotations[{IPV4}]", f"{ipv4!r}; accepted values: an IPv4 address"
            )
        if intent.requested_ip and intent.requested_ip != ipv4:
            raise InvalidService(
                f"metadata.annotations[{IPV4}]",
                f"{ipv4} differs from spec.loadBalancerIP {intent.requested_ip}; set only one of them",
            )
    elif intent.requested_ip:
        if ipaddress.ip_address(intent.requested_ip).version != 4:
            raise InvalidService("spec.loadBalancerIP", f"{intent.requested_ip}: only IPv4 is supported")
        ipv4 = intent.requested_ip
    pip_name = a.get(PIP_NAME, "").strip() or None
    if pip_name is not None:
        if internal:
            raise InvalidService(f"metadata.annotations[{PIP_NAME}]", "an internal Service has no public IP")
        if not _NAME.match(pip_name):
            raise InvalidService(
                f"metadata.annotations[{PIP_NAME}]",
                f"{pip_name!r} is not a public IP name; accepted: 1-80 letters, digits, '-', '_', '.'",
            )
    rg = a.get(RESOURCE_GROUP, "").strip() or None
    if rg is not None and (not _RG.match(rg) or rg.endswith(".")):
        raise InvalidService(
            f"metadata.annotations[{RESOURCE_GROUP}]",
            f"{rg!r} is not a resource group name; accepted: 1-90 letters, digits, '-', '_', '.', '(', ')'",
        )
    dns = a.get(DNS_LABEL, "").strip() or None
    if dns is not None:
        if internal:
            raise InvalidService(f"metadata.annotations[{DNS_LABEL}]", "an internal Service has no public IP")
        if not _DNS_LABEL.match(dns):
            raise InvalidService(
                f"metadata.annotations[{DNS_LABEL}]",
                f"{dns!r}; accepted: 3-63 lowercase letters, digits and '-', starting with a letter",
            )
    pip_tags = _tags(a, PIP_TAGS)
    if pip_tags and internal:
        raise InvalidService(f"metadata.annotations[{PIP_TAGS}]", "an internal Service has no public IP")
    proto_raw = a.get(PROBE_PROTOCOL, "").strip()
    probe_protocol: Literal["Tcp", "Http", "Https"] | None = None
    if proto_raw:
        canonical = {"tcp": "Tcp", "http": "Http", "https": "Https"}.get(proto_raw.lower())
        if canonical is None:
            raise InvalidService(
                f"metadata.annotations[{PROBE_PROTOCOL}]", f"{proto_raw!r}; accepted values: Tcp, Http, Https"
            )
        probe_protocol = canonical  # type: ignore[assignment]
    path = a.get(PROBE_PATH, "").strip() or None
    if path is not None:
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise InvalidService(
                f"metadata.annotations[{PROBE_PATH}]", f"{path!r}; accepted: a URL path starting with '/'"
            )
        if probe_protocol == "Tcp":
            raise InvalidService(
                f"metadata.annotations[{PROBE_PATH}]",
                "a Tcp probe has no request path; set the protocol to Http or Https",
            )
    probe_interval, probe_count = probe_timing(a, PROBE_INTERVAL, PROBE_COUNT)
    opts = AzureOptions(
        internal=internal,
        internal_subnet=subnet,
        ipv4=ipv4,
        pip_name=pip_name,
        pip_resource_group=rg,
        dns_label=dns,
        pip_tags=pip_tags,
        idle_timeout_minutes=_int(a, IDLE_TIMEOUT, 4, 4, 100, "minutes"),
        tcp_reset=not get_bool(a, DISABLE_TCP_RESET, False),
        probe_protocol=probe_protocol,
        probe_interval_seconds=probe_interval,
        probe_count=probe_count,
        probe_path=path,
        nsg_rules=not get_bool(a, DISABLE_NSG_RULE, False),
        floating_ip=not get_bool(a, DISABLE_FLOATING_IP, False),
    )
    if len(intent.ports) > 250:
        raise InvalidService(
            "spec.ports", f"{len(intent.ports)} ports; an Azure load balancer holds at most 250 rules"
        )
    return opts
