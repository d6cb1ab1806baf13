"""Node security group rules for NLB Services, aggregated across the cluster.

Why: AWS counts every (protocol, port range, CIDR) of a security group as one rule (default limit
60 inbound), and upstream writes one rule per Service port per CIDR plus one per health-check port
(k/k#99813, kops#2721). lbprov instead keeps **cluster-level** rules, tagged by description
``lbprov.io/rule/nlb/{client,health}=<cluster>``, whose port ranges merge the *contiguous* NodePorts
of all Services that want the same protocol and CIDR: Services with NodePorts 30080, 30081, 30082
open to 0.0.0.0/0 share one rule ``tcp 30080-30082 0.0.0.0/0``. Health-check ports (traffic port or
healthCheckNodePort, from the VPC CIDR) are merged the same way, and skipped where a client rule
already admits the VPC. Ranges never include a port that no Service asked for.

Who owns which port of a shared range? NodePorts are unique in a cluster, so a port belongs to the
one Service that uses it. A plan for Service S takes the current ranges, removes every port S owns
(from S's target groups as they exist, and from the intent), adds back the ports S wants, and merges
again; other Services' ports pass through untouched. New ranges are authorised before old ones are
revoked, so nothing loses connectivity in between.

Concurrency: a plan records the lbprov rules of each group it changes (``Plan.data["sg_snapshot"]``).
``apply`` takes a per-group lock (so applies of one process touching that group run one at a time),
re-reads the group and writes only if its lbprov rules are still those of the snapshot; otherwise it
raises ``StalePlan`` before writing anything, and the reconciler re-plans on fresh data. Without that
check, two Services planned from the same snapshot could resurrect a port the other just removed.

Rules with any other description, and CIDR entries whose (protocol, ports, CIDR) equals a foreign
rule, are never touched.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lbprov_aws.names import CLIENT_RULE, HEALTH_RULE, nlb_rule_description


@dataclass(frozen=True, order=True)
class Point:
    """One port of one protocol admitted from one CIDR, for client traffic or health checks."""

    kind: str
    protocol: str  # "tcp" | "udp"
    port: int
    cidr: str


@dataclass(frozen=True, order=True)
class RuleRange:
    """One security group rule as AWS counts it: protocol, port range, CIDR (+ our description)."""

    kind: str
    protocol: str
    from_port: int
    to_port: int
    cidr: str

    def ports(self) -> range:
        return range(self.from_port, self.to_port + 1)

    def describe(self, cluster: str) -> str:
        return nlb_rule_description(self.kind, cluster)

    def ip_permission(self, cluster: str) -> dict[str, Any]:
        entry_key, ranges_key = ("CidrIpv6", "Ipv6Ranges") if ":" in self.cidr else ("CidrIp", "IpRanges")
        return {
            "IpProtocol": self.protocol,
            "FromPort": self.from_port,
            "ToPort": self.to_port,
            ranges_key: [{entry_key: self.cidr, "Description": self.describe(cluster)}],
        }

    def label(self) -> str:
        ports = str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}"
        return f"{self.kind}:{self.protocol}/{ports} from {self.cidr}"

    def to_json(self) -> dict[str, Any]:
        return {
            "purpose": self.kind,
            "protocol": self.protocol,
            "ports": f"{self.from_port}-{self.to_port}",
            "cidr": self.cidr,
        }


def parse_rules(
    permissions: Sequence[Mapping[str, Any]], cluster: str
) -> tuple[set[RuleRange], set[tuple[str, int, int, str]]]:
    """Split a security group's ingress into our ranges and the keys of every other CIDR rule."""
    ours: set[RuleRange] = set()
    foreign: set[tuple[str, int, int, str]] = set()
    descriptions = {nlb_rule_description(k, cluster): k for k in (CLIENT_RULE, HEALTH_RULE)}
    for perm in permissions:
        proto = str(perm.get("IpProtocol"))
        lo = int(perm.get("FromPort", -1))
        hi = int(perm.get("ToPort", -1))
        entries = [(r.get("CidrIp"), r.get("Description")) for r in perm.get("IpRanges", [])] + [
            (r.get("CidrIpv6"), r.get("Description")) for r in perm.get("Ipv6Ranges", [])
        ]
        for cidr, desc in entries:
            if cidr is None:
                continue
            kind = descriptions.get(desc or "")
            if kind is not None and proto in ("tcp", "udp"):
                ours.add(RuleRange(kind, proto, lo, hi, str(cidr)))
            else:
                foreign.add((proto, lo, hi, str(cidr)))
    return ours, foreign


def merge(points: Iterable[Point]) -> set[RuleRange]:
    """Merge points into ranges of contiguous ports per (kind, protocol, CIDR)."""
    groups: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for p in points:
        groups[(p.kind, p.protocol, p.cidr)].add(p.port)
    out: set[RuleRange] = set()
    for (kind, proto, cidr), ports in groups.items():
        run: list[int] = []
        for port in sorted(ports):
            if run and port != run[-1] + 1:
                out.add(RuleRange(kind, proto, run[0], run[-1], cidr))
                run = []
            run.append(port)
        if run:
            out.add(RuleRange(kind, proto, run[0], run[-1], cidr))
    return out


def expand(ranges: Iterable[RuleRange]) -> set[Point]:
    return {Point(r.kind, r.protocol, port, r.cidr) for r in ranges for port in r.ports()}


def covers(cidr: str, inner: Sequence[str]) -> bool:
    """Whether ``cidr`` contains every network of ``inner`` (of the same IP version)."""
    outer = ipaddress.ip_network(cidr)
    nets = [ipaddress.ip_network(c) for c in inner]
    return all(n.version == outer.version and n.subnet_of(outer) for n in nets)  # type: ignore[arg-type]


def service_points(
    *,
    ports: Iterable[tuple[str, int]],
    health_ports: Iterable[int],
    source_ranges: Sequence[str],
    vpc_cidrs: Sequence[str],
) -> set[Point]:
    """What one NLB Service needs: its NodePorts from the source ranges, its health-check ports from
    the VPC CIDRs (unless a client rule already admits the VPC on that port)."""
    points: set[Point] = set()
    for proto, port in ports:
        for cidr in source_ranges:
            points.add(Point(CLIENT_RULE, proto.lower(), port, cidr))
    for port in health_ports:
        if any(
            p.kind == CLIENT_RULE and p.protocol == "tcp" and p.port == port and covers(p.cidr, vpc_cidrs)
            for p in points
        ):
            continue
        for cidr in vpc_cidrs:
            points.add(Point(HEALTH_RULE, "tcp", port, cidr))
    return points


def desired_ranges(current: set[RuleRange], service_ports: set[int], wanted: set[Point]) -> set[RuleRange]:
    """Current ranges with the Service's ports replaced by what it wants now."""
    kept = {p for p in expand(current) if p.port not in service_ports}
    return merge(kept | wanted)
