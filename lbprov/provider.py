"""The Provider protocol and the plugin registry.

A provider is a separate distribution that registers a class under the entry-point group
``lbprov.providers`` (``aws = "lbprov_aws:AWSProvider"``). The core finds providers only through
that group, so it never imports a cloud SDK, and a third party can ship ``lbprov-foo`` the same way.

The split follows aws-load-balancer-controller's model builder / deployer: :func:`lbprov.intent.build_intent`
computes the desired state (pure), :meth:`Provider.plan` diffs it against the cloud (reads only) and
:meth:`Provider.apply` performs exactly the writes the plan lists.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from lbprov.cloudcalls import CallStats, CloudCalls, ReadOnlyViolation
from lbprov.model import Change, Ingress, Intent, OwnedLoadBalancer, Plan, SandboxNode, ServiceRef

ENTRY_POINT_GROUP = "lbprov.providers"

__all__ = [
    "ENTRY_POINT_GROUP",
    "CallStats",
    "CloudCalls",
    "ConfigMapFact",
    "NodeSyncPlan",
    "Provider",
    "ProviderNotFound",
    "ReadOnlyViolation",
    "SandboxCloud",
    "apply_nodes",
    "available_providers",
    "cluster_facts",
    "hands_over_rounds",
    "implemented_elsewhere",
    "lazy_exports",
    "load_provider",
    "needs_node_ports",
    "plan_nodes",
    "read_round",
    "served_ip_families",
    "waits_on_shared_writes",
]


class ProviderNotFound(LookupError):
    pass


@dataclass(frozen=True)
class ConfigMapFact:
    """A value a provider needs from the cluster, kept in a ConfigMap (read by the core).

    Providers never talk to Kubernetes; a provider declares, in ``cluster_facts``, which of its
    settings fields comes from which ConfigMap, and the core fills the field before
    ``from_settings`` when the user left it unset. ``keys`` are tried in order (the first present
    wins). When the ConfigMap is missing and the run may write, the core creates it with
    ``create_key`` set to a random 16-hex-digit id, as upstream does for GCP's ``ingress-uid``;
    a read-only run (``lbprov plan``) leaves the field unset instead.
    """

    namespace: str
    name: str
    keys: tuple[str, ...]
    create_key: str | None = None


@dataclass(frozen=True)
class NodeSyncPlan:
    """The node-dependent changes of every Service of one provider at once (see :func:`plan_nodes`).

    Made when the eligible node set changes, from the intents of the Services that the controller
    has applied: the parts of their load balancers that follow the nodes (GCP's zone instance
    groups, Azure's backend pools, AWS's target registrations) are shared or uniform, so one plan
    for all of them writes once per shared resource, where re-planning each Service paid the plan's
    reads and CPU N times for the same few writes.

    ``covered``: the Services whose node-dependent state ``changes`` bring up to date; after
    :func:`apply_nodes`, a fresh per-Service plan of each is empty (as far as the nodes go).
    ``uncovered``: service key -> why the node sync cannot answer for it (a per-Service node filter
    it does not handle, a change that is per Service after all, anything uncertain); the controller
    re-plans each of those as before. Every intent given is in exactly one of the two.
    ``updated``: the covered Services whose load balancer gets new hosts from ``changes`` (they get
    upstream's ``UpdatedLoadBalancer`` event). ``data`` is the provider's own, for its apply.
    """

    provider: str
    changes: tuple[Change, ...] = ()
    covered: frozenset[str] = frozenset()
    uncovered: Mapping[str, str] = field(default_factory=dict)
    updated: frozenset[str] = frozenset()
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> str:
        """``2 to update; 3 Services covered, 1 not``: for the controller's log line."""
        return (
            f"{len(self.changes)} to change; {len(self.covered)} Services covered, {len(self.uncovered)} not"
        )


@dataclass
class SandboxCloud:
    """A running local emulator of one cloud, seeded with instances for the given nodes.

    ``settings`` are the provider settings that point at it (feed them to ``from_settings``);
    ``nodes`` say which providerID, IP and zone each Kubernetes Node must carry. ``add_node``
    creates one more instance (for node-churn tests and benchmarks). ``mutating_requests`` returns
    the mutating requests the emulator has received so far, as seen on the emulator's side: the
    read-only proof of ``lbprov plan`` reads it.
    """

    provider: str
    settings: dict[str, Any]
    nodes: list[SandboxNode]
    endpoint: str
    add_node: Any = None  # Callable[[str], SandboxNode]
    mutating_requests: Any = None  # Callable[[], list[str]]
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Provider(Protocol):
    """What a cloud provider plugin implements. Kubernetes stays out: it sees Intents only."""

    name: ClassVar[str]
    #: pydantic(-settings) model of the provider's settings (env prefix ``LBPROV_``).
    settings_model: ClassVar[type[BaseModel]]
    calls: CloudCalls
    # Optional class attributes (not protocol members, so that providers without them still
    # satisfy ``isinstance(p, Provider)``):
    #   needs_node_ports: ClassVar[bool]: whether the cloud sends traffic to NodePorts. A provider
    #     that does not (GCP's passthrough load balancers keep the service port) sets it False, and
    #     ``allocateLoadBalancerNodePorts: false`` is then accepted. Read with needs_node_ports().
    #   waits_on_shared_writes: ClassVar[bool]: whether a sync waits (in lbprov.slots.released())
    #     on a write another sync sends for it (Azure's coalesced LB and NSG batches). The controller
    #     then runs 3 x workers extra threads for such waits; else none. Read with
    #     waits_on_shared_writes().
    #   ip_families: ClassVar[frozenset[str]]: the IP families ("IPv4", "IPv6") the provider's load
    #     balancers can serve; default IPv4 only. build_intent refuses a Service that asks for a
    #     family outside it (PreferDualStack's secondary family is dropped instead). The provider's
    #     resolve() refuses combinations it cannot serve beyond that. Read with served_ip_families().
    #   cluster_facts: ClassVar[Mapping[str, ConfigMapFact]]: settings fields the core fills from
    #     ConfigMaps in the cluster (see ConfigMapFact). Read with cluster_facts().
    #   plan_nodes(intents) -> NodeSyncPlan | None and apply_nodes(plan) -> Mapping[str, str] | None:
    #     the provider-level node sync. Given the intents (built with the new node set) of every
    #     Service of this provider that the controller has applied, plan the node-dependent changes
    #     of all of them at once (reads only; None: cannot now, so every Service is re-planned), and
    #     apply exactly those changes through the provider's CloudCalls. apply_nodes raises if it
    #     cannot say what was written (every Service is re-planned); when only some writes fail it
    #     returns the covered Services whose writes failed (key -> why): the controller re-plans
    #     those and records no UpdatedLoadBalancer on them. Read with plan_nodes() / apply_nodes().
    #   read_round(*, fresh: bool = False) -> ContextManager: a read round (see read_round() below).
    #   hands_over_rounds: ClassVar[bool]: whether read_round(fresh=True) hands the open round over
    #     to a new one (see read_round() below). Read with hands_over_rounds().
    #   implemented_elsewhere(service) -> str | None (a staticmethod): why a Service without a class
    #     belongs to another controller of this cloud (aws-load-balancer-controller's
    #     `aws-load-balancer-type: external`, ingress-gce's RBS annotation), or None. Such a Service
    #     is skipped without events, as upstream's ImplementedElsewhere. Read with
    #     implemented_elsewhere().

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, read_only: bool = False) -> Provider:
        """Build a provider from settings; ``read_only=True`` for dry runs."""
        ...

    def resolve(self, intent: Intent, annotations: Mapping[str, str]) -> Intent:
        """Validate the provider's annotations (and spec fields it cannot honour).

        Returns the intent with the provider's ``scheme`` and frozen ``options`` model filled in
        (``dataclasses.replace``); raises :class:`lbprov.model.InvalidService` naming the field and
        the accepted values. Pure: makes no cloud call.
        """
        ...

    def plan(self, intent: Intent) -> Plan:
        """Diff the intent against the cloud. Reads only."""
        ...

    def plan_delete(self, ref: ServiceRef) -> Plan:
        """Everything this cluster owns for the Service, found by ownership tags. Reads only."""
        ...

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        """Execute ``plan.changes`` in order and return the Service's ingress."""
        ...

    def list_owned(self) -> list[OwnedLoadBalancer]:
        """Every load balancer this cluster owns, for ``lbprov gc``."""
        ...

    @classmethod
    def sandbox(cls, nodes: Sequence[str]) -> AbstractContextManager[SandboxCloud]:
        """Start a local emulator seeded with one instance per node name."""
        ...


