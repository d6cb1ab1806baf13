"""The state and request handling of the ARM emulator: Microsoft.Network as the real service behaves.

Only what lbprov relies on is emulated, but strictly: a request the real Azure Resource Manager
would reject is rejected here with the same status and ARM's error shape
(``{"error": {"code", "message", "details"}}``), so that the provider's tests prove something about
Azure and not about a lenient fake. Emulated:

* ``api-version`` is required on every request (400 ``MissingApiVersionParameter``); a bearer token
  is required (401);
* ETags on every resource (``W/"<uuid>"``, changed by every write, copied onto sub-resources);
  ``If-Match`` with a stale ETag -> 412 ``PreconditionFailed``; ``If-None-Match: *`` on an existing
  resource -> 412;
* ``api-version`` must be one Microsoft.Network published, and long-running operations follow the
  ARM contract (status and Location URLs, ``InProgress`` for ``lro_seconds``, failures on request):
  see :mod:`.operations`; a DELETE of a resource already gone answers 204;
* static public IP allocation from a test range, private IP allocation from the subnet (Azure keeps
  the first four and the last address of a subnet);
* reference validation: a load-balancing rule naming a missing frontend, pool or probe, a frontend
  naming a missing public IP or subnet -> 400 ``InvalidResourceReference``; deleting a public IP that
  is still attached -> 400 ``PublicIPAddressCannotBeDeleted``;
* limits: 1,500 rules and 600 frontends per load balancer, 300 rules per backend address across
  load balancers, 1,000 rules per NSG, names of at most 80 characters, at
  most 50 tags (tag names without ``<>%&\\?/``), NSG priorities 100-4096 unique per direction;
* fault injection (status such as 429 with ``Retry-After``, 5xx, added latency) and hooks run before
  a request is handled (to stage races), and a log of every request received.
"""

from __future__ import annotations

