"""Server-side printing: ``meta.k8s.io/v1`` Tables, which ``kubectl get`` asks for.

kubectl requests ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the columns the server
chooses; the columns here are those of the real server's printers for these kinds.
"""

from __future__ import annotations

import datetime
from typing import Any


def _age(timestamp: str | None, now: datetime.datetime) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    col: dict[str, Any] = {
        "name": name,
        "type": kind,
        "format": fmt,
        "description": name,
        "priority": priority,
    }
    return col


def _service_row(obj: dict[str, Any], now: datetime.datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
    external += spec.get("externalIPs") or []
    kind = spec.get("type", "ClusterIP")
    if external:
        ext = ",".join(external)
    elif kind == "LoadBalancer":
        ext = "<pending>"
    elif kind == "ExternalName":
        ext = spec.get("externalName", "")
    else:
        ext = "<none>"
    ports = []
    for p in spec.get("ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        ports.append(f"{text}/{p.get('protocol', 'TCP')}")
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [
        obj["metadata"]["name"],
        kind,
        spec.get("clusterIP") or "<none>",
        ext,
        ",".join(ports) or "<none>",
        _age(obj["metadata"].get("creationTimestamp"), now),
        selector,
    ]


def _node_row(obj: dict[str, Any], now: datetime.datetime) -> list[Any]:
    status = obj.get("status") or {}
    ready = "Unknown"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = "Ready" if cond.get("status") == "True" else "NotReady"
    if (obj.get("spec") or {}).get("unschedulable"):
        ready += ",SchedulingDisabled"
    labels = (obj.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [
        obj["metadata"]["name"],
        ready,
        ",".join(roles) or "<none>",
        _age(obj["metadata"].get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def _event_source(obj: dict[str, Any]) -> str:
    """upstream ``formatEventSource``: ``component, host`` or the reporting controller."""
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    if not component:
        return "<none>"
    return f"{component}, {host}" if host else component


def _event_row(obj: dict[str, Any], now: datetime.datetime) -> list[Any]:
    inv = obj.get("involvedObject") or {}
    meta = obj["metadata"]
    series = obj.get("series") or {}
    last = (
        series.get("lastObservedTime")
        or obj.get("lastTimestamp")
        or obj.get("eventTime")
        or meta.get("creationTimestamp")
    )
    first = obj.get("firstTimestamp") or obj.get("eventTime") or meta.get("creationTimestamp")
    count = series.get("count") or obj.get("count") or 1
    return [
        _age(last, now),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}",
        inv.get("fieldPath", ""),
        _event_source(obj),
        obj.get("message", ""),
        _age(first, now),
        str(count),
        meta.get("name", ""),
    ]


def _configmap_row(obj: dict[str, Any], now: datetime.datetime) -> list[Any]:
    return [
        obj["metadata"]["name"],
        len(obj.get("data") or {}) + len(obj.get("binaryData") or {}),
        _age(obj["metadata"].get("creationTimestamp"), now),
    ]


def _pod_row(obj: dict[str, Any], now: datetime.datetime) -> list[Any]:
    status = obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        "0/0",
        status.get("phase", ""),
        0,
        _age(obj["metadata"].get("creationTimestamp"), now),
        status.get("podIP") or "<none>",
        (obj.get("spec") or {}).get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _namespace_row(obj: dict[str, Any], now: datetime.datetime) -> list[Any]:
    return [
        obj["metadata"]["name"],
        (obj.get("status") or {}).get("phase", ""),
        _age(obj["metadata"].get("creationTimestamp"), now),
    ]


def _lease_row(obj: dict[str, Any], now: datetime.datetime) -> list[Any]:
    return [
        obj["metadata"]["name"],
        (obj.get("spec") or {}).get("holderIdentity", ""),
        _age(obj["metadata"].get("creationTimestamp"), now),
    ]


COLUMNS: dict[str, list[dict[str, Any]]] = {
    "services": [
        _col("Name", fmt="name"),
        _col("Type"),
        _col("Cluster-IP"),
        _col("External-IP"),
        _col("Port(s)"),
        _col("Age"),
        _col("Selector", priority=1),
    ],
    "nodes": [
        _col("Name", fmt="name"),
        _col("Status"),
        _col("Roles"),
        _col("Age"),
        _col("Version"),
        _col("Internal-IP", priority=1),
        _col("External-IP", priority=1),
        _col("OS-Image", priority=1),
        _col("Kernel-Version", priority=1),
        _col("Container-Runtime", priority=1),
    ],
    # upstream eventColumnDefinitions: the priority-1 columns show with -o wide
    "events": [
        _col("Last Seen"),
        _col("Type"),
        _col("Reason"),
        _col("Object"),
        _col("Subobject", priority=1),
        _col("Source", priority=1),
        _col("Message"),
        _col("First Seen", priority=1),
        _col("Count", priority=1),
        _col("Name", priority=1),
    ],
    "configmaps": [_col("Name", fmt="name"), _col("Data", "integer"), _col("Age")],
    "pods": [
        _col("Name", fmt="name"),
        _col("Ready"),
        _col("Status"),
        _col("Restarts", "string"),
        _col("Age"),
        _col("IP", priority=1),
        _col("Node", priority=1),
        _col("Nominated Node", priority=1),
        _col("Readiness Gates", priority=1),
    ],
    "namespaces": [_col("Name", fmt="name"), _col("Status"), _col("Age")],
    "leases": [_col("Name", fmt="name"), _col("Holder"), _col("Age")],
}

ROWS = {
    "services": _service_row,
    "nodes": _node_row,
    "events": _event_row,
    "namespaces": _namespace_row,
    "leases": _lease_row,
    "configmaps": _configmap_row,
    "pods": _pod_row,
}


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def to_table(
    resource: str,
    objects: list[dict[str, Any]],
    *,
    include: str = "Metadata",
    list_meta: dict[str, Any] | None = None,
    with_columns: bool = True,
) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": ROWS[resource](obj, now)}
        embedded = _row_object(obj, include)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": COLUMNS[resource] if with_columns else None,
        "rows": rows,
    }
    return table
