"""IP allocation for the emulator: external addresses from documentation ranges, internal ones from
the subnetwork's range; external IPv4 addresses in use are limited by a regional quota.

External ranges are the RFC 5737 test networks (203.0.113.0/24, 198.51.100.0/24, 192.0.2.0/24),
then the RFC 2544 benchmarking network 198.18.0.0/15, so nothing the emulator hands out can be
mistaken for, or routed to, a real Google address, and a 1,000-Service benchmark fits. The pool
is finite, and the project's quota binds first: GCE counts every external IP that an address
reservation or a forwarding rule holds against the regional quota ``IN_USE_ADDRESSES`` and refuses
one more with 403 ``quotaExceeded`` (``Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 8.0 in region
us-central1.``, the message GCE gives).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Iterator

from lbprov_gcp.sandbox.errors import ApiError

EXTERNAL_POOLS = (
    ipaddress.ip_network("203.0.113.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.18.0.0/15"),
)
#: The emulated project's regional ``IN_USE_ADDRESSES`` quota (GCE's default varies by project;
#: the emulator's is high enough for the 1,000-Service benchmark, and a test may lower it).
IN_USE_ADDRESSES_QUOTA = 4096


def check_external_quota(in_use: int, limit: int, region: str) -> None:
    """Refuse one more external IP when ``in_use`` already reaches the quota, as GCE does."""
    if in_use >= limit:
        raise ApiError(
            403,
            "quotaExceeded",
            f"Quota 'IN_USE_ADDRESSES' exceeded.  Limit: {float(limit)} in region {region}.",
        )


def in_external_pool(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr in net for net in EXTERNAL_POOLS)


def in_range(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


def usable_in_subnet(ip: str, cidr: str) -> bool:
    """GCE reserves the network, gateway (.1), second-to-last and broadcast addresses of a subnet."""
    net = ipaddress.ip_network(cidr)
    addr = ipaddress.ip_address(ip)
    if addr not in net:
        return False
    reserved = {
        net.network_address,
        net.network_address + 1,
        net.broadcast_address - 1,
        net.broadcast_address,
    }
    return addr not in reserved


def _external_hosts() -> Iterator[str]:
    for net in EXTERNAL_POOLS:
        for host in net.hosts():
            if int(host) & 0xFF in (0, 1, 255):
                continue
            yield str(host)


def allocate_external(used: Iterable[str]) -> str | None:
    taken = set(used)
    return next((ip for ip in _external_hosts() if ip not in taken), None)


def allocate_internal(cidr: str, used: Iterable[str]) -> str | None:
    taken = set(used)
    net = ipaddress.ip_network(cidr)
    # Start high in the range so load-balancer VIPs are visibly apart from node addresses.
    for host in reversed(list(net.hosts())):
        ip = str(host)
        if usable_in_subnet(ip, cidr) and ip not in taken:
            return ip
    return None


#: IPv6 ranges come from the documentation prefix 2001:db8::/32 (RFC 3849): one /64 per subnetwork.
IPV6_DOCUMENTATION = ipaddress.ip_network("2001:db8::/32")
#: An external passthrough load balancer's IPv6 forwarding rule holds a /96 of the subnetwork's
#: external /64 (ingress-gce, forwarding_rules_ipv6.go: "for creating external IPv6 forwarding rule,
#: address has to be specified with /96 prefix, or API will return error").
EXTERNAL_IPV6_PREFIX_LENGTH = 96


def ipv6_subnet_prefix(index: int) -> str:
    """The ``index``-th /64 of the documentation prefix, for a dual-stack subnetwork."""
    return str(next(itertools.islice(IPV6_DOCUMENTATION.subnets(new_prefix=64), index + 1, None)))


def allocate_ipv6(prefix: str, used: Iterable[str], *, external: bool) -> str | None:
    """An external /96 (its first address) or an internal address of the subnetwork's /64."""
    taken = {str(ipaddress.ip_address(u)) for u in used}
    net = ipaddress.ip_network(prefix)
    step = 1 << (128 - EXTERNAL_IPV6_PREFIX_LENGTH) if external else 1
    # skip the first block / the first addresses, as GCE keeps them for the subnet itself
    for i in range(1, 1 << 16):
        ip = str(net.network_address + i * step)
        if ip not in taken:
            return ip
    return None


def in_subnet_v6(ip: str, prefix: str | None) -> bool:
    return bool(prefix) and ipaddress.ip_address(ip) in ipaddress.ip_network(str(prefix))
