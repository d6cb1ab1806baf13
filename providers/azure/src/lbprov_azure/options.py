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
from lbprov_azure.annotation_keys import PORT_KEY, PORT_PREFIX, in_namespace, refusal
from lbprov_azure.placement import MAX_RULES_PER_NIC

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
LB_CONFIGURATIONS = PREFIX + "load-balancer-configurations"
ALLOWED_SERVICE_TAGS = PREFIX + "allowed-service-tags"
ALLOWED_IP_RANGES = PREFIX + "allowed-ip-ranges"
DENY_ALL_EXCEPT = PREFIX + "deny-all-except-load-balancer-source-ranges"
PIP_PREFIX_ID = PREFIX + "pip-prefix-id"
PIP_IP_TAGS = PREFIX + "pip-ip-tags"
HA_PORTS = PREFIX + "load-balancer-enable-high-availability-ports"
ADDITIONAL_PUBLIC_IPS = PREFIX + "additional-public-ips"

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
_RG = re.compile(r"^[-\w._()]{1,90}$")
_DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
_BAD_TAG_CHARS = set("<>%&\\?/")
#: An NSG service tag as ARM spells them (``Internet``, ``AzureFrontDoor.Backend``, ``Storage.WestUS``)
_SERVICE_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
#: ``/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/publicIPPrefixes/<name>``
_PIP_PREFIX_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/publicIPPrefixes/[^/]+$",
    re.IGNORECASE,
)
#: Tag keys lbprov manages itself; pip-tags may not override them.
_RESERVED_TAG_PREFIXES = ("kubernetes.io_", "lbprov.io_")


ProbeProtocol = Literal["Tcp", "Http", "Https"]


