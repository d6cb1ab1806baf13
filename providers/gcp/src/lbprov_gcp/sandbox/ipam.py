"""IP allocation for the emulator: external addresses from documentation ranges, internal ones from
the subnetwork's range.

External ranges are the RFC 5737 test networks (203.0.113.0/24, then 198.51.100.0/24), so nothing
the emulator hands out can be mistaken for, or routed to, a real Google address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

EXTERNAL_POOLS = (ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("198.51.100.0/24"))


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


def allocate_external(used: Iterable[str]) -> str | None:
    taken = set(used)
    for net in EXTERNAL_POOLS:
        for host in net.hosts():
            if int(host) & 0xFF in (0, 1, 255):
                continue
            if str(host) not in taken:
                return str(host)
    return None


def allocate_internal(cidr: str, used: Iterable[str]) -> str | None:
    taken = set(used)
    net = ipaddress.ip_network(cidr)
    # Start high in the range so load-balancer VIPs are visibly apart from node addresses.
    for host in reversed(list(net.hosts())):
        ip = str(host)
        if usable_in_subnet(ip, cidr) and ip not in taken:
            return ip
    return None
