"""Service and Node rules of the real API server: defaulting, validation and allocation.

Upstream references: ``pkg/apis/core/v1/defaults.go`` (defaults), ``pkg/apis/core/validation``
(the 422s) and ``pkg/registry/core/service/storage`` (ClusterIP/NodePort allocators, including
``patchAllocatedValues``: an update that omits an allocated value keeps it, and
``dropTypeDependentFields``: switching to ClusterIP releases NodePorts that were not changed).
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Callable, Iterable
from typing import Any

from lbprov.sandbox.kube_errors import (
    Cause,
    duplicate,
    forbidden,
    invalid,
    invalid_value,
    not_supported,
    required,
)

NODE_PORT_MIN = 30000
NODE_PORT_MAX = 32767
#: kube-apiserver's default --service-node-port-range.
DEFAULT_NODE_PORTS = (NODE_PORT_MIN, NODE_PORT_MAX)
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
KUBERNETES_SERVICE_IP = "10.96.0.1"

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def validate_name(name: str, *, style: str) -> str | None:
    """Return an error detail for an invalid object name, or None."""
    if style == "dns1035":
        if len(name) > 63 or not _DNS1035.match(name):
            return (
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
                "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            )
        return None
    if style == "dns1123label":
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            return (
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
                "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
                "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            )
        return None
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return None


def _needs_node_ports(spec: dict[str, Any]) -> bool:
    kind = spec.get("type")
    if kind == "NodePort":
        return True
    return kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def _needs_hc_node_port(spec: dict[str, Any]) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _external(spec: dict[str, Any]) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer")


def _default(spec: dict[str, Any]) -> None:
    spec.setdefault("type", "ClusterIP")
    if spec["type"] == "ExternalName":
        return
    spec.setdefault("sessionAffinity", "None")
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = spec.setdefault("sessionAffinityConfig", {})
        cfg.setdefault("clientIP", {}).setdefault("timeoutSeconds", 10800)
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if _external(spec):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and "port" in port:
                port["targetPort"] = port["port"]


def _patch_allocated_values(spec: dict[str, Any], old: dict[str, Any]) -> None:
    """Keep values the server allocated when an update leaves them out (upstream patchAllocatedValues)."""
    if not spec.get("clusterIP") and old.get("clusterIP") and spec.get("type") != "ExternalName":
        spec["clusterIP"] = old["clusterIP"]
        if not spec.get("clusterIPs") and old.get("clusterIPs"):
            spec["clusterIPs"] = list(old["clusterIPs"])
    if _external(spec):
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and not port.get("nodePort"):
                prev = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                if prev and prev.get("nodePort"):
                    port["nodePort"] = prev["nodePort"]
    if _needs_hc_node_port(spec) and not spec.get("healthCheckNodePort") and old.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old["healthCheckNodePort"]


def _drop_type_dependent_fields(spec: dict[str, Any], old: dict[str, Any]) -> None:
    """Clear allocated/type-bound values that no longer apply and were not changed by the user."""
    if not _external(spec):
        old_np = [p.get("nodePort") for p in old.get("ports") or []]
        new_np = [p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict)]
        if old_np == new_np:
            for port in spec.get("ports") or []:
                if isinstance(port, dict):
                    port.pop("nodePort", None)
    if not _needs_hc_node_port(spec) and spec.get("healthCheckNodePort") == old.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    if spec.get("type") != "LoadBalancer":
        for field in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if field in spec and spec.get(field) == old.get(field):
                spec.pop(field)
    if (
        not _external(spec)
        and "externalTrafficPolicy" in spec
        and spec.get("externalTrafficPolicy") == old.get("externalTrafficPolicy")
    ):
        spec.pop("externalTrafficPolicy")


def _validate(
    spec: dict[str, Any], old: dict[str, Any] | None, node_ports: tuple[int, int] = DEFAULT_NODE_PORTS
) -> list[Cause]:
    lo, hi = node_ports
    causes: list[Cause] = []
    kind = spec.get("type")
    types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    if kind not in types:
        causes.append(not_supported("spec.type", kind, types))
        return causes
    if kind == "ExternalName":
        if not spec.get("externalName"):
            causes.append(required("spec.externalName"))
        return causes
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if headless and kind != "ClusterIP":
        causes.append(
            invalid_value("spec.clusterIP", "None", f"may not be set to 'None' for {kind} services")
        )
    if not ports and not headless:
        causes.append(required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    seen_node: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        f = f"spec.ports[{i}]"
        if not isinstance(port, dict):
            causes.append(invalid_value(f, port, "must be an object"))
            continue
        name = port.get("name", "")
        if len(ports) > 1 and not name:
            causes.append(required(f"{f}.name"))
        if name:
            if not _IANA_SVC_NAME.match(name) or len(name) > 63:
                causes.append(
                    invalid_value(
                        f"{f}.name",
                        name,
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                    )
                )
            if name in names:
                causes.append(duplicate(f"{f}.name", name))
            names.add(name)
        number = port.get("port")
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 65535:
            causes.append(invalid_value(f"{f}.port", number, "must be between 1 and 65535, inclusive"))
        protocol = port.get("protocol")
        if protocol not in ("TCP", "UDP", "SCTP"):
            causes.append(not_supported(f"{f}.protocol", protocol, ["SCTP", "TCP", "UDP"]))
        if (number, protocol) in seen:
            causes.append(duplicate(f"{f}", {"port": number, "protocol": protocol}))
        seen.add((number, protocol))
        target = port.get("targetPort")
        if isinstance(target, int) and not isinstance(target, bool):
            if not 1 <= target <= 65535:
                causes.append(
                    invalid_value(f"{f}.targetPort", target, "must be between 1 and 65535, inclusive")
                )
        elif isinstance(target, str):
            if not _IANA_SVC_NAME.match(target) or len(target) > 15:
                causes.append(
                    invalid_value(
                        f"{f}.targetPort",
                        target,
                        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                    )
                )
        else:
            causes.append(invalid_value(f"{f}.targetPort", target, "must be an int or a string"))
        node_port = port.get("nodePort")
        if node_port:
            if kind == "ClusterIP":
                causes.append(forbidden(f"{f}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif not isinstance(node_port, int) or not lo <= node_port <= hi:
                causes.append(
                    invalid_value(
                        f"{f}.nodePort",
                        node_port,
                        f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}",
                    )
                )
            if (node_port, protocol) in seen_node:
                causes.append(duplicate(f"{f}.nodePort", node_port))
            seen_node.add((node_port, protocol))
    affinity = spec.get("sessionAffinity")
    if affinity not in ("None", "ClientIP"):
        causes.append(not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"]))
    timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
    if affinity == "ClientIP" and (not isinstance(timeout, int) or not 0 < timeout <= 86400):
        causes.append(
            invalid_value(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                timeout,
                "must be greater than 0 and less than 86400",
            )
        )
    etp = spec.get("externalTrafficPolicy")
    if etp is not None:
        if not _external(spec):
            causes.append(
                invalid_value(
                    "spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"
                )
            )
        elif etp not in ("Cluster", "Local"):
            causes.append(not_supported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]))
    itp = spec.get("internalTrafficPolicy")
    if itp not in (None, "Cluster", "Local"):
        causes.append(not_supported("spec.internalTrafficPolicy", itp, ["Cluster", "Local"]))
    hc = spec.get("healthCheckNodePort")
    if hc:
        if not _needs_hc_node_port(spec):
            causes.append(
                invalid_value(
                    "spec.healthCheckNodePort",
                    hc,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                )
            )
        elif not isinstance(hc, int) or not lo <= hc <= hi:
            causes.append(
                invalid_value(
                    "spec.healthCheckNodePort",
                    hc,
                    f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}",
                )
            )
    if "allocateLoadBalancerNodePorts" in spec and kind != "LoadBalancer":
        causes.append(
            forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'")
        )
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None:
        if kind != "LoadBalancer":
            causes.append(
                forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")
            )
        elif not isinstance(lb_class, str) or not _QUALIFIED.match(lb_class) or "/" not in lb_class:
            causes.append(
                invalid_value(
                    "spec.loadBalancerClass",
                    lb_class,
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (with a DNS subdomain prefix)",
                )
            )
    if (
        old is not None
        and old.get("type") == "LoadBalancer"
        and kind == "LoadBalancer"
        and old.get("loadBalancerClass") != lb_class
    ):
        causes.append(invalid_value("spec.loadBalancerClass", lb_class, "may not change once set"))
    for i, cidr in enumerate(spec.get("loadBalancerSourceRanges") or []):
        try:
            ipaddress.ip_network(str(cidr).strip(), strict=False)
        except ValueError:
            causes.append(invalid_value(f"spec.loadBalancerSourceRanges[{i}]", cidr, "must be a valid CIDR"))
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and cluster_ip != "None":
        try:
            ip = ipaddress.ip_address(cluster_ip)
            if old is None and ip not in SERVICE_CIDR:
                causes.append(
                    invalid_value(
                        "spec.clusterIPs",
                        [cluster_ip],
                        f"failed to allocate IP {cluster_ip}: the provided IP ({cluster_ip}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}",
                    )
                )
        except ValueError:
            causes.append(invalid_value("spec.clusterIP", cluster_ip, "must be a valid IP address"))
    if (
        old is not None
        and old.get("type") != "ExternalName"
        and old.get("clusterIP")
        and cluster_ip != old.get("clusterIP")
    ):
        causes.append(invalid_value("spec.clusterIPs[0]", cluster_ip, "may not change once set"))
    return causes


def used_node_ports(services: Iterable[dict[str, Any]]) -> set[int]:
    used: set[int] = set()
    for svc in services:
        spec = svc.get("spec") or {}
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                used.add(int(port["nodePort"]))
        if spec.get("healthCheckNodePort"):
            used.add(int(spec["healthCheckNodePort"]))
    return used


def prepare_service(
    name: str,
    spec_in: dict[str, Any],
    old_spec: dict[str, Any] | None,
    port_taken: Callable[[int], bool],
    ip_taken: Callable[[str], bool],
    rng: random.Random,
    node_ports: tuple[int, int] = DEFAULT_NODE_PORTS,
) -> dict[str, Any]:
    """Default, validate and allocate; return the spec to store or raise a 422 ``ApiError``.
    ``node_ports``: the NodePort range (kube-apiserver's ``--service-node-port-range``).

    ``port_taken``/``ip_taken`` say whether *another* Service holds a node port / cluster IP (the
    store keeps an index, so a write costs O(1) rather than a scan of every Service)."""
    spec = spec_in
    _default(spec)
    if old_spec is not None:
        _patch_allocated_values(spec, old_spec)
        _drop_type_dependent_fields(spec, old_spec)
    causes = _validate(spec, old_spec, node_ports)
    if causes:
        raise invalid("Service", name, causes)
    if spec["type"] == "ExternalName":
        for field in ("clusterIP", "clusterIPs"):
            spec.pop(field, None)
        return spec
    # Node ports: the user's ports are checked against the other Services only.
    clashes: list[Cause] = []
    for i, port in enumerate(spec.get("ports") or []):
        np = port.get("nodePort")
        if np and port_taken(np):
            clashes.append(
                invalid_value(f"spec.ports[{i}].nodePort", np, "provided port is already allocated")
            )
    hc = spec.get("healthCheckNodePort")
    if hc and (port_taken(hc) or any(p.get("nodePort") == hc for p in spec.get("ports") or [])):
        clashes.append(invalid_value("spec.healthCheckNodePort", hc, "provided port is already allocated"))
    if clashes:
        raise invalid("Service", name, clashes)
    in_use = {p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort")}
    if hc:
        in_use.add(hc)

    def allocate() -> int:
        for _ in range(20000):
            candidate = rng.randint(*node_ports)
            if candidate not in in_use and not port_taken(candidate):
                in_use.add(candidate)
                return candidate
        for candidate in range(node_ports[0], node_ports[1] + 1):
            if candidate not in in_use and not port_taken(candidate):
                in_use.add(candidate)
                return candidate
        raise invalid("Service", name, [invalid_value("spec.ports", None, "range is full")])

    if _needs_node_ports(spec):
        by_port: dict[int, int] = {}
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                by_port.setdefault(port["port"], port["nodePort"])
        for port in spec.get("ports") or []:
            if not port.get("nodePort"):
                # Same service port with another protocol shares the node port, as upstream.
                port["nodePort"] = by_port.get(port["port"]) or allocate()
                by_port.setdefault(port["port"], port["nodePort"])
    if _needs_hc_node_port(spec) and not spec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = allocate()
    # Cluster IP.
    if not spec.get("clusterIP"):
        while True:
            offset = rng.randint(10, SERVICE_CIDR.num_addresses - 2)
            candidate = str(SERVICE_CIDR.network_address + offset)
            if not ip_taken(candidate):
                break
        spec["clusterIP"] = candidate
    if not spec.get("clusterIPs") or spec["clusterIPs"][0] != spec["clusterIP"]:
        spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    return spec


def validate_node(name: str, spec: dict[str, Any], old_spec: dict[str, Any] | None) -> None:
    causes: list[Cause] = []
    if (
        old_spec is not None
        and old_spec.get("providerID")
        and spec.get("providerID") != old_spec.get("providerID")
    ):
        causes.append(
            forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid')
        )
    for i, taint in enumerate(spec.get("taints") or []):
        if not isinstance(taint, dict) or not taint.get("key"):
            causes.append(required(f"spec.taints[{i}].key"))
        elif taint.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(
                not_supported(
                    f"spec.taints[{i}].effect",
                    taint.get("effect"),
                    ["NoExecute", "NoSchedule", "PreferNoSchedule"],
                )
            )
    if causes:
        raise invalid("Node", name, causes)


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def _qualified_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or validate_name(prefix, style="dns1123subdomain")):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
            "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return None


def validate_metadata(kind: str, name: str, meta: dict[str, Any], group: str = "") -> None:
    """Labels, annotation keys and finalizer names, as upstream ValidateObjectMeta checks them."""
    causes: list[Cause] = []
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        causes.append(invalid_value("metadata.labels", labels, "must be a map of strings"))
        labels = {}
    for key, value in labels.items():
        problem = _qualified_key_problem(str(key))
        if problem:
            causes.append(invalid_value("metadata.labels", key, problem))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                invalid_value(
                    "metadata.labels",
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                    "'.', and must start and end with an alphanumeric character",
                )
            )
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        causes.append(invalid_value("metadata.annotations", annotations, "must be a map of strings"))
        annotations = {}
    for key, value in annotations.items():
        problem = _qualified_key_problem(str(key).lower())
        if problem:
            causes.append(invalid_value("metadata.annotations", key, problem))
        if not isinstance(value, str):
            causes.append(invalid_value(f"metadata.annotations[{key}]", value, "must be a string"))
    finalizers = meta.get("finalizers") or []
    for i, finalizer in enumerate(finalizers if isinstance(finalizers, list) else []):
        if not isinstance(finalizer, str) or _qualified_key_problem(finalizer):
            causes.append(invalid_value(f"metadata.finalizers[{i}]", finalizer, "must be a qualified name"))
        elif "/" not in finalizer and finalizer not in STANDARD_FINALIZERS:
            causes.append(
                invalid_value(
                    f"metadata.finalizers[{i}]",
                    finalizer,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    if causes:
        raise invalid(kind, name, causes, group)


def validate_lease(name: str, spec: dict[str, Any]) -> None:
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        causes.append(invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
        causes.append(
            invalid_value("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    if causes:
        raise invalid("Lease", name, causes, "coordination.k8s.io")


def prepare_service_status(name: str, spec: dict[str, Any], status: Any) -> Any:
    """Default (``ipMode: VIP`` for IP ingress, LoadBalancerIPMode is on since 1.30) and validate a
    Service status write, as upstream ``SetDefaults_Service`` and ``ValidateLoadBalancerStatus``."""
    if not isinstance(status, dict):
        return status
    lb = status.get("loadBalancer")
    if lb is None:
        return status
    causes: list[Cause] = []
    ingress = lb.get("ingress") if isinstance(lb, dict) else None
    if ingress and spec.get("type") != "LoadBalancer":
        causes.append(
            forbidden("status.loadBalancer.ingress", "may only be used when `spec.type` is 'LoadBalancer'")
        )
    for i, entry in enumerate(ingress or []):
        path = f"status.loadBalancer.ingress[{i}]"
        if not isinstance(entry, dict):
            causes.append(invalid_value(path, entry, "must be an object"))
            continue
        ip = entry.get("ip")
        if ip:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                causes.append(
                    invalid_value(
                        f"{path}.ip", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                    )
                )
            entry.setdefault("ipMode", "VIP")
        mode = entry.get("ipMode")
        if mode is not None:
            if not ip:
                causes.append(required(f"{path}.ip", "must be specified when `ipMode` is set"))
            elif mode not in ("VIP", "Proxy"):
                causes.append(not_supported(f"{path}.ipMode", mode, ["Proxy", "VIP"]))
        hostname = entry.get("hostname")
        if hostname:
            problem = validate_name(str(hostname), style="dns1123subdomain")
            if problem:
                causes.append(invalid_value(f"{path}.hostname", hostname, problem))
            try:
                ipaddress.ip_address(hostname)
                causes.append(
                    invalid_value(f"{path}.hostname", hostname, "must be a DNS name, not an IP address")
                )
            except ValueError:
                pass
    if causes:
        raise invalid("Service", name, causes)
    return status