class PortOptions(BaseModel):
    """Per-port options (``service.beta.kubernetes.io/port_<port>_*``) of one Service port number."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    port: int
    lb_rule: bool = True
    probe: bool = True
    probe_protocol: ProbeProtocol | None = None
    #: The probe's port, resolved: a Service port's NodePort, or the number given.
    probe_port: int | None = None
    probe_interval_seconds: int = 5
    probe_count: int = 2
    probe_path: str | None = None


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
    #: ``azure-load-balancer-configurations``: the public LB names (one per slot) the Service may use.
    lb_configurations: tuple[str, ...] = ()
    #: Only the ports that carry per-port annotations.
    ports: tuple[PortOptions, ...] = ()
    #: On by default, as upstream (rules keep the service port; NSG rules target the frontend IP).
    floating_ip: bool = True
    #: ``azure-allowed-service-tags``: one NSG allow rule per tag (source = the tag), as upstream.
    allowed_service_tags: tuple[str, ...] = ()
    #: ``azure-allowed-ip-ranges``: NSG sources (never together with spec.loadBalancerSourceRanges).
    allowed_ip_ranges: tuple[str, ...] = ()
    #: ``azure-deny-all-except-load-balancer-source-ranges``: a deny-all rule to the frontend, below
    #: the allow rules (only when source ranges are given, as upstream).
    deny_all_except_source_ranges: bool = False
    #: ``azure-pip-prefix-id``: the public IP prefix the Service's new public IP is taken from.
    pip_prefix_id: str | None = None
    #: ``azure-pip-ip-tags``: (ipTagType, tag) pairs on the Service's public IP.
    pip_ip_tags: tuple[tuple[str, str], ...] = ()
    #: ``azure-load-balancer-enable-high-availability-ports``: one rule of protocol All, port 0.
    ha_ports: bool = False
    #: ``azure-additional-public-ips``: more addresses of the Service (ingress and NSG destinations).
    additional_public_ips: tuple[str, ...] = ()

    def port(self, number: int) -> PortOptions | None:
        return next((p for p in self.ports if p.port == number), None)


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
        why = refusal(key) if in_namespace(key) else None
        if why is not None:
            raise InvalidService(annotation_field(key), f"not supported by lbprov: {why}")
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
    if ipv4 is not None and "IPv4" not in intent.ip_families:
        field = f"metadata.annotations[{IPV4}]" if a.get(IPV4, "").strip() else "spec.loadBalancerIP"
        raise InvalidService(
            field,
            f"{ipv4} is an IPv4 address and the Service has no IPv4 family (spec.ipFamilies "
            f"{list(intent.ip_families)})",
        )
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
    probe_protocol = _probe_protocol(a, PROBE_PROTOCOL)
    path = _probe_path(a, PROBE_PATH, probe_protocol)
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
        ports=_port_options(intent, a, probe_interval, probe_count),
        lb_configurations=_lb_configurations(a),
        floating_ip=not get_bool(a, DISABLE_FLOATING_IP, False),
        **_access_options(intent, a, internal),
        **_pip_options(a, internal, pip_name, ipv4),
        **_ha_options(intent, a, internal),
    )
    if len(intent.ports) > MAX_RULES_PER_NIC:
        raise InvalidService(
            "spec.ports",
            f"{len(intent.ports)} ports; a node can be in at most {MAX_RULES_PER_NIC} load-balancing rules",
        )
    return opts


#: ``health-probe-protocol`` values, any case, to ARM's spelling.
_PROBE_PROTOCOLS: dict[str, ProbeProtocol] = {"tcp": "Tcp", "http": "Http", "https": "Https"}


def _probe_protocol(a: Mapping[str, str], key: str) -> ProbeProtocol | None:
    raw = a.get(key, "").strip()
    if not raw:
        return None
    canonical = _PROBE_PROTOCOLS.get(raw.lower())
    if canonical is None:
        raise InvalidService(annotation_field(key), f"{raw!r}; accepted values: Tcp, Http, Https")
    return canonical


def _probe_path(a: Mapping[str, str], key: str, protocol: ProbeProtocol | None) -> str | None:
    path = a.get(key, "").strip() or None
    if path is None:
        return None
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise InvalidService(annotation_field(key), f"{path!r}; accepted: a URL path starting with '/'")
    if protocol == "Tcp":
        raise InvalidService(
            annotation_field(key), "a Tcp probe has no request path; set the protocol to Http or Https"
        )
    return path


def _probe_port(intent: Intent, a: Mapping[str, str], key: str) -> int | None:
    """``health-probe_port``: a Service port (number or name) means its NodePort, as upstream."""
    raw = a.get(key, "").strip()
    if not raw:
        return None
    for p in intent.ports:
        if raw == p.name or raw == str(p.port):
            if p.node_port is None:
                raise InvalidService(annotation_field(key), f"Service port {raw} has no NodePort to probe")
            return p.node_port
    if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 65535:
        raise InvalidService(
            annotation_field(key),
            f"{raw!r}; accepted: a port 1-65535, or the name or number of a Service port",
        )
    return int(raw)


def _port_options(intent: Intent, a: Mapping[str, str], interval: int, count: int) -> tuple[PortOptions, ...]:
    """``service.beta.kubernetes.io/port_<port>_*`` per Service port number, validated as upstream."""
    numbers: set[int] = set()
    for key in a:
        m = PORT_KEY.match(key)
        if m is None:
            continue
        number = int(m.group(1))
        if not any(p.port == number for p in intent.ports):
            ports = ", ".join(str(p.port) for p in intent.ports)
            raise InvalidService(
                annotation_field(key), f"{number} is not a port of this Service (ports: {ports})"
            )
        numbers.add(number)
    out = []
    for number in sorted(numbers):
        pre = f"{PORT_PREFIX}{number}_"
        keys = sorted(k for k in a if k.startswith(pre))
        lb_rule = not get_bool(a, pre + "no_lb_rule", False)
        probe = not get_bool(a, pre + "no_probe_rule", False)
        probe_keys = [k for k in keys if k.startswith(pre + "health-probe_")]
        extra = [k for k in keys if k != pre + "no_lb_rule"] if not lb_rule else []
        if extra:
            raise InvalidService(
                annotation_field(extra[0]),
                f"port {number} has no load-balancing rule ({pre}no_lb_rule: 'true')",
            )
        if not probe and probe_keys:
            raise InvalidService(
                annotation_field(probe_keys[0]), f"port {number} has no probe ({pre}no_probe_rule: 'true')"
            )
        if intent.health_check is not None:
            local = [k for k in probe_keys if k.rsplit("_", 1)[-1] in ("protocol", "port", "request-path")]
            if local:
                raise InvalidService(
                    annotation_field(local[0]),
                    "externalTrafficPolicy: Local probes kube-proxy's health check NodePort (as upstream); "
                    "a per-port probe protocol, port or path does not apply",
                )
        protocol = _probe_protocol(a, pre + "health-probe_protocol")
        p_interval, p_count = probe_timing(
            a, pre + "health-probe_interval", pre + "health-probe_num-of-probe", interval, count
        )
        out.append(
            PortOptions(
                port=number,
                lb_rule=lb_rule,
                probe=probe,
                probe_protocol=protocol,
                probe_port=_probe_port(intent, a, pre + "health-probe_port"),
                probe_interval_seconds=p_interval,
                probe_count=p_count,
                probe_path=_probe_path(a, pre + "health-probe_request-path", protocol),
            )
        )
    return tuple(out)


def _lb_configurations(a: Mapping[str, str]) -> tuple[str, ...]:
    """``azure-load-balancer-configurations``: comma-separated load balancer names (upstream's format)."""
    raw = a.get(LB_CONFIGURATIONS, "")
    out = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if LB_CONFIGURATIONS in a and not out:
        raise InvalidService(
            annotation_field(LB_CONFIGURATIONS), "empty; accepted: load balancer names, comma-separated"
        )
    for name in out:
        if not _NAME.match(name) or name.lower().endswith("-internal"):
            raise InvalidService(
                annotation_field(LB_CONFIGURATIONS),
                f"{name!r}; accepted: names of the cluster's (public) load balancers, such as <cluster> or <cluster>-2",
            )
    return out


def _csv(a: Mapping[str, str], key: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in a.get(key, "").split(",") if v.strip()))