def needs_node_ports(provider: object) -> bool:
    """``provider.needs_node_ports``; True for providers (or classes) that do not say."""
    return bool(getattr(provider, "needs_node_ports", True))


def waits_on_shared_writes(provider: object) -> bool:
    """``provider.waits_on_shared_writes``; False for providers (or classes) that do not say."""
    return bool(getattr(provider, "waits_on_shared_writes", False))


def served_ip_families(provider: object) -> frozenset[str]:
    """``provider.ip_families``; IPv4 only for providers (or classes) that do not say, or none."""
    return frozenset(getattr(provider, "ip_families", None) or {"IPv4"})


def hands_over_rounds(provider: object) -> bool:
    """``provider.hands_over_rounds``; False for providers (or classes) that do not say."""
    return bool(getattr(provider, "hands_over_rounds", False))


def read_round(provider: object, *, fresh: bool = False) -> AbstractContextManager[Any] | None:
    """``provider.read_round()``: a read round, or None for a provider that has none.

    The round protocol. Inside a read round the provider answers the plans made by any thread from
    account-wide listings, each read once (single flight) and kept current with the provider's own
    writes; the round's reads are dropped when it ends, so that its memory goes with it. A round
    opened while another is open reuses it (nesting), unless ``fresh``.

    ``fresh`` (the controller's rollover: a batch's round has grown too old, or a new batch
    begins): a new round, with nothing read, that at once replaces the open round for every read
    made from then on, by the plans in flight as well; the replaced round's exit then leaves the
    new one in place. So the rollover leaves no moment in which a plan sees no round and reads the
    whole account for itself (issue 14: each such plan listed everything once more). Only for a
    provider that declares ``hands_over_rounds``; for the others None, and the caller ends the
    open round before it opens the new one.
    """
    method = getattr(provider, "read_round", None)
    if not callable(method):
        return None
    if not fresh:
        ctx: AbstractContextManager[Any] = method()
        return ctx
    if not hands_over_rounds(provider):
        return None
    ctx = method(fresh=True)
    return ctx


