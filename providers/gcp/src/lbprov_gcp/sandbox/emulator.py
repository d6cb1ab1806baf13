"""A stateful, strict Compute Engine v1 API for the resources lbprov uses.

:class:`ComputeEmulator` holds the state and answers ``(method, path, query, body)`` with
``(status, json)``; :mod:`lbprov_gcp.sandbox.server` puts it behind HTTP. Semantics follow the real
API where lbprov (or a user's ``gcloud``) can observe them:

* every insert/patch/update/delete and custom write answers an ``Operation`` (zonal, regional or
  global like the resource) that ``get``/``wait`` report ``DONE``; with ``operation_delay`` it stays
  ``RUNNING`` for that long, so a client that does not wait sees it;
* IP allocation for addresses and forwarding rules: external from RFC 5737 test ranges, internal from
  the subnetwork; a reserved address is ``IN_USE`` with ``users`` while a forwarding rule holds it;
* references are validated (a backend service naming a missing health check or group -> 400) and a
  resource that another one uses cannot be deleted (400 ``resourceInUseByAnotherResource``);
* errors in Google's JSON shape (404 ``notFound``, 409 ``alreadyExists``, 412 ``conditionNotMet``);
* fingerprints on backend services, forwarding rules and instance groups, required and checked on
  update/patch;
* strictness: unknown fields, bad enum values and combinations the API refuses (an INTERNAL forwarding
  rule without a backend service, more than 5 ports, ``ports`` with ``allPorts``, a passthrough
  backend service with a balancing mode other than CONNECTION, ...) are 400s;
* list ``filter``, ``orderBy``, ``maxResults``/``pageToken``, aggregated lists, ``requestId``
  idempotency.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import itertools
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lbprov_gcp.sandbox import ipam
from lbprov_gcp.sandbox.errors import (
    ApiError,
    already_exists,
    bad_request,
    condition_not_met,
    in_use,
    invalid,
    not_found,
)
from lbprov_gcp.sandbox.filters import parse_filter
from lbprov_gcp.sandbox.schema import RESOURCE_TYPES, check_fields

Json = dict[str, Any]

_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_PORT_ITEM = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")
_KINDS = {
    "forwardingRules": "forwardingRule",
    "backendServices": "backendService",
    "healthChecks": "healthCheck",
    "addresses": "address",
    "firewalls": "firewall",
    "instanceGroups": "instanceGroup",
    "instances": "instance",
    "networks": "network",
    "subnetworks": "subnetwork",
    "operations": "operation",
}
#: Collections per scope kind, and which of them accept writes.
_COLLECTIONS = {
    "regions": {
        "forwardingRules",
        "backendServices",
        "healthChecks",
        "addresses",
        "subnetworks",
        "operations",
    },
    "zones": {"instances", "instanceGroups", "operations"},
    "global": {"firewalls", "networks", "operations"},
}
_WRITABLE = {"forwardingRules", "backendServices", "healthChecks", "addresses", "firewalls", "instanceGroups"}
_OP_PREFIX = {
    ("regions", "backendServices"): "regionBackendServices",
    ("regions", "healthChecks"): "regionHealthChecks",
    ("regions", "operations"): "regionOperations",
    ("zones", "operations"): "zoneOperations",
    ("global", "operations"): "globalOperations",
}
#: Custom verbs that only read (everything else that is not GET writes).
READ_VERBS = {"get", "list", "aggregatedList", "listInstances", "wait"}
_QUERY_PARAMS = {
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
_PASSTHROUGH_SCHEMES = {"EXTERNAL", "INTERNAL"}
_PASSTHROUGH_AFFINITIES = {
    "NONE",
    "CLIENT_IP",
    "CLIENT_IP_PROTO",
    "CLIENT_IP_PORT_PROTO",
    "CLIENT_IP_NO_DESTINATION",
}
_FIREWALL_PROTOCOLS = {"tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"}
_HC_SUBOBJECT = {
    "HTTP": "httpHealthCheck",
    "HTTPS": "httpsHealthCheck",
    "HTTP2": "http2HealthCheck",
    "TCP": "tcpHealthCheck",
    "SSL": "sslHealthCheck",
    "GRPC": "grpcHealthCheck",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fingerprint() -> str:
    return base64.b64encode(os.urandom(8)).decode()


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
    if collection not in _COLLECTIONS[scope_kind]:
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


class ComputeEmulator:
    """The state and the request handling of one emulated Compute Engine project."""

    def __init__(
        self, project: str, region: str, *, base_url: str = "https://compute.googleapis.com"
    ) -> None:
        self.project = project
        self.region = region
        self.zones = [f"{region}-{z}" for z in ("a", "b", "c")]
        self.base_url = base_url
        self.operation_delay = 0.0
        self.lock = threading.RLock()
        self._store: dict[tuple[str, str, str], dict[str, Json]] = {}
        self._ids = itertools.count(int.from_bytes(os.urandom(4), "big") * 1000 + 1)
        self._request_ids: dict[str, Json] = {}

    # -- helpers ----------------------------------------------------------------------------------

    def rel(self, project: str, scope: str, collection: str, name: str) -> str:
        return f"projects/{project}/{scope}/{collection}/{name}"

    def link(self, rel: str) -> str:
        return f"{self.base_url}/compute/v1/{rel}"

    def _bucket(self, project: str, scope: str, collection: str) -> dict[str, Json]:
        return self._store.setdefault((project, scope, collection), {})

    def _known_scope(self, project: str, scope: str) -> None:
        if project != self.project:
            raise not_found(f"projects/{project}")
        if scope == "global":
            return
        kind, _, where = scope.partition("/")
        if (kind == "regions" and where != self.region) or (kind == "zones" and where not in self.zones):
            raise not_found(f"projects/{project}/{scope}")

    def resolve(self, value: str, *, field: str, project: str, scope: str, collection: str) -> str:
        """Normalise a reference (URL, partial path or bare name) to a relative path."""
        text = str(value)
        m = re.search(r"/compute/(?:v1|beta|alpha)/(.*)$", text)
        if m:
            text = m.group(1)
        if text.startswith("projects/"):
            rel = text
        elif text.startswith(("regions/", "zones/", "global/")):
            rel = f"projects/{project}/{text}"
        elif "/" not in text:
            rel = self.rel(project, scope, collection, text)
        else:
            raise invalid(field, f"'{value}' is not a valid resource reference")
        parts = rel.split("/")
        ok = (len(parts) == 5 and parts[2] == "global") or (
            len(parts) == 6 and parts[2] in ("regions", "zones")
        )
        if not ok or parts[-2] != collection:
            raise invalid(field, f"'{value}' does not refer to a {_KINDS[collection]}")
        return rel

    def lookup(self, rel: str) -> Json | None:
        parts = rel.split("/")
        scope = "/".join(parts[2:-2])
        return self._store.get((parts[1], scope, parts[-2]), {}).get(parts[-1])

    def _require_ref(self, value: str, *, field: str, project: str, scope: str, collection: str) -> Json:
        rel = self.resolve(value, field=field, project=project, scope=scope, collection=collection)
        found = self.lookup(rel)
        if found is None:
            raise invalid(field, f"The resource '{rel}' was not found")
        return found

    def all_of(self, collection: str) -> list[Json]:
        out: list[Json] = []
        for (_, _, coll), bucket in self._store.items():
            if coll == collection:
                out.extend(bucket.values())
        return out

    def _new_id(self) -> str:
        return str(next(self._ids))

    def _base(self, project: str, scope: str, collection: str, name: str) -> Json:
        res: Json = {
            "kind": f"compute#{_KINDS[collection]}",
            "id": self._new_id(),
            "creationTimestamp": _now(),
            "name": name,
            "selfLink": self.link(self.rel(project, scope, collection, name)),
        }
        kind, _, where = scope.partition("/")
        if kind == "regions":
            res["region"] = self.link(f"projects/{project}/regions/{where}")
        elif kind == "zones":
            res["zone"] = self.link(f"projects/{project}/zones/{where}")
        return res

    @staticmethod
    def rel_of(resource: Json) -> str:
        m = re.search(r"/compute/v1/(.*)$", resource["selfLink"])
        assert m
        return m.group(1)

    # -- seeding (the sandbox's "existing infrastructure") ----------------------------------------

    def seed_network(self, name: str, subnet: str, cidr: str) -> None:
        with self.lock:
            net = self._base(self.project, "global", "networks", name)
            net.update({"autoCreateSubnetworks": False, "routingConfig": {"routingMode": "REGIONAL"}})
            scope = f"regions/{self.region}"
            sub = self._base(self.project, scope, "subnetworks", subnet)
            sub.update(
                {
                    "network": net["selfLink"],
                    "ipCidrRange": cidr,
                    "gatewayAddress": str(ipaddress.ip_network(cidr).network_address + 1),
                    "fingerprint": _fingerprint(),
                }
            )
            net["subnetworks"] = [sub["selfLink"]]
            self._bucket(self.project, "global", "networks")[name] = net
            self._bucket(self.project, scope, "subnetworks")[subnet] = sub

    def seed_instance(self, name: str, zone: str, *, network: str, subnet: str, tags: list[str]) -> Json:
        with self.lock:
            if zone not in self.zones:
                raise ValueError(f"zone {zone} is not in region {self.region}")
            sub = self._bucket(self.project, f"regions/{self.region}", "subnetworks")[subnet]
            used = {i["networkInterfaces"][0]["networkIP"] for i in self.all_of("instances")}
            net = ipaddress.ip_network(sub["ipCidrRange"])
            ip = next(
                str(h) for h in itertools.islice(net.hosts(), 1, None) if str(h) not in used
            )  # skip the gateway
            inst = self._base(self.project, f"zones/{zone}", "instances", name)
            inst.update(
                {
                    "machineType": self.link(
                        f"projects/{self.project}/zones/{zone}/machineTypes/e2-standard-2"
                    ),
                    "status": "RUNNING",
                    "networkInterfaces": [
                        {
                            "name": "nic0",
                            "network": self.link(f"projects/{self.project}/global/networks/{network}"),
                            "subnetwork": sub["selfLink"],
                            "networkIP": ip,
                            "fingerprint": _fingerprint(),
                        }
                    ],
                    "tags": {"items": list(tags), "fingerprint": _fingerprint()},
                    "fingerprint": _fingerprint(),
                }
            )
            self._bucket(self.project, f"zones/{zone}", "instances")[name] = inst
            return copy.deepcopy(inst)

    def put_raw(self, collection: str, scope: str, body: Json) -> Json:
        """Create a resource as if another tool had made it (validated like an insert)."""
        status, _ = self.handle(
            "POST", f"/compute/v1/projects/{self.project}/{scope}/{collection}", {}, copy.deepcopy(body)
        )
        assert status == 200
        with self.lock:
            found = self._bucket(self.project, scope, collection)[body["name"]]
            return self._render(collection, found)

    # -- request handling -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Json]:
        """Answer one request; errors become Google's JSON error shape."""
        try:
            route = parse_route(method, path)
            return 200, self.dispatch(route, query, body)
        except ApiError as exc:
            return exc.code, exc.body()

    def dispatch(self, route: Route, query: dict[str, str], body: Any) -> Json:
        unknown = set(query) - _QUERY_PARAMS
        if unknown:
            raise bad_request(f"Invalid query parameter(s): {', '.join(sorted(unknown))}")
        if route.verb == "wait":
            return self._wait(route)
        with self.lock:
            if route.scope_kind == "aggregated":
                return self._aggregated(route, query)
            self._known_scope(route.project, route.scope)
            request_id = query.get("requestId")
            if route.mutating and request_id and request_id in self._request_ids:
                return copy.deepcopy(self._request_ids[request_id])
            result = self._dispatch_locked(route, query, body)
            if route.mutating and request_id:
                self._request_ids[request_id] = copy.deepcopy(result)
            return result

    def _dispatch_locked(self, route: Route, query: dict[str, str], body: Any) -> Json:
        coll, verb = route.collection, route.verb
        if coll == "operations":
            if verb == "get":
                return self._render_op(self._get(route))
            if verb == "list":
                return self._list(route, query)
            raise ApiError(404, "notFound", f"operations.{verb} is not supported")
        if verb == "get":
            return self._render(coll, self._get(route))
        if verb == "list":
            return self._list(route, query)
        if coll not in _WRITABLE:
            raise ApiError(405, "methodNotAllowed", f"{route.operation} is not supported by the emulator")
        if verb == "insert":
            return self._insert(route, body)
        if verb == "delete":
            return self._delete(route)
        if verb in ("patch", "update"):
            return self._modify(route, body)
        if coll == "instanceGroups" and verb in ("addInstances", "removeInstances", "listInstances"):
            return self._ig_verb(route, body, query)
        raise ApiError(404, "notFound", f"{route.operation} is not supported by the emulator")

    def _get(self, route: Route) -> Json:
        assert route.name is not None
        found = self._bucket(route.project, route.scope, route.collection).get(route.name)
        if found is None:
            raise not_found(self.rel(route.project, route.scope, route.collection, route.name))
        return found

    # -- rendering --------------------------------------------------------------------------------

    def _render(self, collection: str, res: Json) -> Json:
        out = {k: copy.deepcopy(v) for k, v in res.items() if not k.startswith("_")}
        if collection == "instanceGroups":
            out["size"] = len(res.get("_members", []))
        elif collection == "addresses":
            users = self._address_users(res)
            out["status"] = "IN_USE" if users else "RESERVED"
            if users:
                out["users"] = users
        return out

    def _address_users(self, address: Json) -> list[str]:
        region = address.get("region")
        return sorted(
            fr["selfLink"]
            for fr in self.all_of("forwardingRules")
            if fr.get("region") == region and fr.get("IPAddress") == address.get("address")
        )

    def _list(self, route: Route, query: dict[str, str]) -> Json:
        bucket = self._bucket(route.project, route.scope, route.collection)
        if route.collection == "operations":
            items = [self._render_op(op) for op in bucket.values()]
        else:
            items = [self._render(route.collection, r) for r in bucket.values()]
        items = self._filter_sort(items, query)
        start, size = self._page(query)
        page = items[start : start + size]
        out: Json = {
            "kind": f"compute#{_KINDS[route.collection]}List",
            "id": self.rel(route.project, route.scope, route.collection, "")[:-1],
            "selfLink": self.link(f"projects/{route.project}/{route.scope}/{route.collection}"),
        }
        if page:
            out["items"] = page
        if start + size < len(items):
            out["nextPageToken"] = str(start + size)
        return out

    @staticmethod
    def _page(query: dict[str, str]) -> tuple[int, int]:
        try:
            size = int(query.get("maxResults", "500"))
            start = int(query.get("pageToken", "0") or "0")
        except ValueError:
            raise bad_request("Invalid maxResults or pageToken") from None
        if not 0 <= size <= 500:
            raise invalid("maxResults", "must be between 0 and 500")
        return start, size or 500

    @staticmethod
    def _filter_sort(items: list[Json], query: dict[str, str]) -> list[Json]:
        pred = parse_filter(query.get("filter"))
        items = [i for i in items if pred(i)]
        order = query.get("orderBy")
        if order in (None, "", "name"):
            items.sort(key=lambda i: i.get("name", ""))
        elif order == "creationTimestamp desc":
            items.sort(key=lambda i: i.get("creationTimestamp", ""), reverse=True)
        else:
            raise invalid("orderBy", f"'{order}'; supported: name, creationTimestamp desc")
        return items

    def _aggregated(self, route: Route, query: dict[str, str]) -> Json:
        coll = route.collection
        kinds = [k for k, colls in _COLLECTIONS.items() if coll in colls]
        if not kinds or coll == "operations":
            raise ApiError(404, "notFound", f"aggregated/{coll} is not supported")
        scopes: list[str] = []
        for kind in kinds:
            if kind == "regions":
                scopes.append(f"regions/{self.region}")
            elif kind == "zones":
                scopes.extend(f"zones/{z}" for z in self.zones)
            else:
                scopes.append("global")
        pred = parse_filter(query.get("filter"))
        items: Json = {}
        for scope in scopes:
            found = [self._render(coll, r) for r in self._bucket(route.project, scope, coll).values()]
            found = sorted((r for r in found if pred(r)), key=lambda r: r["name"])
            if found:
                items[scope] = {coll: found}
            else:
                items[scope] = {
                    "warning": {
                        "code": "NO_RESULTS_ON_PAGE",
                        "message": "There are no results for scope '" + scope + "' on this page.",
                        "data": [{"key": "scope", "value": scope}],
                    }
                }
        return {
            "kind": f"compute#{_KINDS[coll]}AggregatedList",
            "id": f"projects/{route.project}/aggregated/{coll}",
            "items": items,
            "selfLink": self.link(f"projects/{route.project}/aggregated/{coll}"),
        }

    # -- operations -------------------------------------------------------------------------------

    def _operation(self, route: Route, op_type: str, target: Json | str) -> Json:
        name = f"operation-{int(time.time() * 1000)}-{os.urandom(6).hex()}"
        scope = route.scope
        if isinstance(target, str):
            target_link, target_id = self.link(target), ""
        else:
            target_link, target_id = target["selfLink"], target["id"]
        op = self._base(route.project, scope, "operations", name)
        now = _now()
        op.update(
            {
                "operationType": op_type,
                "targetLink": target_link,
                "targetId": target_id,
                "user": "lbprov-sandbox@example.iam.gserviceaccount.com",
                "insertTime": now,
                "startTime": now,
                "progress": 0,
                "_done_at": time.monotonic() + self.operation_delay,
            }
        )
        self._bucket(route.project, scope, "operations")[name] = op
        return self._render_op(op)

    def _render_op(self, op: Json) -> Json:
        out = {k: copy.deepcopy(v) for k, v in op.items() if not k.startswith("_")}
        if time.monotonic() >= op["_done_at"]:
            out["status"] = "DONE"
            out["progress"] = 100
            out["endTime"] = op.setdefault("_end", _now())
        else:
            out["status"] = "RUNNING"
        return out

    def _wait(self, route: Route) -> Json:
        """``operations.wait``: block until the operation is done, at most 2 minutes (as GCE does)."""
        with self.lock:
            self._known_scope(route.project, route.scope)
            op = self._get(route)
            remaining = op["_done_at"] - time.monotonic()
        if remaining > 0:
            time.sleep(min(remaining, 120.0))
        with self.lock:
            return self._render_op(op)

    # -- writes -----------------------------------------------------------------------------------

    def _insert(self, route: Route, body: Any) -> Json:
        coll = route.collection
        check_fields(body, RESOURCE_TYPES[coll])
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise invalid(
                "resource.name",
                f"'{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'",
            )
        if len(body.get("description", "")) > 2048:
            raise invalid("resource.description", "must be at most 2048 characters")
        bucket = self._bucket(route.project, route.scope, coll)
        rel = self.rel(route.project, route.scope, coll, name)
        if name in bucket:
            raise already_exists(rel)
        validate = _VALIDATORS[coll]
        res = self._base(route.project, route.scope, coll, name)
        res.update(validate(self, route, copy.deepcopy(body), None))
        bucket[name] = res
        return self._operation(route, "insert", res)

    def _delete(self, route: Route) -> Json:
        res = self._get(route)
        rel = self.rel_of(res)
        user = self._first_user(route.collection, res)
        if user is not None:
            kind = re.sub(r"(?<!^)([A-Z])", r"_\1", _KINDS[route.collection]).lower()
            raise in_use(kind, rel, user)
        op = self._operation(route, "delete", res)
        del self._bucket(route.project, route.scope, route.collection)[res["name"]]
        return op

    def _first_user(self, collection: str, res: Json) -> str | None:
        """The relative path of a resource that references ``res``, if any."""
        rel = self.rel_of(res)
        if collection == "healthChecks":
            for bs in self.all_of("backendServices"):
                if rel in bs.get("_healthChecks", []):
                    return self.rel_of(bs)
        elif collection == "instanceGroups":
            for bs in self.all_of("backendServices"):
                if rel in bs.get("_groups", []):
                    return self.rel_of(bs)
        elif collection == "backendServices":
            for fr in self.all_of("forwardingRules"):
                if fr.get("_backendService") == rel:
                    return self.rel_of(fr)
        elif collection == "addresses":
            users = self._address_users(res)
            if users:
                return str(re.sub(r"^.*/compute/v1/", "", users[0]))
        return None

    def _modify(self, route: Route, body: Any) -> Json:
        coll = route.collection
        res = self._get(route)
        if coll in ("addresses", "instanceGroups"):
            raise ApiError(404, "notFound", f"{route.operation} does not exist in the Compute API")
        check_fields(body, RESOURCE_TYPES[coll])
        if coll in ("backendServices", "forwardingRules"):
            if "fingerprint" not in body:
                raise condition_not_met(
                    f"Required field 'resource.fingerprint' not specified: {route.operation} needs the "
                    "resource's current fingerprint"
                )
            if body["fingerprint"] != res.get("fingerprint"):
                raise condition_not_met(
                    "Invalid fingerprint: the resource changed since it was read; read it again"
                )
        if body.get("name", res["name"]) != res["name"]:
            raise invalid("resource.name", "cannot be changed")
        if coll == "forwardingRules":
            allowed = {"allowGlobalAccess", "fingerprint", "name", "allowPscGlobalAccess"}
            bad = sorted(k for k in body if k not in allowed and body[k] != res.get(k))
            if bad:
                raise invalid(
                    f"resource.{bad[0]}",
                    "cannot be updated; forwardingRules.patch only changes allowGlobalAccess "
                    "(recreate the forwarding rule to change anything else)",
                )
            res.update({k: v for k, v in body.items() if k in allowed})
            res["fingerprint"] = _fingerprint()
            return self._operation(route, route.verb, res)
        current = {k: v for k, v in res.items() if not k.startswith("_")}
        for key in ("kind", "id", "creationTimestamp", "selfLink", "region", "zone", "fingerprint"):
            current.pop(key, None)
        merged = {**current, **body} if route.verb == "patch" else {"name": res["name"], **body}
        merged.pop("fingerprint", None)
        for out_only in ("kind", "id", "creationTimestamp", "selfLink", "region", "zone"):
            merged.pop(out_only, None)
        updated = _VALIDATORS[coll](self, route, copy.deepcopy(merged), res)
        keep: Json = {
            k: res[k] for k in ("kind", "id", "creationTimestamp", "selfLink", "region", "zone") if k in res
        }
        res.clear()
        res.update(keep)
        res.update(updated)
        return self._operation(route, route.verb, res)

    def _ig_verb(self, route: Route, body: Any, query: dict[str, str]) -> Json:
        ig = self._get(route)
        members: list[str] = ig.setdefault("_members", [])
        desc = RESOURCE_TYPES[f"instanceGroups{route.verb[0].upper()}{route.verb[1:]}Request"]
        check_fields(body if body is not None else {}, desc, "resource")
        if route.verb == "listInstances":
            state = (body or {}).get("instanceState", "ALL")
            if state not in ("ALL", "RUNNING"):
                raise invalid("resource.instanceState", f"'{state}' is not one of ALL, RUNNING")
            items = [{"instance": self.link(m), "status": "RUNNING"} for m in members]
            items = [i for i in self._filter_sort_members(items, query)]
            start, size = self._page(query)
            out: Json = {
                "kind": "compute#instanceGroupsListInstances",
                "id": self.rel_of(ig),
                "selfLink": ig["selfLink"] + "/listInstances",
            }
            if items[start : start + size]:
                out["items"] = items[start : start + size]
            if start + size < len(items):
                out["nextPageToken"] = str(start + size)
            return out
        refs = (body or {}).get("instances") or []
        if not refs:
            raise invalid("resource.instances", "at least one instance is required")
        rels: list[str] = []
        zone = route.scope.split("/")[1]
        for i, ref in enumerate(refs):
            field = f"resource.instances[{i}].instance"
            rel = self.resolve(
                ref.get("instance", ""),
                field=field,
                project=route.project,
                scope=route.scope,
                collection="instances",
            )
            inst = self.lookup(rel)
            if inst is None:
                raise invalid(field, f"The resource '{rel}' was not found")
            if rel.split("/")[3] != zone:
                raise invalid(field, f"instance '{rel}' is not in zone {zone} of the instance group")
            if rel in rels:
                raise invalid(field, f"instance '{rel}' is listed twice")
            rels.append(rel)
            network = inst["networkInterfaces"][0]["network"]
            if route.verb == "addInstances":
                if rel in members:
                    raise ApiError(
                        400,
                        "memberAlreadyExists",
                        f"Resource '{rel}' is already a member of '{self.rel_of(ig)}'",
                    )
                if ig.get("network") and ig["network"] != network:
                    raise invalid(
                        field, f"instance '{rel}' is not in the instance group's network {ig['network']}"
                    )
            elif rel not in members:
                raise ApiError(
                    400, "memberNotFound", f"Resource '{rel}' is not a member of '{self.rel_of(ig)}'"
                )
        if route.verb == "addInstances":
            for rel in rels:
                members.append(rel)
                if not ig.get("network"):
                    ig["network"] = self.lookup(rel)["networkInterfaces"][0]["network"]  # type: ignore[index]
                    ig["subnetwork"] = self.lookup(rel)["networkInterfaces"][0]["subnetwork"]  # type: ignore[index]
        else:
            for rel in rels:
                members.remove(rel)
        return self._operation(route, route.verb, ig)

    @staticmethod
    def _filter_sort_members(items: list[Json], query: dict[str, str]) -> list[Json]:
        pred = parse_filter(query.get("filter"))
        return sorted((i for i in items if pred(i)), key=lambda i: i["instance"])


