"""AzureProvider: Services on one shared Standard load balancer per cluster and scheme.

Per Service: a Standard static public IP (or the user's, never deleted), a frontend IP
configuration, a probe and a load-balancing rule per port, and NSG allow rules on the cluster NSG.
The backend pool of node IPs is shared by all Services. Everything on the shared LB goes through
:class:`~lbprov_azure.lbwriter.SharedLBWriter` (serialised, If-Match, coalesced).

Ownership: per-Service resources (public IPs) carry the Service's tags; the shared LB carries the
cluster's tags and the map of Services with parts on it; a Service's parts on the LB are recognised
by name (they carry its UID); NSG rules by name and description. Deletion finds everything by these
marks, never by today's annotations.

This module is the facade: it wires the rooms together. :mod:`.options` validates annotations,
:mod:`.desired` builds the wanted resources, :mod:`.observe` reads Azure, :mod:`.diff` plans,
:mod:`.apply` (with :mod:`.lbwriter`) writes, :mod:`.client` and :mod:`.operations` are the SDK seam.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from lbprov.cloudcalls import CloudCalls, RateLimits, RetryPolicy
from lbprov.identity_memo import by_identity
from lbprov.model import Ingress, Intent, OwnedLoadBalancer, Plan, ServiceRef, Target
from lbprov.provider import NodeSyncPlan, SandboxCloud
from lbprov.settings import SettingsError
from lbprov_azure import client as azclient
from lbprov_azure import parts
from lbprov_azure.apply import Applier
from lbprov_azure.desired import node_address
from lbprov_azure.diff import Planner, Priorities
from lbprov_azure.lbwriter import SharedLBWriter
from lbprov_azure.node_sync import NodeSync
from lbprov_azure.observe import Observer, ReadRound
from lbprov_azure.operations import is_write
from lbprov_azure.options_memo import OptionsMemo
from lbprov_azure.placement import CapacityExceeded
from lbprov_azure.reservations import Reservations
from lbprov_azure.settings import AzureSettings

__all__ = ["AzureProvider", "CapacityExceeded"]


log = logging.getLogger(__name__)


class AzureProvider:
    """The Azure provider (see the module doc)."""

    name: ClassVar[str] = "azure"
    #: IPv6 frontends (spec.ipFamilies): a frontend, public IP and backend pool per family.
    ip_families: ClassVar[frozenset[str]] = frozenset({"IPv4", "IPv6"})
    waits_on_shared_writes: ClassVar[bool] = True  # LB / NSG batches (lbprov.slots)
    hands_over_rounds: ClassVar[bool] = True  # read_round(fresh=True) (lbprov.provider.read_round)
    settings_model: ClassVar[type[BaseModel]] = AzureSettings

    def __init__(self, settings: AzureSettings, *, read_only: bool = False) -> None:
        self.settings = settings
        self.calls = CloudCalls(
            "azure",
            is_write=is_write,
            is_retryable=azclient.is_retryable,
            is_throttle=azclient.is_throttle,
            retry_after=azclient.retry_after,
            read_only=read_only,
            retry=RetryPolicy(max_attempts=settings.max_attempts),
            limits=RateLimits(
                reads_per_second=settings.reads_per_second,
                read_burst=250,
                writes_per_second=settings.writes_per_second,
                write_burst=200,
            ),
        )
        self.client, arm = azclient.make_clients(settings, self.calls)
        self.observer = Observer(settings, self.client, self.calls, arm)
        priorities = Priorities(settings.security_group_name)
        #: room held on the load balancers for plans not yet applied (a dry run never applies)
        self.reservations = None if read_only else Reservations()
        self.planner = Planner(settings, self.observer, priorities, self.reservations)
        self.applier = Applier(settings, self.observer, priorities)
        self.node_sync = NodeSync(settings, self.planner, self.applier)
        #: the options of each distinct annotation set (a node sync resolves every Service again)
        self.options = OptionsMemo()
        self.observer.on_lb_read = lambda name, body: self.applier.writer(name).observe(body)

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any] | AzureSettings, *, read_only: bool = False
    ) -> AzureProvider:
        if isinstance(settings, AzureSettings):
            return cls(settings, read_only=read_only)
        try:
            parsed = AzureSettings(**dict(settings))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise SettingsError(f"azure settings: {problems}") from None
        return cls(parsed, read_only=read_only)

    @classmethod
    def sandbox(cls, nodes: Sequence[str]) -> AbstractContextManager[SandboxCloud]:
        from lbprov_azure.sandbox import azure_sandbox

        return azure_sandbox(nodes)

    def writer(self, lb: str) -> SharedLBWriter:
        """The process-wide writer of one shared LB (one per provider instance and LB name)."""
        return self.applier.writer(lb)

    @contextmanager
    def read_round(self, *, fresh: bool = False) -> Iterator[ReadRound]:
        """Share reads between the plans of one reconcile round (see :meth:`Observer.read_round`)."""
        try:
            with self.observer.read_round(fresh=fresh) as rnd:
                yield rnd
        finally:
            parts.forget()  # the round's bodies go with it, not kept by their indexes

    def resolve(self, intent: Intent, annotations: Mapping[str, str]) -> Intent:
        opts = self.options.parse(intent, annotations)
        # Azure keys nodes by their IPv4 address (the primary IP configuration of a NIC is IPv4, and
        # placement records slots in the IPv4 pool): a node whose first InternalIP is IPv6 (an
        # IPv6-primary dual-stack cluster) is taken by its IPv4 one; its IPv6 one is in internal_ips.
        targets = _keyed_targets(intent.targets)
        for t in targets:
            if not t.internal_ip:  # never silently: the pools would just lack the node
                log.warning(
                    "node %s: no IPv4 InternalIP (%s): Azure keys backend pools by a node's IPv4 "
                    "address, so the node is left out of every pool; skipped",
                    t.node_name,
                    ", ".join(t.internal_ips) or "no InternalIP at all",
                )
        return replace(
            intent, scheme="internal" if opts.internal else "external", options=opts, targets=targets
        )

    def plan(self, intent: Intent) -> Plan:
        return self.planner.plan(intent)

    def plan_delete(self, ref: ServiceRef) -> Plan:
        return self.planner.plan_delete(ref)

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        if self.reservations is None:
            return self.applier.apply(plan)
        with self.reservations.applying(plan):  # the plan's hold ends with its apply
            return self.applier.apply(plan)

    def plan_nodes(self, intents: Sequence[Intent]) -> NodeSyncPlan | None:
        """The backend pools of every load balancer for all Services at once (reads only); see
        :mod:`lbprov_azure.node_sync`."""
        return self.node_sync.plan(intents)

    def apply_nodes(self, plan: NodeSyncPlan) -> None:
        self.node_sync.apply(plan)

    def list_owned(self) -> list[OwnedLoadBalancer]:
        return self.observer.owned()


@by_identity
def _keyed_targets(targets: tuple[Target, ...]) -> tuple[Target, ...]:
    """``targets`` keyed by each node's IPv4 address, made once per targets tuple.

    Every Service's intent carries the very same tuple while the nodes do not change
    (:class:`lbprov.intent.NodeTargetsMemo`), and a node sync resolves every Service again:
    a ``dataclasses.replace`` per node per Service was the largest cost of Azure's node sync
    (22,000 calls at 1,000 Services and 22 nodes, about a third of its CPU; issue 14).
    :func:`~lbprov.identity_memo.by_identity` holds the input tuple with the answer; targets are
    frozen."""
    return tuple(replace(t, internal_ip=node_address(t, "IPv4")) if t.internal_ips else t for t in targets)