import copy
import ipaddress
import marshal
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from lbprov_azure.sandbox.base import (
    BAD_TAG_CHARS,
    CHILD_TYPES,
    JSON,
    MAX_TAGS,
    NAME_RE,
    NETWORK,
    TOP_TYPES,
    ArmError,
    Fault,
    LoggedRequest,
    Response,
    new_etag,
    ref,
)
from lbprov_azure.sandbox.load_balancers import LoadBalancers
from lbprov_azure.sandbox.operations import DEFAULT_API_VERSION, Operations
from lbprov_azure.sandbox.public_ips import PublicIPs
from lbprov_azure.sandbox.security_groups import SecurityGroups
from lbprov_azure.sandbox.virtual_networks import VirtualNetworks


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, strings, numbers, booleans, None).

    ``copy.deepcopy`` walks its memo for every object and was the emulator's largest cost per
    request at scale. ``marshal`` copies the same plain values in C, several times faster (issue 14).
    Answers no longer copy (they are written as JSON bytes from the stored value, under the lock):
    this copies what :meth:`ArmState.get` and :meth:`ArmState.put` hand to Python callers.
    """
    return marshal.loads(marshal.dumps(value))


class ArmState(Operations, LoadBalancers, PublicIPs, SecurityGroups, VirtualNetworks):
    """Thread-safe in-memory Microsoft.Network for one subscription and location."""

    def __init__(
        self,
        subscription: str,
        location: str,
        *,
        public_range: str = "198.18.0.0/15",
        async_operations: bool = True,
    ) -> None:
        self.subscription = subscription
        self.location = location
        self.async_operations = async_operations
        self.lock = threading.RLock()
        self.resource_groups: dict[str, str] = {}  # lower -> canonical
        # type -> (rg lower, name lower) -> resource JSON
        self.resources: dict[str, dict[tuple[str, str], JSON]] = {t: {} for t in TOP_TYPES.values()}
        #: public IP id (lower) -> the frontend using it, as of the last load balancer write
        self._pip_users: dict[str, str] = {}
        self._public_ips = ipaddress.IPv4Network(public_range).hosts()  # the static public IPv4 addresses
        self._private_used: dict[str, set[str]] = {}  # subnet id lower -> addresses in use
        self.faults: list[Fault] = []
        self.hooks: list[Callable[[str, str], None]] = []
        self.log: list[LoggedRequest] = []
        self.base_url = ""
        self._init_operations()

    # -- seeding and test helpers -----------------------------------------------------------------

    def add_resource_group(self, name: str) -> None:
        with self.lock:
            self.resource_groups[name.lower()] = name

    def resource_id(self, rg: str, rtype: str, name: str) -> str:
        rg = self.resource_groups.get(rg.lower(), rg)
        return f"/subscriptions/{self.subscription}/resourceGroups/{rg}/providers/{NETWORK}/{rtype}/{name}"

    def get(self, rtype: str, rg: str, name: str) -> JSON | None:
        with self.lock:
            found = self.resources[rtype].get((rg.lower(), name.lower()))
            return json_copy(found) if found else None

    def put(self, rtype: str, rg: str, name: str, body: JSON, headers: dict[str, str] | None = None) -> JSON:
        """Write a resource as a client would (validated); used for seeding and foreign writes."""
        resp = self._put_top(
            rtype, rg, name, json_copy(body), {k.lower(): v for k, v in (headers or {}).items()}
        )
        answer = resp.json()
        assert answer is not None
        return answer

    def put_security_rule(self, rg: str, nsg: str, name: str, properties: JSON) -> JSON:
        """Write one NSG rule as a client would (validated); for foreign writes in tests."""
        path = f"/subscriptions/{self.subscription}/resourceGroups/{rg}/providers/{NETWORK}/networkSecurityGroups/{nsg}/securityRules/{name}"
        resp = self.handle(
            "PUT",
            path,
            {"api-version": DEFAULT_API_VERSION},
            {"authorization": "Bearer local"},
            {"properties": properties},
        )
        answer = resp.json()
        assert answer is not None
        if resp.status >= 400:
            err = answer["error"]
            raise ArmError(resp.status, err["code"], err["message"])
        return answer

    def free_priority(self, rg: str, nsg: str, start: int = 500) -> int:
        with self.lock:
            group = self.resources["networkSecurityGroups"][(rg.lower(), nsg.lower())]
            used = {r["properties"]["priority"] for r in group["properties"]["securityRules"]}
        return next(p for p in range(start, 4097) if p not in used)

    def allocate_private_ip(self, subnet_id: str, version: int = 4) -> str:
        with self.lock:
            return self._allocate_private(subnet_id, None, version)

    def inject(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove injected faults, hooks and long-operation settings (delay, failures)."""
        with self.lock:
            self.faults.clear()
            self.hooks.clear()
        self.clear_operations()

    def mutating_requests(self) -> list[str]:
        with self.lock:
            return [f"{r.method} {r.path}" for r in self.log if r.mutating]

    def count(self, method: str, path_regex: str) -> int:
        with self.lock:
            return sum(1 for r in self.log if r.method == method and re.search(path_regex, r.path.lower()))

    # -- request entry point ----------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: JSON | None
    ) -> Response:
        """Handle one request; ``headers`` keys are lowercase."""
        method = method.upper()
        fault: Fault | None = None
        with self.lock:
            for f in self.faults:
                if f.matches(method, path):
                    f.hits += 1
                    if f.times > 0:
                        f.times -= 1
                    fault = f
                    break
            hooks = list(self.hooks)
        for hook in hooks:
            hook(method, path)
        if fault is not None:
            if fault.latency:
                time.sleep(fault.latency)
            if fault.status:
                extra = {}
                if fault.retry_after is not None:
                    extra["Retry-After"] = f"{fault.retry_after:g}"
                resp = Response(
                    fault.status,
                    {
                        "error": {
                            "code": fault.code,
                            "message": f"injected fault {fault.status}",
                            "details": [],
                        }
                    },
                    extra,
                )
                self._log(method, path, resp.status)
                return resp
        try:
            resp = self._dispatch(method, path, query, headers, body)
        except ArmError as err:
            resp = Response(err.status, err.body(), err.headers)
        self._log(method, path, resp.status)
        return resp

    def _log(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.log.append(LoggedRequest(method, path, status))

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: JSON | None
    ) -> Response:
        if not headers.get("authorization", "").startswith("Bearer "):
            raise ArmError(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        if not query.get("api-version"):
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        self.check_api_version(query["api-version"], path)
        self.begin_request(method, path, query["api-version"])
        self.settle()
        seg = [s for s in path.split("/") if s]
        low = [s.lower() for s in seg]
        if len(seg) < 2 or low[0] != "subscriptions":
            raise ArmError(404, "NotFound", f"No route for {path}")
        if seg[1].lower() != self.subscription.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{seg[1]}' could not be found.")
        rest, lrest = seg[2:], low[2:]
        # operation status: /providers/Microsoft.Network/locations/<loc>/operations/<id>
        if len(lrest) == 6 and lrest[:2] == ["providers", NETWORK.lower()] and lrest[2] == "locations":
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", "only GET")
            if lrest[4] == "operations":
                return self.operation_status(rest[5])
            if lrest[4] == "operationresults":
                return self.operation_result(rest[5])
            raise ArmError(404, "NotFound", f"No route for {path}")
        # subscription-wide list
        if len(lrest) == 3 and lrest[:2] == ["providers", NETWORK.lower()]:
            rtype = self._type(lrest[2])
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", "only GET")
            with self.lock:
                return Response.encoded(200, {"value": list(self.resources[rtype].values())})
        if len(lrest) < 5 or lrest[0] != "resourcegroups" or lrest[2:4] != ["providers", NETWORK.lower()]:
            raise ArmError(
                400, "InvalidResourceType", f"Resource type in {path} is not supported by this emulator."
            )
        rg = rest[1]
        rtype = self._type(lrest[4])
        with self.lock:
            if rg.lower() not in self.resource_groups:
                raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        if len(rest) == 5:
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", "only GET on a collection")
            with self.lock:
                items = [r for (g, _), r in self.resources[rtype].items() if g == rg.lower()]
                return Response.encoded(200, {"value": items})
        name = rest[5]
        if len(rest) == 6:
            if method == "GET":
                with self.lock:  # written from the stored value, see Response
                    found = self.resources[rtype].get((rg.lower(), name.lower()))
                    if found is None:
                        raise self._not_found(rtype, name, rg)
                    return Response.encoded(200, found)
            if method == "PUT":
                if body is None:
                    raise ArmError(
                        400,
                        "InvalidRequestContent",
                        "The request content was invalid and could not be deserialized.",
                    )
                return self._put_top(rtype, rg, name, body, headers)
            if method == "DELETE":
                return self._delete_top(rtype, rg, name, headers)
            raise ArmError(405, "MethodNotAllowed", f"{method} is not supported")
        children = CHILD_TYPES.get(rtype, {})
        if len(rest) in (7, 8) and lrest[6] in children:
            ctype = children[lrest[6]]
            return self._child(
                method, rtype, rg, name, ctype, rest[7] if len(rest) == 8 else None, headers, body
            )
        raise ArmError(
            400, "InvalidResourceType", f"Resource type in {path} is not supported by this emulator."
        )

    def _type(self, lower: str) -> str:
        if lower not in TOP_TYPES:
            raise ArmError(
                400, "InvalidResourceType", f"The resource type '{lower}' is not supported by this emulator."
            )
        return TOP_TYPES[lower]

    def _not_found(self, rtype: str, name: str, rg: str) -> ArmError:
        return ArmError(
            404,
            "ResourceNotFound",
            f"The Resource '{NETWORK}/{rtype}/{name}' under resource group '{rg}' was not found.",
        )

    # -- generic checks ----------------------------------------------------------------------------

    @staticmethod
    def _check_name(kind: str, name: str) -> None:
        if not NAME_RE.match(name):
            raise ArmError(
                400,
                "InvalidResourceName",
                f"Resource name {name} is invalid. The name can be up to 80 characters long. It must begin "
                "with a word character, and it must end with a word character or with '_'. The name may "
                f"contain word characters or '.', '-', '_'. ({kind})",
            )

    @staticmethod
    def _check_tags(tags: Any) -> JSON:
        if tags is None:
            return {}
        if not isinstance(tags, dict):
            raise ArmError(400, "InvalidRequestFormat", "tags must be an object")
        if len(tags) > MAX_TAGS:
            raise ArmError(
                400, "InvalidTagsCount", f"{len(tags)} tags given; at most {MAX_TAGS} are allowed."
            )
        for k, v in tags.items():
            if len(k) > 512 or set(k) & BAD_TAG_CHARS:
                raise ArmError(
                    400,
                    "InvalidTagNameCharacters",
                    f"The tag name '{k}' has invalid characters '<,>,%,&,\\,?,/' or is longer than 512.",
                )
            if not isinstance(v, str) or len(v) > 256:
                raise ArmError(
                    400, "InvalidTagValueLength", f"The value of tag '{k}' is longer than 256 characters."
                )
        return dict(tags)

    @staticmethod
    def _check_preconditions(existing: JSON | None, headers: dict[str, str], rid: str) -> None:
        if_match = headers.get("if-match")
        if if_match is not None and (existing is None or if_match not in ("*", existing.get("etag"))):
            raise ArmError(
                412,
                "PreconditionFailed",
                f"The condition specified using HTTP conditional header(s) is not met for {rid}.",
            )
        if headers.get("if-none-match") == "*" and existing is not None:
            raise ArmError(412, "PreconditionFailed", f"{rid} already exists (If-None-Match: *).")

    # -- top-level writes -------------------------------------------------------------------------

    def _put_top(self, rtype: str, rg: str, name: str, body: JSON, headers: dict[str, str]) -> Response:
        self._check_name(rtype, name)
        with self.lock:
            if rg.lower() not in self.resource_groups:
                raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
            rid = self.resource_id(rg, rtype, name)
            key = (rg.lower(), name.lower())
            existing = self.resources[rtype].get(key)
            self._check_preconditions(existing, headers, rid)
            location = body.get("location")
            if not location:
                raise ArmError(
                    400, "LocationRequired", "The location property is required for this definition."
                )
            if str(location).replace(" ", "").lower() != self.location.lower():
                raise ArmError(
                    400,
                    "LocationNotAvailableForResourceType",
                    f"The provided location '{location}' is not available.",
                )
            props = body.get("properties") or {}
            if not isinstance(props, dict):
                raise ArmError(400, "InvalidRequestFormat", "properties must be an object")
            etag = new_etag()
            res: JSON = {
                "name": existing["name"] if existing else name,
                "id": existing["id"] if existing else rid,
                "etag": etag,
                "type": f"{NETWORK}/{rtype}",
                "location": self.location,
                "tags": self._check_tags(body.get("tags")),
            }
            if body.get("sku") is not None:
                res["sku"] = body["sku"]
            if body.get("zones") is not None:
                res["zones"] = body["zones"]
            builder = {
                "loadBalancers": self._build_lb,
                "publicIPAddresses": self._build_pip,
                "publicIPPrefixes": self._build_prefix,
                "networkSecurityGroups": self._build_nsg,
                "virtualNetworks": self._build_vnet,
            }[rtype]
            saved = copy.deepcopy(self._private_used)
            try:
                res["properties"] = builder(res, props, existing, etag)
            except ArmError:
                self._private_used = saved  # a rejected write allocates nothing
                raise
            res["properties"]["provisioningState"] = "Succeeded"
            res["properties"].setdefault(
                "resourceGuid",
                (existing or {}).get("properties", {}).get("resourceGuid") or str(uuid.uuid4()),
            )
            self.resources[rtype][key] = res
            self._refresh_backrefs(rtype, key)
            return self._accepted(200 if existing else 201, res, rid=res["id"])

    def _delete_top(self, rtype: str, rg: str, name: str, headers: dict[str, str]) -> Response:
        with self.lock:
            key = (rg.lower(), name.lower())
            existing = self.resources[rtype].get(key)
            if existing is None:
                return Response(204, None)
            self._check_preconditions(existing, headers, existing["id"])
            failure = self.take_failure()
            if failure is not None:  # the operation will fail: nothing is deleted
                return self._accepted(202, None, existing["id"], failure=failure, deleting=True)
            if rtype == "publicIPAddresses":
                attached = ref(existing["properties"].get("ipConfiguration"))
                if attached:
                    # ARM's code and message (hashicorp/terraform-provider-azurerm#2566 and #17885,
                    # microsoft/AzureTRE#4355): 400 PublicIPAddressCannotBeDeleted.
                    raise ArmError(
                        400,
                        "PublicIPAddressCannotBeDeleted",
                        f"Public IP address {existing['id']} can not be deleted since it is still allocated to "
                        f"resource {attached}. In order to delete the public IP, disassociate/detach the Public "
                        "IP address from the resource.  To learn how to do this, see aka.ms/deletepublicip.",
                    )
            if rtype == "virtualNetworks":
                raise ArmError(
                    400, "InUseSubnetCannotBeDeleted", "The emulator does not delete virtual networks."
                )
            del self.resources[rtype][key]
            if rtype == "loadBalancers":
                for fe in existing["properties"].get("frontendIPConfigurations", []):
                    self._release_private(fe)
            self._refresh_backrefs(rtype, key)
            return self._accepted(202, None, failure=None, deleting=True)

    # -- children (securityRules, subnets) ---------------------------------------------------------

    def _child(
        self,
        method: str,
        rtype: str,
        rg: str,
        parent: str,
        ctype: str,
        name: str | None,
        headers: dict[str, str],
        body: JSON | None,
    ) -> Response:
        with self.lock:
            p = self.resources[rtype].get((rg.lower(), parent.lower()))
            if p is None:
                raise self._not_found(rtype, parent, rg)
            items: list[JSON] = p["properties"].setdefault(ctype, [])
            if name is None:
                if method != "GET":
                    raise ArmError(405, "MethodNotAllowed", "only GET on a collection")
                return Response.encoded(200, {"value": items})
            idx = next((i for i, it in enumerate(items) if it["name"].lower() == name.lower()), None)
            current = items[idx] if idx is not None else None
            if method == "GET":
                if current is None:
                    raise ArmError(404, "NotFound", f"Resource {p['id']}/{ctype}/{name} not found.")
                return Response.encoded(200, current)
            if ctype != "securityRules":
                raise ArmError(405, "MethodNotAllowed", f"the emulator only reads {ctype}")
            cid = f"{p['id']}/{ctype}/{name}"
            if method == "DELETE":
                if idx is None:  # not there (current is None)
                    return Response(204, None)
                self._check_preconditions(current, headers, cid)
                failure = self.take_failure()
                if failure is not None:
                    return self._accepted(202, None, cid, failure=failure, deleting=True)
                del items[idx]
                p["etag"] = new_etag()
                return self._accepted(202, None, failure=None, deleting=True)
            if method == "PUT":
                if body is None:
                    raise ArmError(400, "InvalidRequestContent", "The request content was invalid.")
                self._check_name(ctype, name)
                self._check_preconditions(current, headers, cid)
                etag = new_etag()
                rule = self._build_security_rule(cid, name, body.get("properties") or {}, etag)
                others = [it for it in items if it["name"].lower() != name.lower()]
                self.check_nsg_rule_count(len(others) + 1, p["id"])
                self.check_nsg_addresses([*others, rule], p["id"])
                self._check_priorities([*others, rule], p["id"])
                if idx is None:
                    items.append(rule)
                else:
                    items[idx] = rule
                p["etag"] = etag
                return self._accepted(200 if current else 201, rule, rid=cid)
            raise ArmError(405, "MethodNotAllowed", f"{method} is not supported")

    # -- helpers ----------------------------------------------------------------------------------

    def _bad_ref(self, target: str, referrer: str) -> ArmError:
        return ArmError(
            400,
            "InvalidResourceReference",
            f"Resource {target} referenced by resource {referrer} was not found. Please make sure that the "
            "referenced resource exists, and that both resources are in the same region.",
        )

    def _parse_id(self, rid: str) -> tuple[str, str, str, list[str]] | None:
        seg = [s for s in rid.split("/") if s]
        if len(seg) < 8 or seg[0].lower() != "subscriptions" or seg[1].lower() != self.subscription.lower():
            return None
        if (
            seg[2].lower() != "resourcegroups"
            or seg[4].lower() != "providers"
            or seg[5].lower() != NETWORK.lower()
        ):
            return None
        rtype = TOP_TYPES.get(seg[6].lower())
        if rtype is None:
            return None
        return seg[3], rtype, seg[7], seg[8:]

    def _lookup(self, rid: str, rtype: str) -> JSON | None:
        parsed = self._parse_id(rid)
        if parsed is None or parsed[1] != rtype or parsed[3]:
            return None
        return self.resources[rtype].get((parsed[0].lower(), parsed[2].lower()))

    def _refresh_backrefs(self, rtype: str, key: tuple[str, str]) -> None:
        """Public IPs show which frontend uses them (``properties.ipConfiguration``), after a write of
        ``rtype`` at ``key``.

        Only a load balancer's write or delete changes who uses a public IP: it rebuilds the map of
        users and every public IP's back reference; a public IP's own write takes its entry from that
        map. Rebuilding everything on every write (each public IP create, NSG rule ...) scanned every
        frontend and public IP per request: O(N^2) over a 1,000-Service bench (issue 14)."""
        if rtype == "publicIPAddresses":
            pip = self.resources[rtype].get(key)
            if pip is not None:
                self._set_backref(pip, self._pip_users.get(pip["id"].lower()))
            return
        if rtype != "loadBalancers":
            return
        users: dict[str, str] = {}
        for lb in self.resources["loadBalancers"].values():
            for fe in lb["properties"].get("frontendIPConfigurations", []):
                used = ref(fe["properties"].get("publicIPAddress"))
                if used:
                    users[used.lower()] = fe["id"]
        self._pip_users = users
        for pip in self.resources["publicIPAddresses"].values():
            self._set_backref(pip, users.get(pip["id"].lower()))

    @staticmethod
    def _set_backref(pip: JSON, user: str | None) -> None:
        before = ref(pip["properties"].get("ipConfiguration"))
        if user:
            pip["properties"]["ipConfiguration"] = {"id": user}
        else:
            pip["properties"].pop("ipConfiguration", None)
        if before != user:  # attaching or detaching changes the public IP: a new ETag
            pip["etag"] = new_etag()
