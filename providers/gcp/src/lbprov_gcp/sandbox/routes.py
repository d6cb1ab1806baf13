"""Request paths of the Compute API: which collection, scope and method a request names."""

from __future__ import annotations

from dataclasses import dataclass

from lbprov_gcp.sandbox.errors import ApiError

KINDS = {
    "forwardingRules": "forwardingRule",
    "backendServices": "backendService",
    "healthChecks": "healthCheck",
    "addresses": "address",
    "firewalls": "firewall",
    "instanceGroups": "instanceGroup",
    "instanceGroupManagers": "instanceGroupManager",
    "instances": "instance",
    "networks": "network",
    "subnetworks": "subnetwork",
    "operations": "operation",
    "targetPools": "targetPool",
    "httpHealthChecks": "httpHealthCheck",
}
#: Collections per scope kind, and which of them accept writes.
COLLECTIONS = {
    "regions": {
        "forwardingRules",
        "backendServices",
        "healthChecks",
        "addresses",
        "subnetworks",
        "operations",
        "targetPools",  # cloud-provider-gcp's load balancers (migration); lbprov never creates one
    },
    # instanceGroupManagers: read-only and always empty (no managed groups); gcloud's
    # `instance-groups list` asks for them to tell managed groups from unmanaged ones
    "zones": {"instances", "instanceGroups", "instanceGroupManagers", "operations"},
    "global": {"firewalls", "networks", "operations", "httpHealthChecks"},
}
WRITABLE = {
    "forwardingRules",
    "backendServices",
    "healthChecks",
    "addresses",
    "firewalls",
    "instanceGroups",
    "targetPools",
    "httpHealthChecks",
}
_OP_PREFIX = {
    ("regions", "backendServices"): "regionBackendServices",
    ("regions", "healthChecks"): "regionHealthChecks",
    ("regions", "operations"): "regionOperations",
    ("zones", "operations"): "zoneOperations",
    ("global", "operations"): "globalOperations",
}
#: Custom verbs that only read (everything else that is not GET writes).
READ_VERBS = {"get", "list", "aggregatedList", "listInstances", "wait", "getHealth"}
QUERY_PARAMS = {
    "filter",
    "maxResults",
    "orderBy",
    "pageToken",
    "returnPartialSuccess",
    "requestId",
    "$alt",
    "alt",
    "prettyPrint",
    "fields",
    "key",
    "quotaUser",
    "userIp",
    "includeAllScopes",
    "serviceProjectNumber",
}


@dataclass(frozen=True)
class Route:
    """A parsed request path."""

    project: str
    scope: str  # "global", "regions/R", "zones/Z", or "aggregated"
    scope_kind: str  # "global", "regions", "zones", "aggregated"
    collection: str
    name: str | None
    verb: str
    operation: str  # e.g. "regionBackendServices.insert"

    @property
    def mutating(self) -> bool:
        return self.verb not in READ_VERBS


def parse_route(method: str, path: str) -> Route:
    """Map ``METHOD /compute/v1/projects/P/...`` to a :class:`Route` (404 if it is not an API path)."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    if len(parts) < 4 or parts[0] != "compute" or parts[1] != "v1" or parts[2] != "projects":
        raise ApiError(404, "notFound", f"Not Found: {path}")
    project, rest = parts[3], parts[4:]
    if not rest:
        raise ApiError(404, "notFound", f"The resource 'projects/{project}' was not found")
    if rest[0] == "aggregated" and len(rest) == 2 and method == "GET":
        return Route(
            project, "aggregated", "aggregated", rest[1], None, "aggregatedList", f"{rest[1]}.aggregatedList"
        )
    if rest[0] == "global":
        scope_kind, scope, rest = "global", "global", rest[1:]
    elif rest[0] in ("regions", "zones") and len(rest) >= 3:
        scope_kind, scope, rest = rest[0], f"{rest[0]}/{rest[1]}", rest[2:]
    else:
        raise ApiError(404, "notFound", f"Not Found: {path}")
    collection = rest[0] if rest else ""
    if collection not in COLLECTIONS[scope_kind]:
        raise ApiError(404, "notFound", f"Not Found: {path}")
    name = rest[1] if len(rest) >= 2 else None
    custom = rest[2] if len(rest) == 3 else None
    if len(rest) > 3:
        raise ApiError(404, "notFound", f"Not Found: {path}")
    if custom is not None:
        if method != "POST":
            raise ApiError(404, "notFound", f"Not Found: {method} {path}")
        verb = custom
    elif name is None:
        verb = {"GET": "list", "POST": "insert"}.get(method, "")
    else:
        verb = {"GET": "get", "DELETE": "delete", "PATCH": "patch", "PUT": "update"}.get(method, "")
    if not verb:
        raise ApiError(404, "notFound", f"Not Found: {method} {path}")
    prefix = _OP_PREFIX.get((scope_kind, collection), collection)
    return Route(project, scope, scope_kind, collection, name, verb, f"{prefix}.{verb}")
