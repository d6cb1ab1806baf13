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

import copy
import ipaddress
import itertools
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from lbprov_gcp.sandbox import (
    addresses,
    backend_services,
    discovery,
    firewalls,
    forwarding_rules,
    health_checks,
    http_health_checks,
    instance_groups,
    ipam,
    target_pools,
)
from lbprov_gcp.sandbox.errors import (
    ApiError,
    already_exists,
    bad_request,
    condition_not_met,
    in_use,
    invalid,
    not_found,
)
from lbprov_gcp.sandbox.fields import LABEL_KEY, LABEL_VALUE, NAME, fingerprint, now
from lbprov_gcp.sandbox.filters import parse_filter
from lbprov_gcp.sandbox.routes import (
    COLLECTIONS,
    KINDS,
    QUERY_PARAMS,
    READ_VERBS,
    WRITABLE,
    Route,
    parse_route,
)
from lbprov_gcp.sandbox.schema import RESOURCE_TYPES, check_fields

__all__ = ["READ_VERBS", "ComputeEmulator", "Route", "parse_route"]

Json = dict[str, Any]


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
        #: The regional IN_USE_ADDRESSES quota: external IPs reserved or held by forwarding rules.
        self.in_use_addresses_quota = ipam.IN_USE_ADDRESSES_QUOTA
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

    def _other_location(self, route: Route) -> bool:
        """A well-formed region or zone of this project that the emulator does not hold."""
        kind, _, where = route.scope.partition("/")
        if route.project != self.project or kind not in ("regions", "zones"):
            return False
        pattern = r"[a-z]+-[a-z]+[0-9]+" + ("-[a-z]" if kind == "zones" else "")
        known = where == self.region if kind == "regions" else where in self.zones
        return not known and re.fullmatch(pattern, where) is not None

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
            raise invalid(field, f"'{value}' does not refer to a {KINDS[collection]}")
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
            "kind": f"compute#{KINDS[collection]}",
            "id": self._new_id(),
            "creationTimestamp": now(),
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

    def seed_network(
        self,
        name: str,
        subnet: str,
        cidr: str,
        *,
        ipv6_access_type: str | None = None,
        ipv6_prefix: str | None = None,
    ) -> None:
        """A custom-mode network with one subnetwork; dual-stack (``stackType: IPV4_IPV6``) when
        ``ipv6_access_type`` is EXTERNAL or INTERNAL, with the /64 ``ipv6_prefix`` as its
        ``externalIpv6Prefix`` or ``internalIpv6Prefix`` (compute.v1.json, Subnetwork)."""
        with self.lock:
            existing = self._bucket(self.project, "global", "networks").get(name)
            net = existing or self._base(self.project, "global", "networks", name)
            net.update({"autoCreateSubnetworks": False, "routingConfig": {"routingMode": "REGIONAL"}})
            scope = f"regions/{self.region}"
            sub = self._base(self.project, scope, "subnetworks", subnet)
            sub.update(
                {
                    "network": net["selfLink"],
                    "ipCidrRange": cidr,
                    "gatewayAddress": str(ipaddress.ip_network(cidr).network_address + 1),
                    "fingerprint": fingerprint(),
                    "stackType": "IPV4_ONLY",
                }
            )
            if ipv6_access_type is not None:
                prefix = ipv6_prefix or ipam.ipv6_subnet_prefix(len(self.all_of("subnetworks")))
                sub["stackType"] = "IPV4_IPV6"
                sub["ipv6AccessType"] = ipv6_access_type
                sub["externalIpv6Prefix" if ipv6_access_type == "EXTERNAL" else "internalIpv6Prefix"] = prefix
            net["subnetworks"] = [*net.get("subnetworks", []), sub["selfLink"]]
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
                            "fingerprint": fingerprint(),
                        }
                    ],
                    "tags": {"items": list(tags), "fingerprint": fingerprint()},
                    "fingerprint": fingerprint(),
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
            found = discovery.method(route.scope_kind, route.collection, route.verb, method)
            if route.mutating:
                discovery.check_request(found, body)
            return 200, self.dispatch(route, query, body)
        except ApiError as exc:
            return exc.code, exc.body()

    def dispatch(self, route: Route, query: dict[str, str], body: Any) -> Json:
        unknown = set(query) - QUERY_PARAMS
        if unknown:
            raise bad_request(f"Invalid query parameter(s): {', '.join(sorted(unknown))}")
        if route.verb == "wait":
            return self._wait(route)
        with self.lock:
            if route.scope_kind == "aggregated":
                return self._aggregated(route, query)
            if route.verb == "list" and self._other_location(route):
                # Another region or zone of the project: real GCE lists it (empty here), not 404.
                return {
                    "kind": f"compute#{KINDS[route.collection]}List",
                    "id": f"projects/{route.project}/{route.scope}/{route.collection}",
                    "selfLink": self.link(f"projects/{route.project}/{route.scope}/{route.collection}"),
                }
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
        if coll == "backendServices" and verb == "getHealth":
            return backend_services.get_health(self, route, body)
        if coll not in WRITABLE:
            raise ApiError(405, "methodNotAllowed", f"{route.operation} is not supported by the emulator")
        if verb == "insert":
            return self._insert(route, body)
        if verb == "delete":
            return self._delete(route)
        if verb in ("patch", "update"):
            return self._modify(route, body)
        if coll == "instanceGroups" and verb in ("addInstances", "removeInstances", "listInstances"):
            return instance_groups.member_verb(self, route, body, query)
        if coll == "backendServices" and verb == "getHealth":
            return backend_services.get_health(self, route, body)
        if coll in ("forwardingRules", "addresses") and verb == "setLabels":
            return self._set_labels(route, body)
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
            "kind": f"compute#{KINDS[route.collection]}List",
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
        kinds = [k for k, colls in COLLECTIONS.items() if coll in colls]
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
            "kind": f"compute#{KINDS[coll]}AggregatedList",
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
        stamp = now()
        op.update(
            {
                "operationType": op_type,
                "targetLink": target_link,
                "targetId": target_id,
                "user": "lbprov-sandbox@example.iam.gserviceaccount.com",
                "insertTime": stamp,
                "startTime": stamp,
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
            out["endTime"] = op.setdefault("_end", now())
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
        if coll in RESOURCE_TYPES:  # httpHealthChecks: no message type; its validator checks the fields
            check_fields(body, RESOURCE_TYPES[coll])
        name = body.get("name")
        if not isinstance(name, str) or not NAME.match(name):
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
            kind = re.sub(r"(?<!^)([A-Z])", r"_\1", KINDS[route.collection]).lower()
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
        elif collection == "httpHealthChecks":
            for pool in self.all_of("targetPools"):
                if rel in pool.get("_healthChecks", []):
                    return self.rel_of(pool)
        elif collection == "targetPools":
            for fr in self.all_of("forwardingRules"):
                if fr.get("_target") == rel:
                    return self.rel_of(fr)
        # An address is not listed: releasing a reservation that a forwarding rule holds succeeds, and
        # the rule keeps the IP as an ephemeral one. cloud-provider-gcp relies on it after each
        # ensure (gce_loadbalancer_external.go: "It is safe to release the static IP (which just
        # demotes it to ephemeral) now that it is attached.").
        return None

    def _set_labels(self, route: Route, body: Any) -> Json:
        """``setLabels``: the labels of a forwarding rule or address, guarded by ``labelFingerprint``.

        compute.v1.json, RegionSetLabelsRequest.labelFingerprint: "The fingerprint of the previous
        set of labels for this resource, used to detect conflicts. The fingerprint is initially
        generated by Compute Engine and changes after every request to modify or update labels. You
        must always provide an up-to-date fingerprint hash in order to update or change labels."
        """
        res = self._get(route)
        check_fields(body or {}, RESOURCE_TYPES["regionSetLabelsRequest"])
        if (body or {}).get("labelFingerprint") != res.get("labelFingerprint"):
            raise condition_not_met(
                "Labels fingerprint either invalid or resource labels have changed; read the resource again"
            )
        labels = dict((body or {}).get("labels") or {})
        for key, value in labels.items():
            if not LABEL_KEY.match(key) or not LABEL_VALUE.match(str(value)):
                raise invalid(
                    f"labels.{key}", "label keys and values are lowercase letters, digits, '_', '-'"
                )
        res["labels"] = labels
        res["labelFingerprint"] = fingerprint()
        return self._operation(route, "setLabels", res)

    def _modify(self, route: Route, body: Any) -> Json:
        coll = route.collection
        res = self._get(route)
        if coll in ("addresses", "instanceGroups", "targetPools"):
            raise ApiError(404, "notFound", f"{route.operation} does not exist in the Compute API")
        if coll in RESOURCE_TYPES:
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
            res["fingerprint"] = fingerprint()
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


# -- per-collection validation ------------------------------------------------------------------
#
# Each validator (one module per resource kind) gets the (copied) request body, and the current
# resource for updates, and returns the fields to store (with defaults applied, references
# normalised to URLs and private ``_``-prefixed bookkeeping for reference checks). It raises
# ApiError for what the API refuses.

Validator = Callable[[ComputeEmulator, Route, Json, Json | None], Json]

_VALIDATORS: dict[str, Validator] = {
    "healthChecks": health_checks.validate,
    "backendServices": backend_services.validate,
    "forwardingRules": forwarding_rules.validate,
    "addresses": addresses.validate,
    "firewalls": firewalls.validate,
    "instanceGroups": instance_groups.validate,
    "targetPools": target_pools.validate,
    "httpHealthChecks": http_health_checks.validate,
}
