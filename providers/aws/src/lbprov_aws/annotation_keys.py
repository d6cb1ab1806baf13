"""Every ``service.beta.kubernetes.io/aws-load-balancer-*`` key that cloud-provider-aws
(``pkg/providers/v1/aws.go``) or aws-load-balancer-controller (``pkg/annotations/constants.go``)
defines, and what lbprov does with it: implemented (how), implemented for some values only, or
refused (why). A key under the prefix that is in neither project is refused as unknown. Nothing is
ever silently ignored: options.resolve() consults this table first, and the README's table and a
test walk it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lbprov.annotations import annotation_field
from lbprov.model import InvalidService

PREFIX = "service.beta.kubernetes.io/aws-load-balancer-"


@dataclass(frozen=True)
class Key:
    """``values``: when set, only these values are implemented (others are refused with ``why``);
    ``example``: a value the tests use to show the key is accepted (implemented keys)."""

    implemented: bool
    text: str
    example: str = ""
    values: tuple[str, ...] | None = None
    why: str = ""
    #: Other annotations (suffix, value) the example needs; the value ``<certificate>`` stands for
    #: a certificate ARN of the sandbox.
    needs: tuple[tuple[str, str], ...] = ()


def _yes(text: str, example: str, *needs: tuple[str, str]) -> Key:
    return Key(True, text, example, needs=tuple(needs))


_TLS = ("ssl-cert", "<certificate>")
_CLASSIC = ("type", "classic")
#: The annotation table test creates this bucket in the sandbox.
_BUCKET = ("access-log-s3-bucket-name", "lbprov-logs")


def _no(why: str) -> Key:
    return Key(False, why)


def _only(values: tuple[str, ...], text: str, why: str) -> Key:
    return Key(True, text, values[0], values, why)


_LBC = "an aws-load-balancer-controller feature lbprov does not implement"

#: suffix -> what lbprov does (``listener-attributes.<PROTO>-<port>`` is matched by its prefix).
KEYS: Mapping[str, Key] = {
    "type": _yes(
        "`nlb`, `classic`/`clb`/`elb`; without it, the kind of load balancer the Service already has "
        "(also one cloud-provider-aws made), else the `default_load_balancer_type` setting (`nlb` unless set); "
        "`external`/`nlb-ip` belong to aws-load-balancer-controller and are skipped",
        "nlb",
    ),
    "internal": _yes(
        "upstream's semantics: `false` or empty = internet-facing, any other value = internal", "true"
    ),
    "scheme": _yes("`internal` / `internet-facing` (must agree with `internal`)", "internal"),
    "subnets": _yes("subnet IDs or `Name` tags, comma-separated", ""),
    "healthcheck-protocol": _yes("`TCP`, `HTTP`, `HTTPS`", "HTTP"),
    "healthcheck-port": _yes("`traffic-port` or 1-65535", "traffic-port"),
    "healthcheck-path": _yes("a path starting with `/`", "/ready"),
    "healthcheck-interval": _yes("seconds, 5-300", "10"),
    "healthcheck-timeout": _yes(
        "seconds: NLB 2-120 and at most the interval, classic 2-60 and below the interval", "5"
    ),
    "healthcheck-healthy-threshold": _yes("2-10", "3"),
    "healthcheck-unhealthy-threshold": _yes("2-10", "3"),
    "proxy-protocol": _yes("`*`: proxy protocol v2 on the TCP target groups", "*"),
    "cross-zone-load-balancing-enabled": _yes("`true`/`false`", "true"),
    "additional-resource-tags": _yes(
        "`k1=v1,k2=v2` on every resource (no `aws:`, ownership or `lbprov.io/` keys)", "team=web"
    ),
    "ssl-cert": _yes("ACM/IAM certificate ARN: TLS listeners (NLB), SSL listeners (classic)", ""),
    "ssl-ports": _yes("`*` or port numbers/names that get the certificate (only with `ssl-cert`)", ""),
    "target-node-labels": _yes(
        "`k1=v1,...`: only nodes with all these labels are targets", "topology.kubernetes.io/zone=us-east-1a"
    ),
    "nlb-target-type": _only(
        ("instance",),
        "instance targets (the NodePorts)",
        "IP targets need aws-load-balancer-controller's pod ENI integration",
    ),
    "ip-address-type": _yes(
        "NLB: `ipv4` or `dualstack` (also from spec.ipFamilies [IPv4, IPv6]; needs subnets with IPv6 "
        "CIDRs); a classic ELB is IPv4 only",
        "ipv4",
    ),
    "access-log-enabled": _yes(
        "classic ELB: `true`/`false` (needs `access-log-s3-bucket-name`)", "true", _CLASSIC, _BUCKET
    ),
    "access-log-emit-interval": _yes("classic ELB: `5` or `60` minutes", "5", _CLASSIC),
    "access-log-s3-bucket-name": _yes("classic ELB: the access logs' S3 bucket", "lbprov-logs", _CLASSIC),
    "access-log-s3-bucket-prefix": _yes("classic ELB: the access logs' key prefix", "web", _CLASSIC),
    "connection-draining-enabled": _yes("classic ELB: `true`/`false` (default off)", "true", _CLASSIC),
    "connection-draining-timeout": _yes("classic ELB: seconds, 1-3600 (default 300)", "60", _CLASSIC),
    "connection-idle-timeout": _yes(
        "classic ELB: seconds, 1-4000 (default 60; an NLB has no such setting)", "120", _CLASSIC
    ),
    "backend-protocol": _yes(
        "classic ELB: `http`/`https`/`ssl`/`tcp` as cloud-provider-aws maps them: with `ssl-cert` on an "
        "`ssl-ports` port the front end is HTTPS (`http`, `https`) or SSL (`ssl`, `tcp`, unset), else "
        "HTTP for `http` and TCP otherwise; an NLB takes only `tcp`",
        "http",
        _CLASSIC,
    ),
    "ssl-negotiation-policy": _yes(
        "a predefined ELB security policy for the TLS (NLB) / SSL (classic) listeners (needs `ssl-cert`); "
        "default `ELBSecurityPolicy-TLS13-1-2-2021-06` on an NLB (upstream: `ELBSecurityPolicy-2016-08`)",
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        _TLS,
    ),
    "eip-allocations": _yes(
        "internet-facing NLB: Elastic IP allocation IDs, one per subnet (the n-th to the subnet of the "
        "n-th availability zone in name order), through SubnetMappings; a change replaces the NLB",
        "<eip>,<eip>",
    ),
    "private-ipv4-addresses": _yes(
        "internal NLB: one private IPv4 address per subnet, each within its subnet's CIDR, through "
        "SubnetMappings; a change replaces the NLB",
        "10.0.128.10,10.0.144.10",
        ("scheme", "internal"),
    ),
    "security-groups": _yes(
        "NLB: security group IDs or names that replace lbprov's frontend group (lbprov then writes no "
        "frontend rule; an NLB created without groups is replaced); classic: refused, not implemented yet",
        "sg-0123456789abcdef0",
    ),
    "extra-security-groups": _yes(
        "NLB: security group IDs or names added to the NLB's groups (an NLB created without groups is "
        "replaced); classic: refused, not implemented yet",
        "sg-0123456789abcdef0",
    ),
    "name": _yes(
        "NLB: its name instead of the UID-derived one (1-32 letters, digits, hyphens); a name held by a "
        "load balancer this Service does not own is an ownership conflict; a change replaces the NLB "
        "(new DNS name), and the plan says so",
        "web-public",
    ),
    "target-group-attributes": _yes(
        "NLB: `k1=v1,...` of the ELBv2 target-group attribute keys (values checked); only the keys "
        "set are reconciled, a removed key is left as it is (as aws-load-balancer-controller); "
        "must agree with `proxy-protocol` and `spec.sessionAffinity`",
        "deregistration_delay.timeout_seconds=120,preserve_client_ip.enabled=true",
    ),
    "attributes": _yes(
        "NLB: `k1=v1,...` of the ELBv2 load-balancer attribute keys (access logs, deletion "
        "protection, cross-zone, ...); only the keys set are reconciled, a removed key is left as it "
        "is; a protected NLB is never deleted or replaced by lbprov (the plan fails saying so)",
        "load_balancing.cross_zone.enabled=true,deletion_protection.enabled=false",
    ),
    "healthcheck-success-codes": _yes(
        "NLB HTTP/HTTPS health checks: codes 200-599, e.g. `200`, `200,202`, `200-299` "
        "(refused with a TCP health check and on a classic ELB)",
        "200-299",
        ("healthcheck-protocol", "HTTP"),
    ),
    "alpn-policy": _yes(
        "NLB TLS listeners (needs `ssl-cert`): `HTTP1Only`, `HTTP2Only`, `HTTP2Optional`, "
        "`HTTP2Preferred`, `None`",
        "HTTP2Preferred",
        _TLS,
    ),
    "eip-allocations-discovery-tags": _no(_LBC),
    "ipv6-addresses": _no(
        "static IPv6 addresses per subnet are not implemented (a dualstack NLB gets AWS-assigned ones)"
    ),
    "proxy-protocol-per-target-group": _no(_LBC),
    "manage-backend-security-group-rules": _yes(
        "NLB, with `security-groups` only: `true` attaches the cluster's backend group and admits it "
        "into the node groups; `false` (default, as upstream) leaves that to you",
        "true",
    ),
    "inbound-sg-rules-on-private-link-traffic": _no(_LBC),
    "security-group-prefix-lists": _no(_LBC),
    "listener-attributes": _no(_LBC),
    "multi-cluster-target-group": _no(_LBC),
    "enable-prefix-for-ipv6-source-nat": _no(_LBC),
    "source-nat-ipv6-prefixes": _no(_LBC),
    "minimum-load-balancer-capacity": _no(_LBC),
    "enable-icmp-for-path-mtu-discovery": _no(_LBC),
    "enable-tcp-udp-listener": _no(
        _LBC + " (lbprov makes TCP_UDP listeners whenever TCP and UDP share a port)"
    ),
    "disable-nlb-sg": _no(_LBC),
    "quic-enabled-ports": _no(_LBC),
    "quic-enabled-containers": _no("a Pod annotation of aws-load-balancer-controller, not a Service one"),
}


def key_of(annotation: str) -> str | None:
    """The table suffix of an annotation under the prefix (``None``: not under it)."""
    if not annotation.startswith(PREFIX):
        return None
    suffix = annotation[len(PREFIX) :]
    if suffix.startswith("listener-attributes."):
        return "listener-attributes"
    return suffix


def check_all(annotations: Mapping[str, str]) -> None:
    """Refuse every key of the table that lbprov does not implement (or not with that value),
    and every unknown key under the prefix, with an error naming it and saying why."""
    for name in sorted(annotations):
        suffix = key_of(name)
        if suffix is None:
            continue
        entry = KEYS.get(suffix)
        if entry is None:
            raise InvalidService(
                annotation_field(name),
                "unknown annotation: neither cloud-provider-aws nor aws-load-balancer-controller "
                "defines it; remove it or fix its name",
            )
        if not entry.implemented:
            raise InvalidService(annotation_field(name), f"not supported by lbprov: {entry.text}; remove it")
        value = annotations[name]
        if entry.values is not None and value.strip().lower() not in entry.values:
            accepted = ", ".join(entry.values)
            raise InvalidService(
                annotation_field(name),
                f"{value!r} is not supported by lbprov ({entry.why}); accepted: {accepted}",
            )


def markdown_table() -> str:
    """The README's table of every key (a test checks that the README holds exactly this)."""
    rows = ["| suffix | lbprov |", "|---|---|"]
    for suffix in sorted(KEYS):
        entry = KEYS[suffix]
        if not entry.implemented:
            what = f"refused: {entry.text}"
        elif entry.values is not None:
            what = f"implemented: {entry.text}; other values refused: {entry.why}"
        else:
            what = f"implemented: {entry.text}"
        rows.append(f"| `{suffix}` | {what} |")
    return "\n".join(rows)