# -- per-collection validation ------------------------------------------------------------------
#
# Each validator gets the (copied) request body, and the current resource for updates, and returns
# the fields to store (with defaults applied, references normalised to URLs and private
# ``_``-prefixed bookkeeping for reference checks). It raises ApiError for what the API refuses.

Validator = Callable[[ComputeEmulator, Route, Json, Json | None], Json]


def _int_field(body: Json, key: str, default: int, lo: int, hi: int) -> int:
    value = int(body.get(key, default))
    if not lo <= value <= hi:
        raise invalid(f"resource.{key}", f"{value} is not in [{lo}, {hi}]")
    body[key] = value
    return value


def _health_check(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    hc_type = body.get("type")
    if hc_type not in _HC_SUBOBJECT:
        raise invalid("resource.type", f"'{hc_type}'; a health check needs one of {', '.join(_HC_SUBOBJECT)}")
    sub_key = _HC_SUBOBJECT[hc_type]
    for other in _HC_SUBOBJECT.values():
        if other != sub_key and other in body:
            raise invalid(f"resource.{other}", f"does not match the health check type {hc_type}")
    sub = body.setdefault(sub_key, {})
    spec = sub.get("portSpecification", "USE_FIXED_PORT")
    if spec == "USE_FIXED_PORT":
        port = int(sub.get("port", 80))
        if not 1 <= port <= 65535:
            raise invalid(f"resource.{sub_key}.port", f"{port} is not in [1, 65535]")
        sub["port"] = port
    if hc_type in ("HTTP", "HTTPS", "HTTP2"):
        path = sub.setdefault("requestPath", "/")
        if not path.startswith("/"):
            raise invalid(f"resource.{sub_key}.requestPath", f"'{path}' must start with '/'")
        sub.setdefault("proxyHeader", "NONE")
    interval = _int_field(body, "checkIntervalSec", 5, 1, 300)
    timeout = _int_field(body, "timeoutSec", 5, 1, 300)
    if timeout > interval:
        raise invalid(
            "resource.timeoutSec", f"{timeout} must be less than or equal to checkIntervalSec ({interval})"
        )
    _int_field(body, "healthyThreshold", 2, 1, 10)
    _int_field(body, "unhealthyThreshold", 2, 1, 10)
    return body


def _backend_service(emu: ComputeEmulator, route: Route, body: Json, old: Json | None) -> Json:
    scheme = body.setdefault("loadBalancingScheme", "EXTERNAL")
    if old is not None and old.get("loadBalancingScheme") != scheme:
        raise invalid("resource.loadBalancingScheme", "cannot be changed; recreate the backend service")
    if scheme not in _PASSTHROUGH_SCHEMES:
        raise invalid(
            "resource.loadBalancingScheme",
            f"'{scheme}' is not supported for regional backend services by the emulator (EXTERNAL, INTERNAL)",
        )
    protocol = body.setdefault("protocol", "HTTP")
    if protocol not in ("TCP", "UDP", "UNSPECIFIED"):
        raise invalid(
            "resource.protocol",
            f"'{protocol}': a passthrough ({scheme}) backend service takes TCP, UDP or UNSPECIFIED",
        )
    affinity = body.setdefault("sessionAffinity", "NONE")
    if affinity not in _PASSTHROUGH_AFFINITIES or (
        affinity == "CLIENT_IP_NO_DESTINATION" and scheme != "INTERNAL"
    ):
        raise invalid(
            "resource.sessionAffinity",
            f"'{affinity}' is not valid for a {scheme} passthrough backend service",
        )
    for key in ("portName", "port", "affinityCookieTtlSec", "enableCDN", "securityPolicy"):
        if key in body and scheme in _PASSTHROUGH_SCHEMES and key != "affinityCookieTtlSec":
            raise invalid(f"resource.{key}", f"must not be set for a {scheme} passthrough backend service")
    hcs = body.get("healthChecks") or []
    if len(hcs) != 1:
        raise invalid(
            "resource.healthChecks",
            f"a {scheme} passthrough backend service needs exactly one health check, got {len(hcs)}",
        )
    hc_rels = []
    for i, ref in enumerate(hcs):
        field = f"resource.healthChecks[{i}]"
        hc = emu._require_ref(
            ref, field=field, project=route.project, scope=route.scope, collection="healthChecks"
        )
        hc_rels.append(emu.rel_of(hc))
        body["healthChecks"][i] = hc["selfLink"]
    if body.get("network"):
        net = emu._require_ref(
            body["network"],
            field="resource.network",
            project=route.project,
            scope="global",
            collection="networks",
        )
        body["network"] = net["selfLink"]
    groups: list[str] = []
    for i, backend in enumerate(body.get("backends") or []):
        field = f"resource.backends[{i}]"
        ig = emu._require_ref(
            backend.get("group", ""),
            field=f"{field}.group",
            project=route.project,
            scope=route.scope,
            collection="instanceGroups",
        )
        rel = emu.rel_of(ig)
        if rel in groups:
            raise invalid(f"{field}.group", f"instance group '{rel}' is listed twice")
        if not rel.split("/")[3].startswith(emu.region + "-"):
            raise invalid(f"{field}.group", f"instance group '{rel}' is not in region {emu.region}")
        groups.append(rel)
        backend["group"] = ig["selfLink"]
        mode = backend.setdefault("balancingMode", "UTILIZATION")
        if mode != "CONNECTION":
            raise invalid(
                f"{field}.balancingMode",
                f"'{mode}': {scheme} passthrough backend services support only CONNECTION",
            )
        if (
            scheme == "INTERNAL"
            and ig.get("network")
            and body.get("network")
            and ig["network"] != body["network"]
        ):
            raise invalid(
                f"{field}.group", "instance group is in a different network than the backend service"
            )
    if old is not None and old.get("network") and body.get("network", old["network"]) != old["network"]:
        raise invalid("resource.network", "cannot be changed")
    body["fingerprint"] = _fingerprint()
    body["_healthChecks"] = hc_rels
    body["_groups"] = groups
    return body


def _check_port_items(items: list[str], field: str) -> list[tuple[int, int]]:
    ranges = []
    for i, item in enumerate(items):
        m = _PORT_ITEM.match(str(item))
        lo = int(m.group(1)) if m else 0
        hi = int(m.group(2) or lo) if m else 0
        if not m or not 1 <= lo <= hi <= 65535:
            raise invalid(f"{field}[{i}]", f"'{item}' is not a port or port range in 1-65535")
        ranges.append((lo, hi))
    return ranges


def _forwarding_rule(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    scheme = body.setdefault("loadBalancingScheme", "EXTERNAL")
    if scheme not in _PASSTHROUGH_SCHEMES:
        raise invalid(
            "resource.loadBalancingScheme",
            f"'{scheme}' is not supported for regional forwarding rules by the emulator (EXTERNAL, INTERNAL)",
        )
    protocol = body.setdefault("IPProtocol", "TCP")
    if protocol not in ("TCP", "UDP", "L3_DEFAULT"):
        raise invalid(
            "resource.IPProtocol",
            f"'{protocol}' is not supported with a backend service (TCP, UDP, L3_DEFAULT)",
        )
    if "target" in body:
        raise invalid(
            "resource.target", "target pools and target instances are not emulated; use backendService"
        )
    if not body.get("backendService"):
        raise invalid("resource.backendService", f"a {scheme} forwarding rule needs a backend service")
    bs = emu._require_ref(
        body["backendService"],
        field="resource.backendService",
        project=route.project,
        scope=route.scope,
        collection="backendServices",
    )
    if bs["loadBalancingScheme"] != scheme:
        raise invalid(
            "resource.loadBalancingScheme",
            f"'{scheme}' does not match the backend service's scheme {bs['loadBalancingScheme']}",
        )
    if bs["protocol"] != {"TCP": "TCP", "UDP": "UDP", "L3_DEFAULT": "UNSPECIFIED"}[protocol]:
        raise invalid(
            "resource.IPProtocol",
            f"'{protocol}' does not match the backend service's protocol {bs['protocol']}",
        )
    body["backendService"] = bs["selfLink"]
    body["_backendService"] = emu.rel_of(bs)
    given = [k for k in ("ports", "portRange", "allPorts") if body.get(k) not in (None, [], "", False)]
    if len(given) > 1:
        raise invalid(f"resource.{given[1]}", f"{' and '.join(given)} are mutually exclusive")
    if "ports" in given:
        if len(body["ports"]) > 5:
            raise invalid(
                "resource.ports", f"at most 5 ports may be listed, got {len(body['ports'])}; use allPorts"
            )
        port_ranges = _check_port_items(body["ports"], "resource.ports")
    elif "portRange" in given:
        if scheme == "INTERNAL":
            raise invalid("resource.portRange", "INTERNAL forwarding rules take ports or allPorts")
        port_ranges = _check_port_items([body["portRange"]], "resource.portRange")
    elif "allPorts" in given:
        port_ranges = [(1, 65535)]
    elif scheme == "INTERNAL" or protocol == "L3_DEFAULT":
        raise invalid("resource.ports", f"a {scheme} {protocol} forwarding rule needs ports or allPorts")
    else:
        port_ranges = [(1, 65535)]
        body["portRange"] = "1-65535"
    if protocol == "L3_DEFAULT" and "allPorts" not in given:
        raise invalid("resource.allPorts", "L3_DEFAULT forwarding rules need allPorts")
    region_scope = route.scope
    subnet: Json | None = None
    if scheme == "EXTERNAL":
        for key in ("subnetwork", "network", "allowGlobalAccess"):
            if key in body:
                raise invalid(f"resource.{key}", "must not be set for an EXTERNAL forwarding rule")
        tier = body.setdefault("networkTier", "PREMIUM")
        if tier not in ("PREMIUM", "STANDARD"):
            raise invalid("resource.networkTier", f"'{tier}' is not PREMIUM or STANDARD")
    else:
        if body.get("subnetwork"):
            subnet = emu._require_ref(
                body["subnetwork"],
                field="resource.subnetwork",
                project=route.project,
                scope=region_scope,
                collection="subnetworks",
            )
        if body.get("network"):
            net = emu._require_ref(
                body["network"],
                field="resource.network",
                project=route.project,
                scope="global",
                collection="networks",
            )
            if subnet is not None and subnet["network"] != net["selfLink"]:
                raise invalid("resource.subnetwork", "is not in the given network")
            if subnet is None:
                subnet = next(
                    (
                        s
                        for s in emu._bucket(route.project, region_scope, "subnetworks").values()
                        if s["network"] == net["selfLink"]
                    ),
                    None,
                )
        if subnet is None:
            raise invalid(
                "resource.subnetwork",
                "an INTERNAL forwarding rule needs a subnetwork (or a network with a subnetwork in the region)",
            )
        body["subnetwork"] = subnet["selfLink"]
        body["network"] = subnet["network"]
        if "networkTier" in body and body["networkTier"] != "PREMIUM":
            raise invalid("resource.networkTier", "INTERNAL forwarding rules are PREMIUM only")
    addresses = list(emu._bucket(route.project, region_scope, "addresses").values())
    ip_value = body.get("IPAddress")
    reserved: Json | None = None
    if ip_value:
        if "/" in str(ip_value):
            reserved = emu._require_ref(
                ip_value,
                field="resource.IPAddress",
                project=route.project,
                scope=region_scope,
                collection="addresses",
            )
            ip = reserved["address"]
        else:
            try:
                ip = str(ipaddress.IPv4Address(ip_value))
            except ValueError:
                raise invalid(
                    "resource.IPAddress", f"'{ip_value}' is not an IPv4 address or an address reference"
                ) from None
            reserved = next((a for a in addresses if a["address"] == ip), None)
        if reserved is not None:
            want_type = "EXTERNAL" if scheme == "EXTERNAL" else "INTERNAL"
            if reserved["addressType"] != want_type:
                raise invalid(
                    "resource.IPAddress",
                    f"address {reserved['name']} is {reserved['addressType']}, the forwarding rule is {scheme}",
                )
            if scheme == "EXTERNAL" and reserved.get("networkTier", "PREMIUM") != body.get("networkTier"):
                raise invalid(
                    "resource.networkTier", "does not match the network tier of the reserved address"
                )
            if (
                scheme == "INTERNAL"
                and subnet is not None
                and reserved.get("subnetwork") != subnet["selfLink"]
            ):
                raise invalid("resource.IPAddress", "the reserved address is in another subnetwork")
        elif scheme == "EXTERNAL":
            raise invalid(
                "resource.IPAddress",
                f"'{ip}': an external IP address must be reserved before a forwarding rule can use it",
            )
        else:
            assert subnet is not None
            if not ipam.usable_in_subnet(ip, subnet["ipCidrRange"]):
                raise invalid(
                    "resource.IPAddress",
                    f"'{ip}' is not a usable address of subnetwork {subnet['name']} ({subnet['ipCidrRange']})",
                )
            if ip in {i["networkInterfaces"][0]["networkIP"] for i in emu.all_of("instances")}:
                raise invalid("resource.IPAddress", f"'{ip}' is in use by an instance")
    else:
        used = {a["address"] for a in emu.all_of("addresses")} | {
            f["IPAddress"] for f in emu.all_of("forwardingRules")
        }
        if scheme == "EXTERNAL":
            allocated = ipam.allocate_external(used)
        else:
            assert subnet is not None
            used |= {i["networkInterfaces"][0]["networkIP"] for i in emu.all_of("instances")}
            allocated = ipam.allocate_internal(subnet["ipCidrRange"], used)
        if allocated is None:
            raise ApiError(403, "quotaExceeded", "No IP addresses are left in the range")
        ip = allocated
    for other in emu._bucket(route.project, region_scope, "forwardingRules").values():
        if other.get("IPAddress") != ip:
            continue
        if reserved is None:
            raise invalid(
                "resource.IPAddress",
                f"'{ip}' is in use by forwarding rule {other['name']}; sharing an IP needs a reserved address",
            )
        if scheme == "INTERNAL" and reserved.get("purpose") != "SHARED_LOADBALANCER_VIP":
            raise invalid(
                "resource.IPAddress",
                f"'{ip}' is in use by forwarding rule {other['name']}; internal forwarding rules share an IP only through an address with purpose SHARED_LOADBALANCER_VIP",
            )
        if other.get("IPProtocol") == protocol and _overlap(other["_ports"], port_ranges):
            raise invalid(
                "resource.ports", f"{protocol} ports overlap with forwarding rule {other['name']} on {ip}"
            )
    body["IPAddress"] = ip
    body["_ports"] = port_ranges
    body["fingerprint"] = _fingerprint()
    if "labels" in body:
        body["labelFingerprint"] = _fingerprint()
    return body


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    return any(lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in a for lo2, hi2 in b)


def _address(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    addr_type = body.setdefault("addressType", "EXTERNAL")
    if addr_type not in ("EXTERNAL", "INTERNAL"):
        raise invalid("resource.addressType", f"'{addr_type}' is not EXTERNAL or INTERNAL")
    if body.get("ipVersion", "IPV4") != "IPV4":
        raise invalid("resource.ipVersion", "only IPV4 addresses are emulated")
    taken_by_addresses = {a["address"]: a["name"] for a in emu.all_of("addresses")}
    wanted = body.get("address")
    if wanted is not None:
        try:
            wanted = str(ipaddress.IPv4Address(wanted))
        except ValueError:
            raise invalid("resource.address", f"'{wanted}' is not an IPv4 address") from None
        if wanted in taken_by_addresses:
            raise ApiError(
                400,
                "invalid",
                f"IP address '{wanted}' is already reserved by address '{taken_by_addresses[wanted]}'",
            )
    if addr_type == "EXTERNAL":
        for key in ("subnetwork", "network"):
            if key in body:
                raise invalid(f"resource.{key}", "must not be set for an EXTERNAL address")
        purpose = body.get("purpose")
        if purpose is not None:
            raise invalid("resource.purpose", f"'{purpose}' is not valid for a regional EXTERNAL address")
        tier = body.setdefault("networkTier", "PREMIUM")
        if tier not in ("PREMIUM", "STANDARD"):
            raise invalid("resource.networkTier", f"'{tier}' is not PREMIUM or STANDARD")
        if wanted is not None:
            if not ipam.in_external_pool(wanted):
                raise invalid(
                    "resource.address",
                    f"'{wanted}' is not an external address available to this project (the emulator hands out 203.0.113.0/24 and 198.51.100.0/24)",
                )
            holder = next((f for f in emu.all_of("forwardingRules") if f["IPAddress"] == wanted), None)
            if holder is not None and holder["loadBalancingScheme"] != "EXTERNAL":
                raise invalid("resource.address", f"'{wanted}' is in use")
        else:
            used = set(taken_by_addresses) | {f["IPAddress"] for f in emu.all_of("forwardingRules")}
            wanted = ipam.allocate_external(used)
    else:
        if not body.get("subnetwork"):
            raise invalid("resource.subnetwork", "an INTERNAL address needs a subnetwork")
        subnet = emu._require_ref(
            body["subnetwork"],
            field="resource.subnetwork",
            project=route.project,
            scope=route.scope,
            collection="subnetworks",
        )
        body["subnetwork"] = subnet["selfLink"]
        if "network" in body:
            raise invalid("resource.network", "is only for VPC_PEERING/IPSEC addresses; give the subnetwork")
        purpose = body.setdefault("purpose", "GCE_ENDPOINT")
        if purpose not in ("GCE_ENDPOINT", "SHARED_LOADBALANCER_VIP"):
            raise invalid(
                "resource.purpose",
                f"'{purpose}' is not supported for a regional INTERNAL address by the emulator (GCE_ENDPOINT, SHARED_LOADBALANCER_VIP)",
            )
        if "networkTier" in body:
            raise invalid("resource.networkTier", "must not be set for an INTERNAL address")
        instance_ips = {i["networkInterfaces"][0]["networkIP"] for i in emu.all_of("instances")}
        if wanted is not None:
            if not ipam.usable_in_subnet(wanted, subnet["ipCidrRange"]):
                raise invalid(
                    "resource.address",
                    f"'{wanted}' is not a usable address of subnetwork {subnet['name']} ({subnet['ipCidrRange']})",
                )
            if wanted in instance_ips:
                raise invalid("resource.address", f"'{wanted}' is in use by an instance")
        else:
            used = (
                set(taken_by_addresses)
                | instance_ips
                | {f["IPAddress"] for f in emu.all_of("forwardingRules")}
            )
            wanted = ipam.allocate_internal(subnet["ipCidrRange"], used)
    if wanted is None:
        raise ApiError(403, "quotaExceeded", "No IP addresses are left in the range")
    body["address"] = wanted
    if "labels" in body:
        body["labelFingerprint"] = _fingerprint()
    return body


_TAG = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def _firewall(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    net = emu._require_ref(
        body.get("network") or "global/networks/default",
        field="resource.network",
        project=route.project,
        scope="global",
        collection="networks",
    )
    body["network"] = net["selfLink"]
    direction = body.setdefault("direction", "INGRESS")
    _int_field(body, "priority", 1000, 0, 65535)
    allowed, denied = body.get("allowed") or [], body.get("denied") or []
    if bool(allowed) == bool(denied):
        raise invalid("resource.allowed", "exactly one of allowed and denied must be given")
    key = "allowed" if allowed else "denied"
    for i, rule in enumerate(allowed or denied):
        proto = str(rule.get("IPProtocol", ""))
        if proto not in _FIREWALL_PROTOCOLS and not (proto.isdigit() and 0 <= int(proto) <= 255):
            raise invalid(
                f"resource.{key}[{i}].IPProtocol",
                f"'{proto}' is not a protocol name ({', '.join(sorted(_FIREWALL_PROTOCOLS))}) or number",
            )
        if rule.get("ports"):
            if proto not in ("tcp", "udp", "sctp", "all", "6", "17", "132"):
                raise invalid(
                    f"resource.{key}[{i}].ports", f"ports are only valid with tcp, udp or sctp, not '{proto}'"
                )
            _check_port_items(rule["ports"], f"resource.{key}[{i}].ports")
    for field in ("sourceRanges", "destinationRanges"):
        for i, cidr in enumerate(body.get(field) or []):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise invalid(f"resource.{field}[{i}]", f"'{cidr}' is not a CIDR") from None
    if direction == "INGRESS" and "destinationRanges" in body and not body["destinationRanges"]:
        body.pop("destinationRanges")
    if direction == "INGRESS" and not (
        body.get("sourceRanges") or body.get("sourceTags") or body.get("sourceServiceAccounts")
    ):
        raise invalid(
            "resource.sourceRanges", "an INGRESS rule needs sourceRanges, sourceTags or sourceServiceAccounts"
        )
    for i, tag in enumerate(body.get("targetTags") or []):
        if not _TAG.match(tag):
            raise invalid(f"resource.targetTags[{i}]", f"'{tag}' is not a valid network tag")
    if body.get("targetTags") and body.get("targetServiceAccounts"):
        raise invalid(
            "resource.targetServiceAccounts", "targetTags and targetServiceAccounts are mutually exclusive"
        )
    if len(body.get("sourceRanges") or []) > 5000:
        raise invalid("resource.sourceRanges", "at most 5000 source ranges")
    body.setdefault("disabled", False)
    body.setdefault("logConfig", {"enable": False})
    return body


def _instance_group(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    if body.get("network"):
        net = emu._require_ref(
            body["network"],
            field="resource.network",
            project=route.project,
            scope="global",
            collection="networks",
        )
        body["network"] = net["selfLink"]
    if "size" in body:
        body.pop("size")
    for i, named in enumerate(body.get("namedPorts") or []):
        if not 1 <= int(named.get("port", 0)) <= 65535:
            raise invalid(f"resource.namedPorts[{i}].port", "is not in [1, 65535]")
    body["fingerprint"] = _fingerprint()
    body["_members"] = []
    return body


_VALIDATORS: dict[str, Validator] = {
    "healthChecks": _health_check,
    "backendServices": _backend_service,
    "forwardingRules": _forwarding_rule,
    "addresses": _address,
    "firewalls": _firewall,
    "instanceGroups": _instance_group,
}
