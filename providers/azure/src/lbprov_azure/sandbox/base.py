"""What every part of the ARM emulator shares: the error shape, faults, responses, constants.

See :mod:`lbprov_azure.sandbox.state` for what the emulator does as a whole.
"""

from __future__ import annotations

import re
import uuid
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
NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
BAD_TAG_CHARS = set("<>%&\\?/")


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


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def ref(obj: Any) -> str | None:
    """The ``id`` of a ``{"id": ...}`` reference, or None."""
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        return str(obj["id"])
    return None