def _access_options(intent: Intent, a: Mapping[str, str], internal: bool) -> dict[str, object]:
    """Upstream's access control (``loadbalancer/accesscontrol.go``): service tags, IP ranges, deny-all."""
    tags = _csv(a, ALLOWED_SERVICE_TAGS)
    for tag in tags:
        if not _SERVICE_TAG.match(tag):
            raise InvalidService(
                annotation_field(ALLOWED_SERVICE_TAGS),
                f"{tag!r} is not a service tag; accepted: comma-separated Azure service tags such as "
                "AzureFrontDoor.Backend or Storage.WestUS",
            )
    ranges: list[str] = []
    for raw in _csv(a, ALLOWED_IP_RANGES):
        try:
            ranges.append(str(ipaddress.ip_network(raw, strict=False)))
        except ValueError:
            raise InvalidService(
                annotation_field(ALLOWED_IP_RANGES), f"{raw!r}; accepted: comma-separated IPv4/IPv6 CIDRs"
            ) from None
    if ranges and intent.source_ranges != ("0.0.0.0/0",):
        # upstream: ErrSetBothLoadBalancerSourceRangesAndAllowedIPRanges
        raise InvalidService(
            annotation_field(ALLOWED_IP_RANGES),
            "cannot be set together with spec.loadBalancerSourceRanges (as cloud-provider-azure); set one of them",
        )
    families = {"IPv4": 4, "IPv6": 6}
    served = {families[f] for f in intent.ip_families}
    for cidr in ranges:
        if ipaddress.ip_network(cidr).version not in served:
            raise InvalidService(
                annotation_field(ALLOWED_IP_RANGES),
                f"{cidr} is of no IP family of the Service ({', '.join(intent.ip_families)})",
            )
    for cidr in intent.source_ranges:
        # NSG rules hold one address family: a range of a family the Service has no frontend of would
        # open nothing (the all-ranges 0.0.0.0/0 and ::/0 are accepted, meaning "all")
        net = ipaddress.ip_network(cidr)
        if net.version not in served and net.prefixlen != 0:
            raise InvalidService(
                "spec.loadBalancerSourceRanges",
                f"{cidr} is of no IP family of the Service ({', '.join(intent.ip_families)}); the same "
                "holds for the service.beta.kubernetes.io/load-balancer-source-ranges annotation",
            )
    deny = get_bool(a, DENY_ALL_EXCEPT, False)
    if deny and get_bool(a, DISABLE_FLOATING_IP, False):
        raise InvalidService(
            annotation_field(DENY_ALL_EXCEPT),
            f"with {DISABLE_FLOATING_IP} the NSG destination is the node IPs, and a deny-all rule to them would cut "
            "every other flow to the nodes; lbprov refuses the combination",
        )
    return {
        "allowed_service_tags": tags,
        "allowed_ip_ranges": tuple(ranges),
        "deny_all_except_source_ranges": deny,
    }


