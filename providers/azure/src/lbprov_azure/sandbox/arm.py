"""The state and semantics of the ARM emulator: Microsoft.Network as the real service behaves.

Only what lbprov relies on is emulated, but strictly: a request the real Azure Resource Manager
would reject is rejected here with the same status and ARM's error shape
(``{"error": {"code", "message", "details"}}``), so that the provider's tests prove something about
Azure and not about a lenient fake. Emulated:

* ``api-version`` is required on every request (400 ``MissingApiVersionParameter``); a bearer token
  is required (401);
* ETags on every resource (``W/"<uuid>"``, changed by every write, copied onto sub-resources);
  ``If-Match`` with a stale ETag -> 412 ``PreconditionFailed``; ``If-None-Match: *`` on an existing
  resource -> 412;
* long-running operations: a PUT answers 201/200 with ``provisioningState: Updating`` and an
  ``Azure-AsyncOperation`` URL that reports ``Succeeded``; a DELETE answers 202 with the same header,
  or 204 when the resource is already gone;
* static public IP allocation from a test range, private IP allocation from the subnet (Azure keeps
  the first four and the last address of a subnet);
* reference validation: a load-balancing rule naming a missing frontend, pool or probe, a frontend
  naming a missing public IP or subnet -> 400 ``InvalidResourceReference``; deleting a public IP that
  is still attached -> 400 ``InUsePublicIpAddressCannotBeDeleted``;
* limits: at most 250 load-balancing rules per load balancer, names of at most 80 characters, at
  most 50 tags (tag names without ``<>%&\\?/``), NSG priorities 100-4096 unique per direction;
* fault injection (status such as 429 with ``Retry-After``, 5xx, added latency) and hooks run before
  a request is handled (to stage races), and a log of every request received.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

NETWORK = "Microsoft.Network"
#: Canonical spelling of each emulated top-level resource type, by lowercase name.
TOP_TYPES = {
    "loadbalancers": "loadBalancers",
    "publicipaddresses": "publicIPAddresses",
    "networksecuritygroups": "networkSecurityGroups",
    "virtualnetworks": "virtualNetworks",
}
#: Emulated child collections: parent type -> (lowercase child -> canonical child, field in parent).
CHILD_TYPES = {
    "networkSecurityGroups": {"securityrules": "securityRules"},
    "virtualNetworks": {"subnets": "subnets"},
}
MAX_RULES_PER_LB = 250
MAX_TAGS = 50
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
_DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
_BAD_TAG_CHARS = set("<>%&\\?/")


class ArmError(Exception):
    """An error response in ARM's shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> JSON:
        return {"error": {"code": self.code, "message": self.message, "details": []}}


@dataclass
class Fault:
    """An injected fault: requests matching ``method`` and ``path`` (a regex searched in the
    lowercased path) get ``status`` (0 = handled normally) after ``latency`` seconds, ``times`` times
    (-1 = forever)."""

    method: str | None = None
    path: str | None = None
    status: int = 429
    code: str = "TooManyRequests"
    retry_after: float | None = None
    latency: float = 0.0
    times: int = 1
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times == 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path and not re.search(self.path, path.lower()))


@dataclass
class Response:
    status: int
    body: JSON | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    status: int

    @property
    def mutating(self) -> bool:
        return self.method in ("PUT", "PATCH", "POST", "DELETE")


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _ref(obj: Any) -> str | None:
    """The ``id`` of a ``{"id": ...}`` reference, or None."""
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        return str(obj["id"])
    return None


