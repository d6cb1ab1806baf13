"""Every ARM operation the Azure provider can send: its stable name, read or write, IAM permission.

The name is derived from the HTTP request itself (method + resource type in the URL) by
:func:`operation_for`, which the SDK pipeline policy calls for every request, so that the count,
the metrics and the read-only guard see exactly what goes on the wire, LRO polls included. The
table feeds the least-privilege test (each operation maps to the Azure RBAC action(s) it needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Kind = Literal["read", "write"]


@dataclass(frozen=True)
class Operation:
    name: str
    kind: Kind
    permissions: tuple[str, ...]


def _ops(*rows: tuple[str, Kind, str]) -> dict[str, Operation]:
    return {name: Operation(name, kind, (perm,)) for name, kind, perm in rows}


_N = "Microsoft.Network"
OPERATIONS: dict[str, Operation] = _ops(
    ("loadBalancers.get", "read", f"{_N}/loadBalancers/read"),
    ("loadBalancers.list", "read", f"{_N}/loadBalancers/read"),
    ("loadBalancers.create_or_update", "write", f"{_N}/loadBalancers/write"),
    ("loadBalancers.delete", "write", f"{_N}/loadBalancers/delete"),
    ("publicIPAddresses.get", "read", f"{_N}/publicIPAddresses/read"),
    ("publicIPAddresses.list", "read", f"{_N}/publicIPAddresses/read"),
    ("publicIPAddresses.create_or_update", "write", f"{_N}/publicIPAddresses/write"),
    ("publicIPAddresses.delete", "write", f"{_N}/publicIPAddresses/delete"),
    ("networkSecurityGroups.get", "read", f"{_N}/networkSecurityGroups/read"),
    ("networkSecurityGroups.list", "read", f"{_N}/networkSecurityGroups/read"),
    ("securityRules.get", "read", f"{_N}/networkSecurityGroups/securityRules/read"),
    ("securityRules.list", "read", f"{_N}/networkSecurityGroups/securityRules/read"),
    ("securityRules.create_or_update", "write", f"{_N}/networkSecurityGroups/securityRules/write"),
    ("securityRules.delete", "write", f"{_N}/networkSecurityGroups/securityRules/delete"),
    ("virtualNetworks.get", "read", f"{_N}/virtualNetworks/read"),
    ("subnets.get", "read", f"{_N}/virtualNetworks/subnets/read"),
    # polling a long-running operation (Azure-AsyncOperation / Location URLs)
    ("operations.get", "read", f"{_N}/locations/operations/read"),
)
# Joining a frontend to a public IP, a backend pool to a VNet and a frontend to a subnet needs
# these "join" actions on the referenced resource, as Azure checks them on the LB write; a public IP
# taken from a prefix (azure-pip-prefix-id) needs the prefix's join action on the public IP write
# (learn.microsoft.com "Create, change, or delete an Azure public IP address prefix", Permissions:
# "Create a public IP address from a prefix"; without it ARM answers 403 LinkedAuthorizationFailed,
# kubernetes-sigs/cloud-provider-azure#7500).
JOIN_PERMISSIONS: tuple[str, ...] = (
    f"{_N}/publicIPAddresses/join/action",
    f"{_N}/publicIPPrefixes/join/action",
    f"{_N}/virtualNetworks/join/action",
    f"{_N}/virtualNetworks/subnets/join/action",
)

_TYPES = {
    "loadbalancers": "loadBalancers",
    "publicipaddresses": "publicIPAddresses",
    "networksecuritygroups": "networkSecurityGroups",
    "securityrules": "securityRules",
    "virtualnetworks": "virtualNetworks",
    "subnets": "subnets",
}
_VERBS = {"PUT": "create_or_update", "PATCH": "create_or_update", "DELETE": "delete"}


def operation_for(method: str, url: str) -> str:
    """The operation name of one HTTP request to ARM (``GET .../loadBalancers/x`` -> ``loadBalancers.get``).

    Unknown shapes get a descriptive name (``unknown.<METHOD>``) that is counted as a write unless
    it is a GET, so that nothing unexpected slips past the read-only guard.
    """
    method = method.upper()
    seg = [s for s in urlsplit(url).path.split("/") if s]
    low = [s.lower() for s in seg]
    if "operations" in low or "operationresults" in low:
        return "operations.get" if method == "GET" else f"unknown.{method}"
    try:
        i = low.index("microsoft.network")
    except ValueError:
        return f"unknown.{method}"
    tail = low[i + 1 :]
    # tail: type[, name[, child_type[, child_name]]]
    if len(tail) >= 3:
        rtype = _TYPES.get(tail[2])
        named = len(tail) == 4
    elif tail:
        rtype = _TYPES.get(tail[0])
        named = len(tail) == 2
    else:
        rtype = None
        named = False
    if rtype is None:
        return f"unknown.{method}"
    if method == "GET":
        return f"{rtype}.{'get' if named else 'list'}"
    verb = _VERBS.get(method)
    return f"{rtype}.{verb}" if verb else f"unknown.{method}"


def is_write(operation: str) -> bool:
    known = OPERATIONS.get(operation)
    if known is not None:
        return known.kind == "write"
    return not operation.endswith(".get") and not operation.endswith(".list") and operation != "unknown.GET"
