"""Service + eligible Nodes + settings -> Intent: the NodePort mapping, validated.

:func:`build_intent` is pure: the same Service, Nodes and settings always give the same Intent, and
it never calls the cloud. It takes objects as the Kubernetes API returns them (dicts in the API's
JSON shape) so it can be fed from the informer cache, from manifest files or from tests alike.
Bad input raises :class:`~lbprov.model.InvalidService` with a message that names the field and the
accepted values.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lbprov import naming
from lbprov.model import HealthCheck, Intent, InvalidService, IPFamily, Port, ServiceRef, Target
from lbprov.provider import needs_node_ports, served_ip_families

if TYPE_CHECKING:
    from lbprov.provider import Provider

#: A node with this label (unless it parses to false) gets no load-balancer traffic (upstream).
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
#: cluster-autoscaler taints a node it is about to delete with this key.
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
ZONE_LABEL = "topology.kubernetes.io/zone"
LEGACY_ZONE_LABEL = "failure-domain.beta.kubernetes.io/zone"
#: Annotation alternative to ``spec.loadBalancerSourceRanges`` (the spec field wins).
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"

#: Upstream ``DefaultClientIPServiceAffinitySeconds``.
DEFAULT_AFFINITY_TIMEOUT = 10800

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True)
class IntentSettings:
    """Cluster-wide inputs of :func:`build_intent`."""

    cluster: str
    #: Providers whose load balancers send traffic to NodePorts need them allocated.
    require_node_ports: bool = True


def parse_bool(value: str) -> bool | None:
    """Go's ``strconv.ParseBool``, which upstream uses for labels and annotations; None if invalid."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def node_exclusion_reason(node: Mapping[str, Any]) -> str | None:
    """Why a node gets no load-balancer traffic, or ``None`` when it is eligible.

    Upstream's ``stableNodeSetPredicates`` plus "has a providerID" (a node without one cannot be
    mapped to a cloud instance). Readiness is deliberately not considered (KEP-3458).
    """
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    if meta.get("deletionTimestamp"):
        return "being deleted"
    labels = meta.get("labels") or {}
    if EXCLUDE_LABEL in labels:
        parsed = parse_bool(str(labels[EXCLUDE_LABEL]))
        if parsed is not False:
            return f"labelled {EXCLUDE_LABEL}={labels[EXCLUDE_LABEL]}"
    for taint in spec.get("taints") or []:
        if taint.get("key") == TO_BE_DELETED_TAINT:
            return f"tainted {TO_BE_DELETED_TAINT} (cluster-autoscaler is removing it)"
    if not spec.get("providerID"):
        return "has no spec.providerID"
    return None