class ArmState:
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
        self._public_ips: Iterator[ipaddress.IPv4Address] = ipaddress.ip_network(public_range).hosts()  # type: ignore[assignment]
        self._private_used: dict[str, set[str]] = {}  # subnet id lower -> addresses in use
        self.faults: list[Fault] = []
        self.hooks: list[Callable[[str, str], None]] = []
        self.log: list[LoggedRequest] = []
        self.base_url = ""

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
            return copy.deepcopy(found) if found else None

    def put(self, rtype: str, rg: str, name: str, body: JSON, headers: dict[str, str] | None = None) -> JSON:
        """Write a resource as a client would (validated); used for seeding and foreign writes."""
        resp = self._put_top(
            rtype, rg, name, copy.deepcopy(body), {k.lower(): v for k, v in (headers or {}).items()}
        )
        assert resp.body is not None
        return resp.body

    def put_security_rule(self, rg: str, nsg: str, name: str, properties: JSON) -> JSON:
        """Write one NSG rule as a client would (validated); for foreign writes in tests."""
        path = f"/subscriptions/{self.subscription}/resourceGroups/{rg}/providers/{NETWORK}/networkSecurityGroups/{nsg}/securityRules/{name}"
        resp = self.handle(
            "PUT", path, {"api-version": "x"}, {"authorization": "Bearer local"}, {"properties": properties}
        )
        if resp.status >= 400:
            assert resp.body is not None
            err = resp.body["error"]
            raise ArmError(resp.status, err["code"], err["message"])
        assert resp.body is not None
        return resp.body

    def free_priority(self, rg: str, nsg: str, start: int = 500) -> int:
        with self.lock:
            group = self.resources["networkSecurityGroups"][(rg.lower(), nsg.lower())]
            used = {r["properties"]["priority"] for r in group["properties"]["securityRules"]}
        return next(p for p in range(start, 4097) if p not in used)

    def allocate_private_ip(self, subnet_id: str) -> str:
        with self.lock:
            return self._allocate_private(subnet_id, None)

    def inject(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()
            self.hooks.clear()

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
            return Response(200, {"name": rest[5], "status": "Succeeded"})
        # subscription-wide list
        if len(lrest) == 3 and lrest[:2] == ["providers", NETWORK.lower()]:
            rtype = self._type(lrest[2])
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", "only GET")
            with self.lock:
                return Response(200, {"value": [copy.deepcopy(r) for r in self.resources[rtype].values()]})
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
                items = [copy.deepcopy(r) for (g, _), r in self.resources[rtype].items() if g == rg.lower()]
            return Response(200, {"value": items})
        name = rest[5]
        if len(rest) == 6:
            if method == "GET":
                found = self.get(rtype, rg, name)
                if found is None:
                    raise self._not_found(rtype, name, rg)
                return Response(200, found)
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

    def _accepted(self, status: int, body: JSON | None) -> Response:
        """A long-running operation's first answer."""
        if not self.async_operations:
            return Response(status if status != 202 else 204, body)
        op = str(uuid.uuid4())
        url = (
            f"{self.base_url}/subscriptions/{self.subscription}/providers/{NETWORK}/locations/"
            f"{self.location}/operations/{op}?api-version=2024-05-01"
        )
        if body is not None:
            body = copy.deepcopy(body)
            body.setdefault("properties", {})["provisioningState"] = "Updating"
        return Response(status, body, {"Azure-AsyncOperation": url})

    # -- generic checks ----------------------------------------------------------------------------

    @staticmethod
    def _check_name(kind: str, name: str) -> None:
        if not _NAME.match(name):
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
            if len(k) > 512 or set(k) & _BAD_TAG_CHARS:
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
            etag = _etag()
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
            self._refresh_backrefs()
            return self._accepted(200 if existing else 201, copy.deepcopy(res))

    def _delete_top(self, rtype: str, rg: str, name: str, headers: dict[str, str]) -> Response:
        with self.lock:
            key = (rg.lower(), name.lower())
            existing = self.resources[rtype].get(key)
            if existing is None:
                return Response(204, None)
            self._check_preconditions(existing, headers, existing["id"])
            if rtype == "publicIPAddresses":
                attached = _ref(existing["properties"].get("ipConfiguration"))
                if attached:
                    raise ArmError(
                        400,
                        "InUsePublicIpAddressCannotBeDeleted",
                        f"Public IP address {existing['id']} can not be deleted since it is still allocated to "
                        f"resource {attached}. In order to delete the public IP, disassociate/detach the Public "
                        "IP address from the resource.",
                    )
            if rtype == "virtualNetworks":
                raise ArmError(
                    400, "InUseSubnetCannotBeDeleted", "The emulator does not delete virtual networks."
                )
            del self.resources[rtype][key]
            if rtype == "loadBalancers":
                for fe in existing["properties"].get("frontendIPConfigurations", []):
                    self._release_private(fe)
            self._refresh_backrefs()
            return self._accepted(202, None)

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
                return Response(200, {"value": copy.deepcopy(items)})
            idx = next((i for i, it in enumerate(items) if it["name"].lower() == name.lower()), None)
            current = items[idx] if idx is not None else None
            if method == "GET":
                if current is None:
                    raise ArmError(404, "NotFound", f"Resource {p['id']}/{ctype}/{name} not found.")
                return Response(200, copy.deepcopy(current))
            if ctype != "securityRules":
                raise ArmError(405, "MethodNotAllowed", f"the emulator only reads {ctype}")
            cid = f"{p['id']}/{ctype}/{name}"
            if method == "DELETE":
                if current is None:
                    return Response(204, None)
                self._check_preconditions(current, headers, cid)
                del items[idx]  # type: ignore[arg-type]
                p["etag"] = _etag()
                return self._accepted(202, None)
            if method == "PUT":
                if body is None:
                    raise ArmError(400, "InvalidRequestContent", "The request content was invalid.")
                self._check_name(ctype, name)
                self._check_preconditions(current, headers, cid)
                etag = _etag()
                rule = self._build_security_rule(cid, name, body.get("properties") or {}, etag)
                others = [it for it in items if it["name"].lower() != name.lower()]
                self._check_priorities([*others, rule], p["id"])
                if idx is None:
                    items.append(rule)
                else:
                    items[idx] = rule
                p["etag"] = etag
                return self._accepted(200 if current else 201, copy.deepcopy(rule))
            raise ArmError(405, "MethodNotAllowed", f"{method} is not supported")

    # -- builders: validate and normalise one resource's properties --------------------------------

    def _build_pip(self, res: JSON, props: JSON, existing: JSON | None, etag: str) -> JSON:
        sku = (res.get("sku") or {}).get("name", "Basic")
        res["sku"] = {"name": sku, "tier": (res.get("sku") or {}).get("tier", "Regional")}
        method = props.get("publicIPAllocationMethod") or ("Static" if sku == "Standard" else "Dynamic")
        if sku == "Standard" and method != "Static":
            raise ArmError(
                400,
                "StandardSkuPublicIPAddressesMustBeStatic",
                f"Standard sku publicIp {res['id']} must have AllocationMethod set to Static.",
            )
        if existing and (existing.get("sku") or {}).get("name") != sku:
            raise ArmError(
                400, "PublicIPAddressSkuCannotBeChanged", "The SKU of a public IP cannot be changed."
            )
        version = props.get("publicIPAddressVersion") or "IPv4"
        if version != "IPv4":
            raise ArmError(400, "InvalidRequestFormat", "the emulator allocates IPv4 addresses only")
        old = (existing or {}).get("properties", {})
        address = old.get("ipAddress") or str(next(self._public_ips))
        out: JSON = {
            "publicIPAllocationMethod": method,
            "publicIPAddressVersion": version,
            "ipAddress": address,
            "idleTimeoutInMinutes": int(props.get("idleTimeoutInMinutes") or 4),
        }
        dns = props.get("dnsSettings") or {}
        label = dns.get("domainNameLabel")
        if label:
            if not _DNS_LABEL.match(label):
                raise ArmError(
                    400,
                    "InvalidDomainNameLabel",
                    f"The domain name label {label} is invalid. It must conform to ^[a-z][a-z0-9-]{{1,61}}[a-z0-9]$.",
                )
            for other in self.resources["publicIPAddresses"].values():
                if (
                    other["id"] != res["id"]
                    and (other["properties"].get("dnsSettings") or {}).get("domainNameLabel") == label
                ):
                    raise ArmError(
                        400,
                        "DnsRecordInUse",
                        f"DNS record {label}.{self.location}.cloudapp.azure.com is already used by another public IP.",
                    )
            out["dnsSettings"] = {
                "domainNameLabel": label,
                "fqdn": f"{label}.{self.location}.cloudapp.azure.com",
            }
        if old.get("ipConfiguration"):
            out["ipConfiguration"] = old["ipConfiguration"]
        return out

    def _build_vnet(self, res: JSON, props: JSON, existing: JSON | None, etag: str) -> JSON:
        prefixes = (props.get("addressSpace") or {}).get("addressPrefixes") or []
        nets = []
        for p in prefixes:
            try:
                nets.append(ipaddress.ip_network(p))
            except ValueError:
                raise ArmError(
                    400, "InvalidAddressPrefixFormat", f"Address prefix {p} is not valid."
                ) from None
        subnets = []
        for s in props.get("subnets") or []:
            sname = s.get("name", "")
            self._check_name("subnets", sname)
            prefix = (s.get("properties") or {}).get("addressPrefix", "")
            try:
                snet = ipaddress.ip_network(prefix)
            except ValueError:
                raise ArmError(
                    400, "InvalidAddressPrefixFormat", f"Subnet prefix {prefix!r} is not valid."
                ) from None
            if not any(snet.subnet_of(n) for n in nets):  # type: ignore[arg-type]
                raise ArmError(
                    400, "NetcfgSubnetRangeOutsideVnet", f"Subnet {sname} is not in the VNet address space."
                )
            subnets.append(
                {
                    "name": sname,
                    "id": f"{res['id']}/subnets/{sname}",
                    "etag": etag,
                    "properties": {"addressPrefix": prefix, "provisioningState": "Succeeded"},
                }
            )
        return {"addressSpace": {"addressPrefixes": prefixes}, "subnets": subnets}

    def _build_nsg(self, res: JSON, props: JSON, existing: JSON | None, etag: str) -> JSON:
        rules = [
            self._build_security_rule(
                f"{res['id']}/securityRules/{r.get('name', '')}",
                r.get("name", ""),
                r.get("properties") or {},
                etag,
            )
            for r in props.get("securityRules") or []
        ]
        for r in rules:
            self._check_name("securityRules", r["name"])
        self._check_priorities(rules, res["id"])
        return {"securityRules": rules, "defaultSecurityRules": _default_security_rules(res["id"], etag)}

    @staticmethod
    def _build_security_rule(rid: str, name: str, props: JSON, etag: str) -> JSON:
        def one_of(field_: str, allowed: tuple[str, ...]) -> str:
            value = props.get(field_)
            if value not in allowed:
                raise ArmError(
                    400,
                    "SecurityRuleInvalidParameter" if value is not None else "SecurityRuleParameterRequired",
                    f"Security rule {name}: {field_} {value!r} is invalid; allowed: {', '.join(allowed)}.",
                )
            return str(value)

        out: JSON = {
            "protocol": one_of("protocol", ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")),
            "access": one_of("access", ("Allow", "Deny")),
            "direction": one_of("direction", ("Inbound", "Outbound")),
        }
        priority = props.get("priority")
        if not isinstance(priority, int) or not 100 <= priority <= 4096:
            raise ArmError(
                400,
                "SecurityRuleInvalidPriority",
                f"Security rule {name} has invalid Priority {priority}. Value provided: {priority} Allowed range 100-4096.",
            )
        out["priority"] = priority
        for single, plural in (
            ("sourceAddressPrefix", "sourceAddressPrefixes"),
            ("destinationAddressPrefix", "destinationAddressPrefixes"),
            ("sourcePortRange", "sourcePortRanges"),
            ("destinationPortRange", "destinationPortRanges"),
        ):
            one, many = props.get(single), props.get(plural) or []
            if one and many:
                raise ArmError(
                    400,
                    "SecurityRuleParameterContainsBothSingleAndMultipleValues",
                    f"Security rule {name} has both {single} and {plural}.",
                )
            if not one and not many:
                raise ArmError(
                    400, "SecurityRuleParameterRequired", f"Security rule {name}: {single} is required."
                )
            if one:
                out[single] = one
            else:
                out[plural] = list(many)
        if props.get("description"):
            if len(props["description"]) > 140:
                raise ArmError(
                    400, "SecurityRuleInvalidParameter", f"Security rule {name}: description longer than 140."
                )
            out["description"] = props["description"]
        out["provisioningState"] = "Succeeded"
        return {
            "name": name,
            "id": rid,
            "etag": etag,
            "type": f"{NETWORK}/networkSecurityGroups/securityRules",
            "properties": out,
        }

    @staticmethod
    def _check_priorities(rules: list[JSON], nsg_id: str) -> None:
        seen: dict[tuple[str, int], str] = {}
        for r in rules:
            key = (r["properties"]["direction"], r["properties"]["priority"])
            if key in seen:
                raise ArmError(
                    400,
                    "SecurityRuleConflict",
                    f"Security rule {r['name']} conflicts with rule {seen[key]}. Rules cannot have the same "
                    f"Priority and Direction. (priority {key[1]}, {key[0]}) in {nsg_id}",
                )
            seen[key] = r["name"]

    def _build_lb(self, res: JSON, props: JSON, existing: JSON | None, etag: str) -> JSON:
        sku = (res.get("sku") or {}).get("name", "Basic")
        res["sku"] = {"name": sku, "tier": (res.get("sku") or {}).get("tier", "Regional")}
        lb_id = res["id"]

        def children(field_: str, ctype: str) -> list[JSON]:
            items = props.get(field_) or []
            names: set[str] = set()
            out = []
            for it in items:
                nm = it.get("name") or ""
                self._check_name(ctype, nm)
                if nm.lower() in names:
                    raise ArmError(
                        400, "DuplicateResourceName", f"Load balancer {lb_id} has two {ctype} named {nm}."
                    )
                names.add(nm.lower())
                out.append(
                    {
                        "name": nm,
                        "id": f"{lb_id}/{ctype}/{nm}",
                        "etag": etag,
                        "properties": dict(it.get("properties") or {}),
                    }
                )
            return out

        frontends = children("frontendIPConfigurations", "frontendIPConfigurations")
        pools = children("backendAddressPools", "backendAddressPools")
        probes = children("probes", "probes")
        rules = children("loadBalancingRules", "loadBalancingRules")
        if len(rules) > MAX_RULES_PER_LB:
            raise ArmError(
                400,
                "LoadBalancerRulesLimitReached",
                f"Load balancer {lb_id} has {len(rules)} load balancing rules; the limit is {MAX_RULES_PER_LB}.",
            )
        ids = {fe["id"].lower() for fe in frontends}
        old_fes = {
            fe["name"].lower(): fe
            for fe in (existing or {}).get("properties", {}).get("frontendIPConfigurations", [])
        }
        # frontends ------------------------------------------------------------------------------
        pip_users: dict[str, str] = {}
        for other in self.resources["loadBalancers"].values():
            if other["id"].lower() == lb_id.lower():
                continue
            for fe in other["properties"].get("frontendIPConfigurations", []):
                used = _ref(fe["properties"].get("publicIPAddress"))
                if used:
                    pip_users[used.lower()] = fe["id"]
        for fe in frontends:
            fp = fe["properties"]
            pip_id = _ref(fp.get("publicIPAddress"))
            subnet_id = _ref(fp.get("subnet"))
            if bool(pip_id) == bool(subnet_id):
                raise ArmError(
                    400,
                    "InvalidRequestFormat",
                    f"Frontend {fe['id']} must reference either a public IP address or a subnet.",
                )
            if pip_id:
                pip = self._lookup(pip_id, "publicIPAddresses")
                if pip is None:
                    raise self._bad_ref(pip_id, fe["id"])
                if (pip.get("sku") or {}).get("name") != sku:
                    raise ArmError(
                        400,
                        "PublicIPAndLBSkuDoNotMatch",
                        f"Standard sku load balancer {lb_id} cannot reference {(pip.get('sku') or {}).get('name')} sku publicIP {pip_id}."
                        if sku == "Standard"
                        else f"{sku} sku load balancer {lb_id} cannot reference publicIP {pip_id} of another sku.",
                    )
                if pip_id.lower() in pip_users:
                    raise ArmError(
                        400,
                        "PublicIPAddressInUse",
                        f"Public IP {pip_id} is already used by {pip_users[pip_id.lower()]}.",
                    )
                pip_users[pip_id.lower()] = fe["id"]
                out: JSON = {"publicIPAddress": {"id": pip["id"]}}
            else:
                assert subnet_id is not None
                subnet = self._lookup_subnet(subnet_id)
                if subnet is None:
                    raise self._bad_ref(subnet_id, fe["id"])
                method = fp.get("privateIPAllocationMethod") or "Dynamic"
                old = old_fes.get(fe["name"].lower())
                old_props = (old or {}).get("properties", {})
                same_subnet = (_ref(old_props.get("subnet")) or "").lower() == subnet["id"].lower()
                if method == "Static":
                    addr = fp.get("privateIPAddress")
                    keep = same_subnet and old_props.get("privateIPAddress") == addr
                    if not keep:
                        self._claim_private(subnet, addr, fe["id"])
                elif method == "Dynamic":
                    if same_subnet and old_props.get("privateIPAddress"):
                        addr = old_props["privateIPAddress"]
                    else:
                        addr = self._allocate_private(subnet["id"], subnet)
                else:
                    raise ArmError(
                        400, "InvalidRequestFormat", f"privateIPAllocationMethod {method!r} is invalid."
                    )
                if old and not (same_subnet and old_props.get("privateIPAddress") == addr):
                    self._release_private(old)
                out = {
                    "subnet": {"id": subnet["id"]},
                    "privateIPAllocationMethod": method,
                    "privateIPAddress": addr,
                    "privateIPAddressVersion": "IPv4",
                }
            out["provisioningState"] = "Succeeded"
            fe["properties"] = out
        kinds = {"public" if "publicIPAddress" in fe["properties"] else "private" for fe in frontends}
        if len(kinds) > 1:
            raise ArmError(
                400,
                "LoadBalancerCannotHavePublicAndPrivateFrontends",
                f"Load balancer {lb_id} cannot have both public and private frontend IP configurations.",
            )
        # frontends that went away release their private address
        new_names = {fe["name"].lower() for fe in frontends}
        for nm, old in old_fes.items():
            if nm not in new_names:
                self._release_private(old)
        # pools ----------------------------------------------------------------------------------
        for pool in pools:
            addrs = []
            for a in pool["properties"].get("loadBalancerBackendAddresses") or []:
                ap = a.get("properties") or {}
                ip = ap.get("ipAddress")
                vnet_id = _ref(ap.get("virtualNetwork"))
                try:
                    addr = ipaddress.ip_address(str(ip))
                except ValueError:
                    raise ArmError(
                        400, "InvalidRequestFormat", f"Backend address {ip!r} is not an IP address."
                    ) from None
                vnet = self._lookup(vnet_id, "virtualNetworks") if vnet_id else None
                if vnet is None:
                    raise self._bad_ref(vnet_id or "(missing virtualNetwork)", pool["id"])
                nets = [
                    ipaddress.ip_network(p) for p in vnet["properties"]["addressSpace"]["addressPrefixes"]
                ]
                if not any(addr in n for n in nets):
                    raise ArmError(
                        400,
                        "LoadBalancerBackendAddressIpNotInVnet",
                        f"Backend address {ip} of {pool['id']} is not in the address space of {vnet['id']}.",
                    )
                addrs.append(
                    {
                        "name": a.get("name") or ip,
                        "properties": {"ipAddress": ip, "virtualNetwork": {"id": vnet["id"]}},
                    }
                )
            pool["properties"] = {"loadBalancerBackendAddresses": addrs, "provisioningState": "Succeeded"}
        # probes ---------------------------------------------------------------------------------
        for pr in probes:
            pp = pr["properties"]
            proto = pp.get("protocol")
            if proto not in ("Tcp", "Http", "Https"):
                raise ArmError(
                    400,
                    "InvalidRequestFormat",
                    f"Probe {pr['id']}: protocol {proto!r} must be Tcp, Http or Https.",
                )
            port = pp.get("port")
            if not isinstance(port, int) or not 1 <= port <= 65535:
                raise ArmError(
                    400, "InvalidRequestFormat", f"Probe {pr['id']}: port {port!r} must be 1-65535."
                )
            if proto == "Tcp" and pp.get("requestPath"):
                raise ArmError(
                    400,
                    "ProbeRequestPathNotAllowedForTcp",
                    f"Probe {pr['id']} of protocol Tcp cannot have a requestPath.",
                )
            if proto != "Tcp" and not pp.get("requestPath"):
                raise ArmError(
                    400,
                    "ProbeRequestPathRequired",
                    f"Probe {pr['id']} of protocol {proto} needs a requestPath.",
                )
            interval = pp.get("intervalInSeconds", 15)
            if not isinstance(interval, int) or interval < 5:
                raise ArmError(
                    400, "InvalidProbeInterval", f"Probe {pr['id']}: intervalInSeconds must be at least 5."
                )
            count = pp.get("numberOfProbes", 2)
            if not isinstance(count, int) or count < 1:
                raise ArmError(
                    400, "InvalidRequestFormat", f"Probe {pr['id']}: numberOfProbes must be at least 1."
                )
            pr["properties"] = {
                k: v
                for k, v in {
                    "protocol": proto,
                    "port": port,
                    "intervalInSeconds": interval,
                    "numberOfProbes": count,
                    "probeThreshold": pp.get("probeThreshold"),
                    "requestPath": pp.get("requestPath"),
                    "provisioningState": "Succeeded",
                }.items()
                if v is not None
            }
        # rules ----------------------------------------------------------------------------------
        pool_ids = {p["id"].lower() for p in pools}
        probe_ids = {p["id"].lower() for p in probes}
        seen_front: dict[tuple[str, str, int], str] = {}
        seen_back: dict[tuple[str, str, int], str] = {}
        for r in rules:
            rp = r["properties"]
            fe_id = _ref(rp.get("frontendIPConfiguration"))
            if not fe_id or fe_id.lower() not in ids:
                raise self._bad_ref(fe_id or "(missing frontendIPConfiguration)", r["id"])
            rule_pools = [x for x in [_ref(rp.get("backendAddressPool"))] if x]
            rule_pools += [x for x in (_ref(p) for p in rp.get("backendAddressPools") or []) if x]
            rule_pools = list(dict.fromkeys(rule_pools))  # both fields may name the same pool
            for pid in rule_pools:
                if pid.lower() not in pool_ids:
                    raise self._bad_ref(pid, r["id"])
            probe_id = _ref(rp.get("probe"))
            if probe_id and probe_id.lower() not in probe_ids:
                raise self._bad_ref(probe_id, r["id"])
            proto = rp.get("protocol")
            if proto not in ("Tcp", "Udp", "All"):
                raise ArmError(
                    400,
                    "InvalidRequestFormat",
                    f"Rule {r['id']}: protocol {proto!r} must be Tcp, Udp or All.",
                )
            fport, bport = rp.get("frontendPort"), rp.get("backendPort")
            for label, value in (("frontendPort", fport), ("backendPort", bport)):
                if not isinstance(value, int) or not (0 if proto == "All" else 1) <= value <= 65535:
                    raise ArmError(
                        400, "InvalidRequestFormat", f"Rule {r['id']}: {label} {value!r} is out of range."
                    )
            idle = rp.get("idleTimeoutInMinutes", 4)
            if not isinstance(idle, int) or not 4 <= idle <= 100:
                raise ArmError(
                    400,
                    "InvalidIdleTimeoutInMinutes",
                    f"Rule {r['id']}: idleTimeoutInMinutes {idle!r} must be 4-100.",
                )
            dist = rp.get("loadDistribution", "Default")
            if dist not in ("Default", "SourceIP", "SourceIPProtocol"):
                raise ArmError(
                    400, "InvalidRequestFormat", f"Rule {r['id']}: loadDistribution {dist!r} is invalid."
                )
            floating = bool(rp.get("enableFloatingIP", False))
            fkey = (fe_id.lower(), proto, fport)
            if fkey in seen_front:
                raise ArmError(
                    400,
                    "LoadBalancingRulesWithSameFrontendIpConfigAndPort",
                    f"Rules {seen_front[fkey]} and {r['id']} use the same frontend IP configuration, protocol and port.",
                )
            seen_front[fkey] = r["id"]
            if not floating:
                for pid in rule_pools:
                    bkey = (pid.lower(), proto, bport)
                    if bkey in seen_back:
                        raise ArmError(
                            400,
                            "RulesUseSameBackendPortProtocolAndPool",
                            f"Load balancing rules {seen_back[bkey]} and {r['id']} with floating IP disabled use "
                            f"the same protocol {proto}, backend port {bport} and pool {pid}.",
                        )
                    seen_back[bkey] = r["id"]
            rule_out: JSON = {
                "frontendIPConfiguration": {"id": fe_id},
                "protocol": proto,
                "frontendPort": fport,
                "backendPort": bport,
                "enableFloatingIP": floating,
                "idleTimeoutInMinutes": idle,
                "enableTcpReset": bool(rp.get("enableTcpReset", False)),
                "loadDistribution": dist,
                "disableOutboundSnat": bool(rp.get("disableOutboundSnat", False)),
                "provisioningState": "Succeeded",
            }
            if rule_pools:
                rule_out["backendAddressPool"] = {"id": rule_pools[0]}
                rule_out["backendAddressPools"] = [{"id": p} for p in rule_pools]
            if probe_id:
                rule_out["probe"] = {"id": probe_id}
            r["properties"] = rule_out
        # read-only back references, as Azure shows them
        for fe in frontends:
            fe["properties"]["loadBalancingRules"] = [
                {"id": r["id"]}
                for r in rules
                if r["properties"]["frontendIPConfiguration"]["id"].lower() == fe["id"].lower()
            ]
        for pr in probes:
            pr["properties"]["loadBalancingRules"] = [
                {"id": r["id"]}
                for r in rules
                if (_ref(r["properties"].get("probe")) or "").lower() == pr["id"].lower()
            ]
        passthrough = {
            k: v for k, v in props.items() if k in ("inboundNatRules", "outboundRules", "inboundNatPools")
        }
        return {
            "frontendIPConfigurations": frontends,
            "backendAddressPools": pools,
            "probes": probes,
            "loadBalancingRules": rules,
            **passthrough,
        }

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

    def _lookup_subnet(self, rid: str) -> JSON | None:
        parsed = self._parse_id(rid)
        if (
            parsed is None
            or parsed[1] != "virtualNetworks"
            or len(parsed[3]) != 2
            or parsed[3][0].lower() != "subnets"
        ):
            return None
        vnet = self.resources["virtualNetworks"].get((parsed[0].lower(), parsed[2].lower()))
        if vnet is None:
            return None
        return next(
            (s for s in vnet["properties"]["subnets"] if s["name"].lower() == parsed[3][1].lower()), None
        )

    def _allocate_private(self, subnet_id: str, subnet: JSON | None) -> str:
        subnet = subnet or self._lookup_subnet(subnet_id)
        if subnet is None:
            raise ArmError(404, "NotFound", f"subnet {subnet_id} not found")
        net = ipaddress.ip_network(subnet["properties"]["addressPrefix"])
        used = self._private_used.setdefault(subnet["id"].lower(), set())
        # Azure reserves the network address, the next three and the broadcast address.
        for i, addr in enumerate(net.hosts()):
            if i < 3 or addr == net.broadcast_address:
                continue
            if str(addr) not in used:
                used.add(str(addr))
                return str(addr)
        raise ArmError(400, "SubnetIsFull", f"Subnet {subnet['id']} has no free address.")

    def _claim_private(self, subnet: JSON, addr: Any, owner: str) -> None:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            raise ArmError(
                400, "InvalidRequestFormat", f"privateIPAddress {addr!r} of {owner} is not an IP address."
            ) from None
        net = ipaddress.ip_network(subnet["properties"]["addressPrefix"])
        hosts = list(net.hosts())
        if ip not in net or ip in hosts[:3] or ip == net.broadcast_address:
            raise ArmError(
                400,
                "PrivateIPAddressNotInSubnet",
                f"IP address {addr} of {owner} does not belong to the usable range of subnet {subnet['id']}.",
            )
        used = self._private_used.setdefault(subnet["id"].lower(), set())
        if str(ip) in used:
            raise ArmError(
                400,
                "PrivateIPAddressInUse",
                f"IP configuration {owner} is using the private IP address {addr} which is already allocated.",
            )
        used.add(str(ip))

    def _release_private(self, fe: JSON) -> None:
        props = fe.get("properties") or {}
        subnet = _ref(props.get("subnet"))
        addr = props.get("privateIPAddress")
        if subnet and addr:
            self._private_used.get(subnet.lower(), set()).discard(addr)

    def _refresh_backrefs(self) -> None:
        """Public IPs show which frontend uses them (``properties.ipConfiguration``)."""
        users: dict[str, str] = {}
        for lb in self.resources["loadBalancers"].values():
            for fe in lb["properties"].get("frontendIPConfigurations", []):
                used = _ref(fe["properties"].get("publicIPAddress"))
                if used:
                    users[used.lower()] = fe["id"]
        for pip in self.resources["publicIPAddresses"].values():
            user = users.get(pip["id"].lower())
            before = _ref(pip["properties"].get("ipConfiguration"))
            if user:
                pip["properties"]["ipConfiguration"] = {"id": user}
            else:
                pip["properties"].pop("ipConfiguration", None)
            if before != user:  # attaching or detaching changes the public IP: a new ETag
                pip["etag"] = _etag()


def _default_security_rules(nsg_id: str, etag: str) -> list[JSON]:
    def rule(name: str, priority: int, direction: str, access: str, src: str, dst: str) -> JSON:
        return {
            "name": name,
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "etag": etag,
            "properties": {
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": src,
                "destinationAddressPrefix": dst,
                "access": access,
                "priority": priority,
                "direction": direction,
                "provisioningState": "Succeeded",
            },
        }

    return [
        rule("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
        rule("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*"),
        rule("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
    ]