def cluster_facts(provider: object) -> Mapping[str, ConfigMapFact]:
    """``provider.cluster_facts``; empty for providers (or classes) that declare none."""
    facts: Mapping[str, ConfigMapFact] = getattr(provider, "cluster_facts", None) or {}
    return facts


def implemented_elsewhere(provider: object, service: Mapping[str, Any]) -> str | None:
    """Why ``service`` is another controller's to serve, per the provider's optional hook; else None."""
    hook = getattr(provider, "implemented_elsewhere", None)
    if hook is None:
        return None
    reason: str | None = hook(service)
    return reason


def plan_nodes(provider: object, intents: Sequence[Intent]) -> NodeSyncPlan | None:
    """``provider.plan_nodes(intents)``; None for providers without a node sync (or that decline):
    the controller then re-plans every Service, as before the node sync existed."""
    hook = getattr(provider, "plan_nodes", None)
    if hook is None or getattr(provider, "apply_nodes", None) is None:
        return None
    plan: NodeSyncPlan | None = hook(intents)
    return plan


def apply_nodes(provider: object, plan: NodeSyncPlan) -> Mapping[str, str]:
    """``provider.apply_nodes(plan)``: exactly the plan's changes (nothing for an empty plan). The
    covered Services whose writes failed (key -> why), to be re-planned; empty when all went."""
    if plan.empty:
        return {}
    failed: Mapping[str, str] | None = provider.apply_nodes(plan)  # type: ignore[attr-defined]
    return dict(failed or {})


def lazy_exports(
    module: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 ``__getattr__`` and ``__dir__`` for a provider package's public names.

    ``names`` maps a public name to the module defining it, imported on first use: ``lbprov
    --help`` and the settings flags need only a provider's settings module, which must not pay for
    importing its cloud SDK. Use as ``__getattr__, __dir__ = lazy_exports(__name__, {...})``.
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
            setattr(sys.modules[module], name, value)
            return value
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[module]), *names})

    return __getattr__, __dir__


def available_providers() -> dict[str, EntryPoint]:
    """Installed providers by name, from the ``lbprov.providers`` entry points."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_provider(name: str) -> type[Provider]:
    eps = available_providers()
    if name not in eps:
        installed = ", ".join(sorted(eps)) or "none"
        raise ProviderNotFound(
            f"provider {name!r} is not installed (installed: {installed}); "
            f"install the distribution lbprov-{name}"
        )
    cls: type[Provider] = eps[name].load()
    return cls
