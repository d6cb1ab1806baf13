"""Field helpers shared by the per-kind validators of the emulator."""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime
from typing import Any

from lbprov_gcp.sandbox.errors import invalid

Json = dict[str, Any]

#: Resource names: RFC 1035, as every Compute resource's ``name`` field documents.
NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
PORT_ITEM = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")
PASSTHROUGH_SCHEMES = {"EXTERNAL", "INTERNAL"}
#: Label keys and values (Compute "Labeling resources": keys start with a lowercase letter; keys and
#: values have at most 63 lowercase letters, digits, '_' and '-').
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint() -> str:
    return base64.b64encode(os.urandom(8)).decode()


def int_field(body: Json, key: str, default: int, lo: int, hi: int) -> int:
    value = int(body.get(key, default))
    if not lo <= value <= hi:
        raise invalid(f"resource.{key}", f"{value} is not in [{lo}, {hi}]")
    body[key] = value
    return value


def check_port_items(items: list[str], field: str) -> list[tuple[int, int]]:
    ranges = []
    for i, item in enumerate(items):
        m = PORT_ITEM.match(str(item))
        lo = int(m.group(1)) if m else 0
        hi = int(m.group(2) or lo) if m else 0
        if not m or not 1 <= lo <= hi <= 65535:
            raise invalid(f"{field}[{i}]", f"'{item}' is not a port or port range in 1-65535")
        ranges.append((lo, hi))
    return ranges


def overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    return any(lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in a for lo2, hi2 in b)
