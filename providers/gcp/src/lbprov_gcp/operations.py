"""Every Compute Engine operation the GCP provider can send: read or write, and its IAM permissions.

Operation names are the API's own method ids (``regionBackendServices.insert``), derived from each
HTTP request the SDK sends (method + URL path) by :func:`operation_for`, so the count, the metrics
and the read-only guard see exactly what goes on the wire, whichever client method produced it.
The permissions feed the least-privilege IAM role in ``terraform/gcp``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Operation:
    name: str
    write: bool
    permissions: tuple[str, ...]


def _ops(*items: tuple[str, bool, tuple[str, ...]]) -> dict[str, Operation]:
    return {name: Operation(name, write, perms) for name, write, perms in items}


R, W = False, True

OPERATIONS: dict[str, Operation] = _ops(
    # nodes
    ("instances.get", R, ("compute.instances.get",)),
    ("instances.list", R, ("compute.instances.list",)),
    # the cluster's instance groups
    ("instanceGroups.aggregatedList", R, ("compute.instanceGroups.list",)),
    ("instanceGroups.list", R, ("compute.instanceGroups.list",)),
    ("instanceGroups.get", R, ("compute.instanceGroups.get",)),
    ("instanceGroups.listInstances", R, ("compute.instanceGroups.list",)),
    ("instanceGroups.insert", W, ("compute.instanceGroups.create",)),
    ("instanceGroups.addInstances", W, ("compute.instanceGroups.update", "compute.instances.use")),
    ("instanceGroups.removeInstances", W, ("compute.instanceGroups.update", "compute.instances.use")),
    # health checks
    ("regionHealthChecks.get", R, ("compute.regionHealthChecks.get",)),
    ("regionHealthChecks.list", R, ("compute.regionHealthChecks.list",)),
    ("regionHealthChecks.insert", W, ("compute.regionHealthChecks.create",)),
    ("regionHealthChecks.update", W, ("compute.regionHealthChecks.update",)),
    ("regionHealthChecks.patch", W, ("compute.regionHealthChecks.update",)),
    ("regionHealthChecks.delete", W, ("compute.regionHealthChecks.delete",)),
    # backend services
    ("regionBackendServices.get", R, ("compute.regionBackendServices.get",)),
    ("regionBackendServices.list", R, ("compute.regionBackendServices.list",)),
    (
        "regionBackendServices.insert",
        W,
        (
            "compute.regionBackendServices.create",
            "compute.regionHealthChecks.useReadOnly",
            "compute.instanceGroups.use",
        ),
    ),
    (
        "regionBackendServices.patch",
        W,
        (
            "compute.regionBackendServices.update",
            "compute.regionHealthChecks.useReadOnly",
            "compute.instanceGroups.use",
        ),
    ),
    (
        "regionBackendServices.update",
        W,
        (
            "compute.regionBackendServices.update",
            "compute.regionHealthChecks.useReadOnly",
            "compute.instanceGroups.use",
        ),
    ),
    ("regionBackendServices.delete", W, ("compute.regionBackendServices.delete",)),
    # forwarding rules
    ("forwardingRules.get", R, ("compute.forwardingRules.get",)),
    ("forwardingRules.list", R, ("compute.forwardingRules.list",)),
    (
        "forwardingRules.insert",
        W,
        (
            "compute.forwardingRules.create",
            "compute.regionBackendServices.use",
            "compute.addresses.use",
            "compute.subnetworks.use",
        ),
    ),
    ("forwardingRules.delete", W, ("compute.forwardingRules.delete",)),
    ("forwardingRules.setLabels", W, ("compute.forwardingRules.setLabels",)),
    # allowGlobalAccess is the one field patched in place
    ("forwardingRules.patch", W, ("compute.forwardingRules.update",)),
    # addresses
    ("addresses.get", R, ("compute.addresses.get",)),
    ("addresses.list", R, ("compute.addresses.list",)),
    (
        "addresses.insert",
        W,
        ("compute.addresses.create", "compute.addresses.createInternal", "compute.subnetworks.use"),
    ),
    ("addresses.delete", W, ("compute.addresses.delete", "compute.addresses.deleteInternal")),
    # the cluster identity on a reservation kept from before identities
    ("addresses.setLabels", W, ("compute.addresses.setLabels",)),
    # firewalls
    ("firewalls.get", R, ("compute.firewalls.get",)),
    ("firewalls.list", R, ("compute.firewalls.list",)),
    ("firewalls.insert", W, ("compute.firewalls.create", "compute.networks.updatePolicy")),
    ("firewalls.patch", W, ("compute.firewalls.update", "compute.networks.updatePolicy")),
    ("firewalls.update", W, ("compute.firewalls.update", "compute.networks.updatePolicy")),
    ("firewalls.delete", W, ("compute.firewalls.delete", "compute.networks.updatePolicy")),
    # cloud-provider-gcp's target-pool load balancers: read and deleted when lbprov takes a Service
    # over (migration in place); lbprov never creates one
    ("targetPools.list", R, ("compute.targetPools.list",)),
    ("targetPools.delete", W, ("compute.targetPools.delete",)),
    ("httpHealthChecks.list", R, ("compute.httpHealthChecks.list",)),
    ("httpHealthChecks.delete", W, ("compute.httpHealthChecks.delete",)),
    # long-running operations (waiting only reads)
    ("regionOperations.get", R, ("compute.regionOperations.get",)),
    ("regionOperations.wait", R, ("compute.regionOperations.get",)),
    ("zoneOperations.get", R, ("compute.zoneOperations.get",)),
    ("zoneOperations.wait", R, ("compute.zoneOperations.get",)),
    ("globalOperations.get", R, ("compute.globalOperations.get",)),
    ("globalOperations.wait", R, ("compute.globalOperations.get",)),
    # network lookups
    ("networks.get", R, ("compute.networks.get",)),
    ("subnetworks.get", R, ("compute.subnetworks.get",)),
)

#: Collections whose regional / zonal / global flavour has its own API name.
_SCOPED_NAMES = {
    ("regions", "backendServices"): "regionBackendServices",
    ("regions", "healthChecks"): "regionHealthChecks",
    ("regions", "operations"): "regionOperations",
    ("zones", "operations"): "zoneOperations",
    ("global", "operations"): "globalOperations",
}
_READ_VERBS = {"get", "list", "aggregatedList", "listInstances", "wait"}


def operation_for(method: str, url: str) -> str:
    """The API method id of one HTTP request (``POST .../regions/R/backendServices`` ->
    ``regionBackendServices.insert``). Unknown shapes map to ``"<METHOD> unknown"``, which
    :func:`is_write` treats as a write unless the method is GET, so the guard fails closed."""
    path = urlsplit(url).path
    m = re.search(r"/compute/v1/projects/[^/]+/(.*)$", path)
    if not m:
        return f"{method} unknown"
    parts = m.group(1).split("/")
    if parts[0] == "aggregated" and len(parts) == 2:
        return f"{parts[1]}.aggregatedList"
    if parts[0] == "global":
        scope, rest = "global", parts[1:]
    elif parts[0] in ("regions", "zones") and len(parts) >= 3:
        scope, rest = parts[0], parts[2:]
    else:
        return f"{method} unknown"
    if not rest or len(rest) > 3:
        return f"{method} unknown"
    collection = _SCOPED_NAMES.get((scope, rest[0]), rest[0])
    if len(rest) == 3:
        verb = rest[2]
    elif len(rest) == 1:
        verb = {"GET": "list", "POST": "insert"}.get(method, "unknown")
    else:
        verb = {"GET": "get", "DELETE": "delete", "PATCH": "patch", "PUT": "update"}.get(method, "unknown")
    return f"{collection}.{verb}"


def is_write(operation: str) -> bool:
    """Whether an operation mutates. Unknown operations count as writes (fail closed)."""
    known = OPERATIONS.get(operation)
    if known is not None:
        return known.write
    if operation.startswith("GET "):
        return False
    verb = operation.rsplit(".", 1)[-1]
    return verb not in _READ_VERBS


def permissions(operation: str) -> tuple[str, ...]:
    return OPERATIONS[operation].permissions
