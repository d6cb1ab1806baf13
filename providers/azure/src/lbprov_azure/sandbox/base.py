"""What every part of the ARM emulator shares: the error shape, faults, responses, constants.

See :mod:`lbprov_azure.sandbox.state` for what the emulator does as a whole.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

JSON = dict[str, Any]

NETWORK = "Microsoft.Network"
#: Canonical spelling of each emulated top-level resource type, by lowercase name.
TOP_TYPES = {
    "loadbalancers": "loadBalancers",
    "publicipaddresses": "publicIPAddresses",
    "publicipprefixes": "publicIPPrefixes",
    "networksecuritygroups": "networkSecurityGroups",
    "virtualnetworks": "virtualNetworks",
}
#: Emulated child collections: parent type -> (lowercase child -> canonical child, field in parent).
CHILD_TYPES = {
    "networkSecurityGroups": {"securityrules": "securityRules"},
    "virtualNetworks": {"subnets": "subnets"},
}
# Limits from "Azure subscription and service limits" (learn.microsoft.com, azure-resource-manager/
# management/azure-subscription-service-limits), Load Balancer (Standard) and Networking:
#: rules (load-balancing + inbound NAT) per load balancer
MAX_RULES_PER_LB = 1500
#: frontend IP configurations per load balancer
MAX_FRONTENDS_PER_LB = 600
#: load-balancing + inbound NAT rules a NIC IP configuration (here: a backend address) can be in,
#: across all load balancers
MAX_RULES_PER_NIC = 300
#: security rules per network security group
MAX_NSG_RULES = 1000
#: source (and destination) addresses and ranges in the security rules of one NSG
MAX_NSG_ADDRESSES = 4000
MAX_TAGS = 50
NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
BAD_TAG_CHARS = set("<>%&\\?/")


class ArmError(Exception):
    """An error response in ARM's shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        details: list[JSON] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details or []

    def body(self) -> JSON:
        return {"error": {"code": self.code, "message": self.message, "details": list(self.details)}}


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


def encode(body: Any) -> bytes:
    """A response body's bytes: orjson, or the standard library's writer for what orjson refuses
    (an integer past 64 bits). One more difference: orjson writes a stored ``NaN`` or ``Infinity``
    as ``null`` (the standard library wrote the non-JSON ``NaN``); only a request that is not valid
    JSON can store one."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body).encode()


def etag_headers(body: JSON, headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` with the ``ETag`` header of a resource's answer (its body's ``etag``), as ARM sends."""
    out = dict(headers or {})
    if isinstance(body.get("etag"), str):
        out["ETag"] = body["etag"]
    return out


@dataclass
class Response:
    """An answer: ``body`` (a JSON value the answer owns), or ``raw``, its bytes already written.

    Why ``raw``: an answer that shows a stored resource is written from the stored value itself,
    under the state's lock (:meth:`encoded`), instead of from a deep copy serialised later. Bytes
    cannot be changed, so no caller can change the stored state through an answer, and a later
    write cannot change an answer already made. A shared load balancer's body is several hundred
    KB at scale and each batch of its writer is answered twice (the PUT and the final GET): the
    copy was one more walk of that body on the chain that bounds the scale bench's Azure create
    (issue 14).
    """

    status: int
    body: JSON | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None

    @classmethod
    def encoded(cls, status: int, body: JSON, headers: dict[str, str] | None = None) -> Response:
        """An answer written now from ``body`` (call it under the lock that guards ``body``)."""
        return cls(status, None, etag_headers(body, headers), encode(body))

    def json(self) -> JSON | None:
        """The answer's body as a new JSON value (decoded from ``raw`` when it was written)."""
        if self.raw is not None:
            decoded: JSON = orjson.loads(self.raw)
            return decoded
        return self.body


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    status: int

    @property
    def mutating(self) -> bool:
        return self.method in ("PUT", "PATCH", "POST", "DELETE")


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def ref(obj: Any) -> str | None:
    """The ``id`` of a ``{"id": ...}`` reference, or None."""
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        return str(obj["id"])
    return None


def check_sku(kind: str, res: JSON, existing: JSON | None, names: tuple[str, ...]) -> str:
    """The SKU of a new or updated resource, as azure-mgmt-network's models define it.

    SKU names and tiers are the enums of the api-version (``PublicIPAddressSkuName``: Basic,
    Standard, StandardV2; ``LoadBalancerSkuName``: Basic, Standard, Gateway; tiers Regional,
    Global); an omitted name is Basic, the documented default. Basic public IPs and Basic load
    balancers were retired on 30 September 2025 (Azure updates: "Basic SKU public IP addresses" and
    "Basic Load Balancer" retirement): ARM refuses to create new ones (existing ones still update).
    New Basic load balancers were blocked earlier, from 31 March 2025 (Azure/AKS#4846 release note,
    Azure/AKS#5020; kubermatic/kubermatic#13328: "no longer able to deploy new ones after 31 March
    2025").

    The answers, as ARM gives them:

    * a value outside the enum is a body ARM cannot deserialise: 400 ``InvalidRequestFormat``
      "Cannot parse the request." with an ``InvalidJson`` detail (the shape of NRP's parse errors in
      hashicorp/terraform-provider-azurerm#14437 and Azure/azure-cli#934; the detail's wording for an
      enum value is the emulator's own);
    * a new Basic public IP: 400 ``IPv4BasicSkuPublicIpCountLimitReached`` "Cannot create more than 0
      IPv4 Basic SKU public IP addresses for this subscription in this region." (what ARM answers
      since the retirement: skypilot-org/skypilot#7977, Azure/azure-quickstart-templates#14512);
    * a new Basic load balancer: ``BasicSkuLoadBalancerRetired`` is the emulator's own code (no public
      source quotes ARM's answer since creation was blocked; Azure docs, cloud-provider-azure, AKS and
      terraform-provider-azurerm issues searched).
    """
    sku = res.get("sku") or {}
    name = sku.get("name", "Basic")
    tier = sku.get("tier", "Regional")
    enum = "PublicIPAddressSku" if kind == "publicIPAddresses" else "LoadBalancerSku"
    for fld, value, allowed in (("name", name, names), ("tier", tier, ("Regional", "Global"))):
        if value not in allowed:
            raise ArmError(
                400,
                "InvalidRequestFormat",
                "Cannot parse the request.",
                details=[
                    {
                        "code": "InvalidJson",
                        "message": f"Error converting value {value!r} to type '{enum}{fld.title()}'. Path "
                        f"'sku.{fld}'. Accepted: {', '.join(allowed)}.",
                    }
                ],
            )
    if name == "Basic" and existing is None and kind == "publicIPAddresses":
        raise ArmError(
            400,
            "IPv4BasicSkuPublicIpCountLimitReached",
            "Cannot create more than 0 IPv4 Basic SKU public IP addresses for this subscription in this region.",
        )
    if name == "Basic" and existing is None:
        raise ArmError(
            400,
            "BasicSkuLoadBalancerRetired",
            f"{kind} {res['id']}: new Basic SKU load balancers cannot be created since 31 March 2025 (the SKU "
            "was retired on 30 September 2025); use the Standard SKU.",
        )
    res["sku"] = {"name": name, "tier": tier}
    return str(name)
