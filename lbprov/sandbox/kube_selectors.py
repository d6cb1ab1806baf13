"""Label and field selectors, parsed as the API server parses them.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a`` (exists) and
``!a`` (does not exist), joined by commas. Field selectors: ``path=value``, ``path==value`` and
``path!=value`` over a small per-resource set of supported fields (anything else is a 400, as on a
real server).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lbprov.sandbox.kube_errors import bad_request

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" match objects without the label too (as upstream).
        return not present or value not in self.values


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s*\((.*)\)$")
_EQ_RE = re.compile(rf"^({_KEY})\s*(==|!=|=)\s*(.*)$")


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text:
        return []
    reqs: list[Requirement] = []
    for part in _split_top(text):
        m = _SET_RE.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(4).split(",") if v.strip())
            if not values:
                raise bad_request(f"unable to parse requirement: values for {m.group(3)} must not be empty")
            reqs.append(Requirement(m.group(1), m.group(3), values))
            continue
        m = _EQ_RE.match(part)
        if m:
            op = "=" if m.group(3) in ("=", "==") else "!="
            value = m.group(4).strip()
            if not re.fullmatch(_VALUE, value):
                raise bad_request(f"unable to parse requirement: invalid label value: {value!r}")
            reqs.append(Requirement(m.group(1), op, (value,)))
            continue
        if part.startswith("!") and re.fullmatch(_KEY, part[1:].strip()):
            reqs.append(Requirement(part[1:].strip(), "!"))
            continue
        if re.fullmatch(_KEY, part):
            reqs.append(Requirement(part, "exists"))
            continue
        raise bad_request(f"unable to parse requirement: {part!r}")
    return reqs


def labels_match(reqs: list[Requirement], obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


FieldGetter = Callable[[dict[str, Any]], str]


def _path(*keys: str) -> FieldGetter:
    def get(obj: dict[str, Any]) -> str:
        cur: Any = obj
        for k in keys:
            cur = cur.get(k) if isinstance(cur, dict) else None
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


_COMMON: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

#: Supported field selectors per resource (a subset of upstream's, covering what clients use).
FIELDS: dict[str, dict[str, FieldGetter]] = {
    "services": {**_COMMON, "spec.clusterIP": _path("spec", "clusterIP"), "spec.type": _path("spec", "type")},
    "nodes": {**_COMMON, "spec.unschedulable": _path("spec", "unschedulable")},
    "namespaces": {**_COMMON, "status.phase": _path("status", "phase")},
    "leases": dict(_COMMON),
    "configmaps": dict(_COMMON),
    "pods": {**_COMMON, "spec.nodeName": _path("spec", "nodeName"), "status.phase": _path("status", "phase")},
    "events": {
        **_COMMON,
        **{
            f"involvedObject.{k}": _path("involvedObject", k)
            for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        },
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
}


@dataclass(frozen=True)
class FieldRequirement:
    getter: FieldGetter
    equal: bool
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        return (self.getter(obj) == self.value) == self.equal


def parse_field_selector(text: str | None, resource: str) -> list[FieldRequirement]:
    if not text:
        return []
    supported = FIELDS.get(resource, _COMMON)
    reqs: list[FieldRequirement] = []
    for part in _split_top(text):
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        getter = supported.get(field)
        if getter is None:
            raise bad_request(f"field label not supported: {field}")
        reqs.append(FieldRequirement(getter, op != "!=", value))
    return reqs


def fields_match(reqs: list[FieldRequirement], obj: dict[str, Any]) -> bool:
    return all(r.matches(obj) for r in reqs)
