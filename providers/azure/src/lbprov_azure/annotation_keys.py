"""Every key of the Azure annotation namespaces, and what lbprov does with it.

The namespaces are cloud-provider-azure's: ``service.beta.kubernetes.io/azure-*`` and the per-port
``service.beta.kubernetes.io/port_<port>_*`` (``pkg/consts/consts.go``). A key is *implemented*
(with upstream's meaning), *refused* (an event naming it and the reason: lbprov never gives a load
balancer other than the one described), or *deprecated* (upstream accepts it with no effect, and so
does lbprov). A key of these namespaces that is in no list is refused as unknown (a typo must not
be silently ignored). The provider README's table is this module, and a test walks both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PREFIX = "service.beta.kubernetes.io/azure-"
PORT_PREFIX = "service.beta.kubernetes.io/port_"
#: ``service.beta.kubernetes.io/port_<port>_<param>``
PORT_KEY = re.compile(r"^service\.beta\.kubernetes\.io/port_([0-9]+)_(.+)$")

Status = Literal["implemented", "refused", "deprecated"]


@dataclass(frozen=True)
class Key:
    status: Status
    meaning: str


_IPV6 = (
    "the IPv6 frontend of a dual-stack Service gets the address lbprov makes for it (a new public IP; "
    "internal: a dynamic private address); an existing IPv6 address or public IP, or a prefix for it, "
    "is not implemented by lbprov yet"
)
_PLS = "Private Link Services are not implemented by lbprov"

#: Service-level keys, by the part after ``service.beta.kubernetes.io/azure-``.
SERVICE_KEYS: dict[str, Key] = {
    "load-balancer-internal": Key("implemented", '"true": the internal load balancer (`<cluster>-internal`)'),
    "load-balancer-internal-subnet": Key("implemented", "subnet of the internal frontend"),
    "load-balancer-ipv4": Key("implemented", "fixed frontend IPv4 address (instead of spec.loadBalancerIP)"),
    "pip-name": Key("implemented", "use this existing Standard public IP (never deleted by lbprov)"),
    "dns-label-name": Key("implemented", "DNS label on the Service's public IP"),
    "pip-tags": Key("implemented", "extra tags on the Service's public IP"),
    "load-balancer-resource-group": Key("implemented", "resource group of the public IP"),
    "load-balancer-tcp-idle-timeout": Key("implemented", "rule idle timeout in minutes, 4-100 (default 4)"),
    "load-balancer-disable-tcp-reset": Key("implemented", '"true": rules without TCP reset'),
    "load-balancer-health-probe-protocol": Key("implemented", "probe protocol Tcp, Http or Https"),
    "load-balancer-health-probe-interval": Key(
        "implemented", "probe interval, >= 5 s (interval x probes < 120 s)"
    ),
    "load-balancer-health-probe-num-of-probe": Key(
        "implemented", "probe threshold, >= 2 (written to probeThreshold)"
    ),
    "load-balancer-health-probe-request-path": Key("implemented", "HTTP(S) probe path"),
    "disable-load-balancer-nsg-rule": Key("implemented", '"true": no NSG rules for the Service'),
    "disable-load-balancer-floating-ip": Key(
        "implemented", '"true": floating IP off (backend port = NodePort, NSG rules to the node IPs)'
    ),
    "shared-securityrule": Key(
        "deprecated", "upstream ignores it (deprecated in v1.29); accepted, no effect"
    ),
    "load-balancer-mode": Key(
        "refused",
        "selects availability sets / VM scale sets for Basic or per-VM-set load balancers; lbprov's "
        "backend pools are IP-based, each over the nodes of its slot of load balancers",
    ),
    "load-balancer-ipv6": Key("refused", _IPV6),
    "pip-name-ipv6": Key("refused", _IPV6),
    "pip-prefix-id": Key(
        "implemented", "resource ID of a public IP prefix the Service's new public IP is taken from"
    ),
    "pip-prefix-id-ipv6": Key("refused", _IPV6),
    "pip-ip-tags": Key(
        "implemented",
        "`ipTagType=tag` pairs (e.g. `RoutingPreference=Internet`) on the Service's new public IP",
    ),
    "allowed-service-tags": Key(
        "implemented",
        "service tags allowed in: one NSG allow rule per tag, and no `Internet` rule (as upstream)",
    ),
    "allowed-ip-ranges": Key(
        "implemented", "CIDRs allowed in (NSG sources); refused together with spec.loadBalancerSourceRanges"
    ),
    "deny-all-except-load-balancer-source-ranges": Key(
        "implemented",
        '"true" with source ranges: an NSG deny-all rule to the frontend below the allow rules (as upstream; '
        "no effect without ranges; refused with floating IP off)",
    ),
    "load-balancer-enable-high-availability-ports": Key(
        "implemented", '"true" (internal Services only): one rule of protocol All, ports 0 (HA ports)'
    ),
    "additional-public-ips": Key(
        "implemented", "more IPs of the Service: added to its ingress and to its NSG rules' destinations"
    ),
    "load-balancer-configurations": Key(
        "implemented",
        "the load balancers (public names, one per slot: `<cluster>`, `<cluster>-2`, ...) the Service may be placed on",
    ),
    "pls-create": Key("refused", _PLS),
    "pls-name": Key("refused", _PLS),
    "pls-resource-group": Key("refused", _PLS),
    "pls-ip-configuration-subnet": Key("refused", _PLS),
    "pls-ip-configuration-ip-address-count": Key("refused", _PLS),
    "pls-ip-configuration-ip-address": Key("refused", _PLS),
    "pls-fqdns": Key("refused", _PLS),
    "pls-proxy-protocol": Key("refused", _PLS),
    "pls-visibility": Key("refused", _PLS),
    "pls-auto-approval": Key("refused", _PLS),
}

#: Per-port keys, by the part after ``service.beta.kubernetes.io/port_<port>_``.
PORT_KEYS: dict[str, Key] = {
    "no_lb_rule": Key("implemented", '"true": no load-balancing rule, probe or NSG port for this port'),
    "no_probe_rule": Key("implemented", '"true": the port\'s rule has no probe'),
    "health-probe_protocol": Key(
        "implemented", "this port's probe protocol Tcp, Http or Https (Cluster policy)"
    ),
    "health-probe_port": Key(
        "implemented",
        "this port's probe port: a Service port (number or name: its NodePort) or another port number "
        "(Cluster policy)",
    ),
    "health-probe_interval": Key(
        "implemented", "this port's probe interval (rules as the Service-level key)"
    ),
    "health-probe_num-of-probe": Key(
        "implemented", "this port's probe threshold (rules as the Service-level key)"
    ),
    "health-probe_request-path": Key("implemented", "this port's HTTP(S) probe path (Cluster policy)"),
}


def in_namespace(key: str) -> bool:
    return key.startswith(PREFIX) or key.startswith(PORT_PREFIX)


def refusal(key: str) -> str | None:
    """Why ``key`` is refused (None: it is implemented or deprecated). Per-port keys by their suffix."""
    if key.startswith(PREFIX):
        known = SERVICE_KEYS.get(key[len(PREFIX) :])
        if known is None:
            return "unknown Azure annotation (see the lbprov-azure README for every key)"
        return known.meaning if known.status == "refused" else None
    m = PORT_KEY.match(key)
    if key.startswith(PORT_PREFIX) and (m is None or m.group(2) not in PORT_KEYS):
        return "unknown per-port Azure annotation; accepted: " + ", ".join(
            f"port_<port>_{s}" for s in PORT_KEYS
        )
    return None