def _pip_options(
    a: Mapping[str, str], internal: bool, pip_name: str | None, ipv4: str | None
) -> dict[str, object]:
    """``pip-prefix-id`` and ``pip-ip-tags``: properties of the public IP lbprov creates."""
    prefix = a.get(PIP_PREFIX_ID, "").strip() or None
    if prefix is not None:
        if internal:
            raise InvalidService(annotation_field(PIP_PREFIX_ID), "an internal Service has no public IP")
        if pip_name or ipv4:
            raise InvalidService(
                annotation_field(PIP_PREFIX_ID),
                "applies to the public IP lbprov creates; not with azure-pip-name, azure-load-balancer-ipv4 or "
                "spec.loadBalancerIP (an existing public IP)",
            )
        if not _PIP_PREFIX_ID.match(prefix):
            raise InvalidService(
                annotation_field(PIP_PREFIX_ID),
                f"{prefix!r}; accepted: the resource ID /subscriptions/<id>/resourceGroups/<rg>/providers/"
                "Microsoft.Network/publicIPPrefixes/<name>",
            )
    ip_tags: dict[str, str] = {}
    if PIP_IP_TAGS in a:
        if internal:
            raise InvalidService(annotation_field(PIP_IP_TAGS), "an internal Service has no public IP")
        if pip_name or ipv4:
            raise InvalidService(
                annotation_field(PIP_IP_TAGS),
                "applies to the public IP lbprov creates; not with an existing public IP",
            )
        for pair in (p.strip() for p in a[PIP_IP_TAGS].split(",")):
            if not pair:
                continue
            kind, sep, value = (x.strip() for x in pair.partition("="))
            if not sep or not kind or not value or "=" in value:
                # upstream drops a malformed pair silently; lbprov names it
                raise InvalidService(
                    annotation_field(PIP_IP_TAGS),
                    f"{pair!r}; accepted: ipTagType=tag pairs, comma-separated (e.g. RoutingPreference=Internet)",
                )
            ip_tags[kind] = value  # last write wins, as upstream
    return {"pip_prefix_id": prefix, "pip_ip_tags": tuple(sorted(ip_tags.items()))}


def _ha_options(intent: Intent, a: Mapping[str, str], internal: bool) -> dict[str, object]:
    """HA ports (internal Standard only, as upstream and ARM) and additional public IPs."""
    ha = get_bool(a, HA_PORTS, False)
    if ha:
        if not internal:
            raise InvalidService(
                annotation_field(HA_PORTS),
                f"HA ports exist on internal Standard load balancers only; set {INTERNAL}: 'true'",
            )
        if get_bool(a, DISABLE_FLOATING_IP, False):
            raise InvalidService(
                annotation_field(HA_PORTS),
                f"the HA ports rule always uses floating IP (as upstream); remove {DISABLE_FLOATING_IP}",
            )
        per_port = sorted(k for k in a if PORT_KEY.match(k) and not k.endswith("_health-probe_protocol"))
        per_port = [k for k in per_port if "health-probe" not in k]
        if per_port:
            raise InvalidService(
                annotation_field(per_port[0]),
                "with HA ports there is one rule for every port; per-port rules do not apply",
            )
    extra: list[str] = []
    for raw in _csv(a, ADDITIONAL_PUBLIC_IPS):
        try:
            extra.append(str(ipaddress.ip_address(raw)))
        except ValueError:
            raise InvalidService(
                annotation_field(ADDITIONAL_PUBLIC_IPS),
                f"{raw!r} is not an IP address; accepted: comma-separated IPs",
            ) from None
    if extra and internal:
        raise InvalidService(
            annotation_field(ADDITIONAL_PUBLIC_IPS), "applies to public Services (upstream: extra public IPs)"
        )
    return {"ha_ports": ha, "additional_public_ips": tuple(extra)}