def eligible_nodes(nodes: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [n for n in nodes if node_exclusion_reason(n) is None]


def no_nodes_reason(nodes: Iterable[Mapping[str, Any]]) -> str | None:
    """Why no node is eligible for load-balancer traffic, or ``None`` when one is."""
    all_nodes = list(nodes)
    if eligible_nodes(all_nodes):
        return None
    if not all_nodes:
        return "the cluster has no nodes"
    reasons = sorted({r for n in all_nodes if (r := node_exclusion_reason(n))})
    return f"every node is excluded ({'; '.join(reasons)})"


def node_targets(nodes: Iterable[Mapping[str, Any]]) -> tuple[Target, ...]:
    """The load-balancer targets of the eligible nodes, sorted (an :class:`Intent`'s ``targets``)."""
    return tuple(sorted(node_target(n) for n in eligible_nodes(nodes)))


class NodeTargetsMemo:
    """:func:`node_targets` of the informer's node lists, computed once per set of node objects.

    Every Service's intent has the same targets; computing them costs about 80 µs of CPU with 20
    nodes (measured unprofiled under load), i.e. about 0.08 s of a node sync or a resync over 1,000
    Services, growing with nodes x Services.
    The informer replaces a changed Node's object and never changes one in place, so the same
    objects (by identity) have the same targets; any change brings a new object and a new
    computation. Not for node dicts that their owner edits in place.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: tuple[Mapping[str, Any], ...] = ()
        self._targets: tuple[Target, ...] | None = None

    def __call__(self, nodes: Iterable[Mapping[str, Any]]) -> tuple[Target, ...]:
        nodes = tuple(nodes)
        with self._lock:
            known, targets = self._nodes, self._targets
        if (
            targets is not None
            and len(known) == len(nodes)
            and all(a is b for a, b in zip(known, nodes, strict=True))
        ):
            return targets
        targets = node_targets(nodes)
        with self._lock:
            self._nodes, self._targets = nodes, targets
        return targets


def node_target(node: Mapping[str, Any]) -> Target:
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    addresses = (node.get("status") or {}).get("addresses") or []
    internal_ips = tuple(
        str(a.get("address")) for a in addresses if a.get("type") == "InternalIP" and a.get("address")
    )
    return Target(
        node_name=str(meta.get("name", "")),
        provider_id=str((node.get("spec") or {}).get("providerID", "")),
        internal_ip=internal_ips[0] if internal_ips else None,
        zone=labels.get(ZONE_LABEL) or labels.get(LEGACY_ZONE_LABEL),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        internal_ips=internal_ips,
    )


def service_ref(service: Mapping[str, Any]) -> ServiceRef:
    meta = service.get("metadata") or {}
    return ServiceRef(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
    )


def parse_cidrs(field: str, values: Sequence[str]) -> tuple[str, ...]:
    """Validate and normalise CIDRs (``10.0.0.5/8`` -> ``10.0.0.0/8``), sorted and deduplicated."""
    out: set[str] = set()
    for i, raw in enumerate(values):
        value = str(raw).strip()
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise InvalidService(
                f"{field}[{i}]", f"{value!r} is not a CIDR; expected e.g. 203.0.113.0/24 or 0.0.0.0/0"
            ) from None
        out.add(str(net))
    return tuple(sorted(out, key=lambda s: (ipaddress.ip_network(s).version, s)))


class _Problems:
    """Every problem of one Service, so that a user fixes them in one go, not one per attempt.

    :meth:`raise_if_any` raises one :class:`InvalidService` (the type callers catch): its ``field``
    is the first problem's, its message lists each field with its reason
    (``spec.ports[0].protocol: 'SCTP' is not supported ...; spec.ports[1].port: 70000 ...``).
    """

    def __init__(self) -> None:
        self.found: list[InvalidService] = []

    def add(self, field: str, message: str) -> None:
        self.found.append(InvalidService(field, message))

    def check(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)``, recording an :class:`InvalidService` it raises (and returning None)."""
        try:
            return fn(*args)
        except InvalidService as exc:
            self.found.append(exc)
            return None

    def raise_if_any(self) -> None:
        if not self.found:
            return
        first, rest = self.found[0], self.found[1:]
        if not rest:
            raise first
        raise InvalidService(first.field, "; ".join([first.reason, *(str(p) for p in rest)]))


def _ports(spec: Mapping[str, Any], require_node_ports: bool, problems: _Problems) -> tuple[Port, ...]:
    raw_ports = spec.get("ports") or []
    if not raw_ports:
        problems.add("spec.ports", "a LoadBalancer Service needs at least one port")
    ports: list[Port] = []
    seen: set[tuple[str, int]] = set()
    for i, raw in enumerate(raw_ports):
        field = f"spec.ports[{i}]"
        before = len(problems.found)
        protocol = str(raw.get("protocol") or "TCP")
        if protocol not in ("TCP", "UDP"):
            problems.add(f"{field}.protocol", f"{protocol!r} is not supported; accepted values: TCP, UDP")
        port = raw.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            problems.add(f"{field}.port", f"{port!r} is not a port; accepted values: 1-65535")
        elif (protocol, port) in seen:
            problems.add(f"{field}.port", f"{protocol}/{port} is listed twice")
        seen.add((protocol, port))
        node_port = raw.get("nodePort")
        if node_port is None:
            if require_node_ports:
                if spec.get("allocateLoadBalancerNodePorts") is False:
                    if i == 0:  # one Service-wide problem, not one per port
                        problems.add(
                            "spec.allocateLoadBalancerNodePorts",
                            "false is not supported: this provider sends traffic to NodePorts; "
                            "accepted values: true (default)",
                        )
                else:
                    problems.add(f"{field}.nodePort", "no NodePort allocated yet")
        elif not isinstance(node_port, int) or not 1 <= node_port <= 65535:
            problems.add(f"{field}.nodePort", f"{node_port!r} is not a port; accepted values: 1-65535")
        if len(problems.found) == before:
            ports.append(Port(str(raw.get("name") or ""), protocol, port, node_port))  # type: ignore[arg-type]
    return tuple(ports)


def _source_ranges(spec: Mapping[str, Any], annotations: Mapping[str, str]) -> tuple[str, ...]:
    if spec.get("loadBalancerSourceRanges"):
        return parse_cidrs("spec.loadBalancerSourceRanges", spec["loadBalancerSourceRanges"])
    if annotations.get(SOURCE_RANGES_ANNOTATION, "").strip():
        values = [v for v in annotations[SOURCE_RANGES_ANNOTATION].split(",") if v.strip()]
        return parse_cidrs(f"metadata.annotations[{SOURCE_RANGES_ANNOTATION}]", values)
    return ("0.0.0.0/0",)


_IP_FAMILIES = ("IPv4", "IPv6")
_IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")


def _ip_families(spec: Mapping[str, Any], served: frozenset[str]) -> tuple[tuple[IPFamily, ...], str]:
    """``spec.ipFamilies`` and ``spec.ipFamilyPolicy``, cut to what the provider can serve.

    The API server fills both fields (a Service without them is IPv4 SingleStack). A family the
    provider cannot serve is refused, except the secondary family of a ``PreferDualStack``
    Service, which "prefers" dual-stack and is served single-stack, as the API server itself does
    on a single-stack cluster. An IPv6-only Service never silently gets an IPv4 load balancer.
    """
    families = list(spec.get("ipFamilies") or ["IPv4"])
    policy = str(spec.get("ipFamilyPolicy") or ("SingleStack" if len(families) == 1 else "RequireDualStack"))
    if policy not in _IP_FAMILY_POLICIES:
        raise InvalidService(
            "spec.ipFamilyPolicy", f"{policy!r}; accepted values: {', '.join(_IP_FAMILY_POLICIES)}"
        )
    bad = [f for f in families if f not in _IP_FAMILIES]
    if bad or len(set(families)) != len(families) or len(families) > 2:
        raise InvalidService(
            "spec.ipFamilies", f"{families!r}: at most one each of {', '.join(_IP_FAMILIES)}"
        )
    if policy == "SingleStack" and len(families) != 1:
        raise InvalidService("spec.ipFamilies", f"{families!r}: SingleStack takes exactly one family")
    unserved = [f for f in families if f not in served]
    if policy == "PreferDualStack" and unserved == families[1:] and families[0] in served:
        families = families[:1]
    elif unserved:
        raise InvalidService(
            "spec.ipFamilies",
            f"{families!r} ({policy}): this provider's load balancers serve "
            f"{', '.join(sorted(served))} only, and an {'/'.join(unserved)} Service must not get a "
            "load balancer of another family",
        )
    return tuple(families), policy


def build_intent(
    service: Mapping[str, Any],
    nodes: Iterable[Mapping[str, Any]],
    settings: IntentSettings,
    provider: Provider | None = None,
    *,
    targets: tuple[Target, ...] | None = None,
) -> Intent:
    """Turn a Service and the cluster's nodes into an :class:`Intent`.

    Ineligible nodes (see :func:`node_exclusion_reason`) are dropped here. With a ``provider``, its
    :meth:`~lbprov.provider.Provider.resolve` validates the provider's annotations and fills in the
    scheme and options. ``targets``: :func:`node_targets` of ``nodes`` if the caller has them
    already (:class:`NodeTargetsMemo`).
    """
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    ref = service_ref(service)
    if spec.get("type") != "LoadBalancer":
        raise InvalidService("spec.type", f"{spec.get('type')!r} does not ask for a load balancer")
    problems = _Problems()
    if not ref.uid:
        problems.add("metadata.uid", "the Service has no UID (was it read from the API server?)")

    ports = _ports(spec, settings.require_node_ports and needs_node_ports(provider), problems)

    policy = str(spec.get("externalTrafficPolicy") or "Cluster")
    if policy not in ("Cluster", "Local"):
        problems.add("spec.externalTrafficPolicy", f"{policy!r}; accepted values: Cluster, Local")
    health_check: HealthCheck | None = None
    if policy == "Local":
        hc_port = spec.get("healthCheckNodePort")
        if not isinstance(hc_port, int) or not 1 <= hc_port <= 65535:
            problems.add(
                "spec.healthCheckNodePort",
                f"{hc_port!r}: externalTrafficPolicy Local needs a healthCheckNodePort in 1-65535",
            )
        else:
            health_check = HealthCheck(protocol="HTTP", port=hc_port, path="/healthz")

    affinity = str(spec.get("sessionAffinity") or "None")
    if affinity not in ("None", "ClientIP"):
        problems.add("spec.sessionAffinity", f"{affinity!r}; accepted values: None, ClientIP")
    timeout: int | None = None
    if affinity == "ClientIP":
        cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
        timeout = int(cfg) if cfg is not None else DEFAULT_AFFINITY_TIMEOUT

    requested_ip = spec.get("loadBalancerIP") or None
    if requested_ip is not None:
        try:
            ipaddress.ip_address(requested_ip)
        except ValueError:
            problems.add("spec.loadBalancerIP", f"{requested_ip!r} is not an IP address")

    source_ranges = problems.check(_source_ranges, spec, annotations)
    ip_families = problems.check(_ip_families, spec, served_ip_families(provider))

    # No eligible node (e.g. every node excluded during a node-pool rotation) is not an error: as
    # upstream, the load balancer stays, with an empty backend set, and is filled again when nodes
    # come back (the controller records an UnAvailableLoadBalancer Warning; see no_nodes_reason).
    if targets is None:
        targets = node_targets(nodes)
    problems.raise_if_any()

    intent = Intent(
        ref=ref,
        cluster=settings.cluster,
        lb_name=naming.lb_name(ref.uid),
        scheme="external",
        ports=ports,
        targets=targets,
        traffic_policy=policy,  # type: ignore[arg-type]
        health_check=health_check,
        source_ranges=source_ranges,
        session_affinity=affinity == "ClientIP",
        affinity_timeout_seconds=timeout,
        requested_ip=requested_ip,
        tags=tuple(sorted(naming.ownership_tags(settings.cluster, ref).items())),
        ip_families=ip_families[0],
        ip_family_policy=ip_families[1],
    )
    if provider is not None:
        intent = provider.resolve(intent, annotations)
    return intent
