"""Provider-neutral value types.

Everything a provider needs to build a load balancer, and everything it hands back, with nothing
Kubernetes-specific in it. All types are frozen: an :class:`Intent` is computed once per reconcile
from the Service and the nodes and never mutated, so a provider cannot leak state between Services
through it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Protocol = Literal["TCP", "UDP"]
Scheme = Literal["external", "internal"]
TrafficPolicy = Literal["Cluster", "Local"]
IPFamily = Literal["IPv4", "IPv6"]
IPFamilyPolicy = Literal["SingleStack", "PreferDualStack", "RequireDualStack"]


class InvalidService(ValueError):
    """The Service (or one of its annotations) cannot be turned into a load balancer.

    The message names the offending field and the accepted values. The reconciler turns it into a
    ``SyncLoadBalancerFailed`` Warning event and makes no cloud call.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class OwnershipConflict(RuntimeError):
    """A resource with the name lbprov wants exists but is not owned by this cluster/Service.

    lbprov never adopts a foreign resource: the plan fails with this error instead.
    """


@dataclass(frozen=True, order=True)
class ServiceRef:
    """Identity of a Service: namespace/name for humans, UID for names and ownership."""

    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, order=True)
class Port:
    """One service port and the NodePort kube-proxy opens for it on every node."""

    name: str
    protocol: Protocol
    port: int
    #: ``None`` when the Service has no NodePort (``allocateLoadBalancerNodePorts: false``, for
    #: providers whose ``needs_node_ports`` is False).
    node_port: int | None


@dataclass(frozen=True, order=True)
class Target:
    """An eligible node that the load balancer sends traffic to."""

    node_name: str
    provider_id: str
    #: The node's first ``InternalIP`` address (of either family, as status.addresses lists them).
    internal_ip: str | None = None
    zone: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    #: Every ``InternalIP`` address of the node, in status order (a dual-stack node has one per
    #: family): providers that serve IPv6 pick the node's address of each family from these.
    internal_ips: tuple[str, ...] = ()

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True)
class HealthCheck:
    """An explicit health check. ``port=None`` means the traffic port (the NodePort)."""

    protocol: Literal["TCP", "HTTP", "HTTPS"]
    port: int | None = None
    path: str | None = None
    interval_seconds: int | None = None
    timeout_seconds: int | None = None
    healthy_threshold: int | None = None
    unhealthy_threshold: int | None = None


@dataclass(frozen=True)
class Intent:
    """Everything a provider needs to converge one Service's load balancer.

    ``health_check`` is set for ``externalTrafficPolicy: Local`` (HTTP ``/healthz`` on the
    healthCheckNodePort); ``None`` means the provider's default. ``options`` is the provider's own
    validated annotation model (a frozen pydantic model), or ``None`` when it has none.
    """

    ref: ServiceRef
    cluster: str
    lb_name: str
    scheme: Scheme
    ports: tuple[Port, ...]
    targets: tuple[Target, ...]
    traffic_policy: TrafficPolicy = "Cluster"
    health_check: HealthCheck | None = None
    source_ranges: tuple[str, ...] = ("0.0.0.0/0",)
    session_affinity: bool = False
    affinity_timeout_seconds: int | None = None
    requested_ip: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    options: Any = None
    #: ``spec.ipFamilies`` in order (``IPv4``/``IPv6``); the first is the Service's primary family.
    ip_families: tuple[IPFamily, ...] = ("IPv4",)
    #: ``spec.ipFamilyPolicy``: SingleStack, PreferDualStack or RequireDualStack.
    ip_family_policy: IPFamilyPolicy = "SingleStack"

    @property
    def protocols(self) -> tuple[Protocol, ...]:
        """The distinct protocols of the ports, in a stable order."""
        return tuple(sorted({p.protocol for p in self.ports}))

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)


@dataclass(frozen=True)
class Ingress:
    """One entry of ``status.loadBalancer.ingress``."""

    ip: str | None = None
    hostname: str | None = None

    def to_k8s(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.ip:
            out["ip"] = self.ip
        if self.hostname:
            out["hostname"] = self.hostname
        return out


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    #: Take a *predecessor* (a resource the upstream cloud controller made for the same Service of
    #: this cluster) into lbprov's ownership in place: apply adds lbprov's ownership tags, keeping
    #: the resource and its address; UPDATE changes that follow fix only what differs.
    ADOPT = "adopt"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "adopt": "<="}[self.value]


@dataclass(frozen=True)
class Change:
    """One resource-level change of a plan.

    ``before``/``after`` are JSON-able descriptions of the resource's managed fields (``before`` is
    ``None`` for a create, ``after`` is ``None`` for a delete). ``cloud_id`` is the provider's handle
    on the existing resource (ARN, selfLink, resource ID) and ``data`` carries what ``apply`` needs
    beyond the diff; neither is shown in the text rendering.
    """

    action: Action
    kind: str
    name: str
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    cloud_id: str | None = None
    reason: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def diff(self) -> dict[str, tuple[Any, Any]]:
        """Field-level differences: ``{field: (before, after)}`` for fields that differ."""
        before = dict(self.before or {})
        after = dict(self.after or {})
        out: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                out[key] = (before.get(key), after.get(key))
        return out


@dataclass(frozen=True)
class Plan:
    """What a provider would do for one Service: an ordered tuple of changes.

    ``ingress`` is what the Service's status would show after the plan is applied, when the
    provider can tell without writing (an existing load balancer); ``apply`` returns the real one.
    ``intent`` is ``None`` for a delete plan.
    """

    provider: str
    ref: ServiceRef
    changes: tuple[Change, ...] = ()
    intent: Intent | None = None
    ingress: tuple[Ingress, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    #: "ensure" or "delete"; when unset, a plan without an intent is a delete plan.
    operation: Literal["ensure", "delete"] | None = None

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def is_delete(self) -> bool:
        if self.operation is not None:
            return self.operation == "delete"
        return self.intent is None

    def counts(self) -> dict[str, int]:
        counts = {a.value: 0 for a in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    def summary(self) -> str:
        if self.empty:
            return "no changes"
        c = self.counts()
        text = (
            f"{c['create']} to create, {c['update']} to update, "
            f"{c['replace']} to replace, {c['delete']} to delete"
        )
        if c["adopt"]:
            text = f"{c['adopt']} to adopt, " + text
        return text


@dataclass(frozen=True)
class OwnedLoadBalancer:
    """A load balancer (and its parts) that this cluster owns, as found in the cloud by tags.

    Used by ``lbprov gc`` to find load balancers whose Service is gone.
    """

    provider: str
    ref: ServiceRef
    name: str
    kind: str
    resources: tuple[tuple[str, str], ...] = ()  # (kind, name)
    #: The ``lbprov.io/cluster-id`` the load balancer carries (``None``: it carries none, e.g. it
    #: predates cluster identities). gc deletes only load balancers of the connected cluster's id.
    cluster_id: str | None = None


@dataclass(frozen=True)
class SandboxNode:
    """A node as the provider sandbox created it: use these values for the Kubernetes Node."""

    name: str
    provider_id: str
    internal_ip: str
    zone: str
    #: The node's IPv6 address where the sandbox gives it one (a dual-stack node): a second InternalIP.
    internal_ipv6: str | None = None
