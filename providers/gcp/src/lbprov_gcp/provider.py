"""GCPProvider: a backend-service-based passthrough network load balancer per Service.

The facade wires the rooms together: :mod:`~lbprov_gcp.options` (annotations), :mod:`~lbprov_gcp.desired`
(the model builder), :mod:`~lbprov_gcp.observe` (reads, batched within a read round),
:mod:`~lbprov_gcp.diff` (the planner), :mod:`~lbprov_gcp.apply` (the deployer) and
:mod:`~lbprov_gcp.client` (the SDK behind CloudCalls).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from pydantic import BaseModel

from lbprov.cloudcalls import CloudCalls, RateLimits, RetryPolicy
from lbprov.model import (
    Ingress,
    Intent,
    InvalidService,
    OwnedLoadBalancer,
    Plan,
    SandboxNode,
    ServiceRef,
)
from lbprov.provider import ConfigMapFact, NodeSyncPlan, SandboxCloud
from lbprov_gcp import options
from lbprov_gcp.apply import Applier
from lbprov_gcp.client import Compute, is_retryable, is_throttle, retry_after
from lbprov_gcp.diff import Planner
from lbprov_gcp.node_sync import NodeSync
from lbprov_gcp.observe import Reader, ReadRound, owned_load_balancers
from lbprov_gcp.operations import is_write
from lbprov_gcp.options import instances, parse_options, validate_ipv6, validate_source_ranges
from lbprov_gcp.settings import GCPSettings
from lbprov_gcp.snapshot import Observer

PROVIDER = "gcp"


class GCPProvider:
    """lbprov provider for Google Cloud (google-cloud-compute)."""

    name: ClassVar[str] = PROVIDER
    settings_model: ClassVar[type[BaseModel]] = GCPSettings
    #: Passthrough load balancers keep the service port: traffic never goes to a NodePort, so
    #: ``allocateLoadBalancerNodePorts: false`` works.
    needs_node_ports: ClassVar[bool] = False
    #: read_round(fresh=True) hands the open round over (lbprov.provider.read_round).
    hands_over_rounds: ClassVar[bool] = True
    #: IPv6 forwarding rules from a dual-stack subnetwork; dual-stack = one rule per family and
    #: protocol over the same backend services (DESIGN.md "IP families").
    ip_families: ClassVar[frozenset[str]] = frozenset({"IPv4", "IPv6"})
    #: Upstream's cluster ID, as upstream finds it (gce_clusterid.go): the ``provider-uid`` key of
    #: ConfigMap ``kube-system/ingress-uid``, else its ``uid`` key; created when missing.
    cluster_facts: ClassVar[Mapping[str, ConfigMapFact]] = {
        "gce_cluster_id": ConfigMapFact(
            "kube-system", "ingress-uid", keys=("provider-uid", "uid"), create_key="uid"
        )
    }

    @staticmethod
    def implemented_elsewhere(service: Mapping[str, Any]) -> str | None:
        """Services ingress-gce's L4 controller serves (``cloud.google.com/l4-rbs: enabled``)."""
        return options.implemented_elsewhere(service)

    def __init__(
        self, settings: GCPSettings, *, read_only: bool = False, compute: Compute | None = None
    ) -> None:
        self.settings = settings
        self.cluster = settings.cluster_name
        self.calls = CloudCalls(
            PROVIDER,
            is_write=is_write,
            is_retryable=is_retryable,
            is_throttle=is_throttle,
            retry_after=retry_after,
            read_only=read_only,
            retry=RetryPolicy(
                max_attempts=settings.retry_attempts, initial_seconds=settings.retry_initial_seconds
            ),
            limits=RateLimits(
                reads_per_second=settings.reads_per_second or None,
                read_burst=max(1, int(settings.reads_per_second * 2)),
                writes_per_second=settings.writes_per_second or None,
                write_burst=max(1, int(settings.writes_per_second * 4)),
            ),
        )
        self._compute = compute
        self._reader: Reader | None = None
        self._init_lock = threading.Lock()
        self.observer = Observer(settings, lambda: self.reader)
        self.planner = Planner(PROVIDER, settings)
        self.applier = Applier(self.cluster, lambda: self.compute, lambda: self.reader)
        self.node_sync = NodeSync(settings, self.planner, self.applier, lambda: self.reader)

    @property
    def compute(self) -> Compute:
        # Built on first use, so that constructing a provider (and validating Services) needs no
        # credentials and makes no call.
        with self._init_lock:
            if self._compute is None:
                self._compute = Compute(self.settings, self.calls)
            return self._compute

    @property
    def reader(self) -> Reader:
        compute = self.compute
        with self._init_lock:
            if self._reader is None:
                self._reader = Reader(compute)
            return self._reader

    @contextmanager
    def read_round(self, *, fresh: bool = False) -> Iterator[ReadRound]:
        """List each collection once for all the plans made inside the block (a resync)::

            with provider.read_round():
                for intent in intents:
                    plan = provider.plan(intent)
                    if not plan.empty:
                        provider.apply(plan)

        What an apply writes is dropped from the round, so later plans read it afresh. Nesting
        reuses the outer round; ``fresh`` hands it over to a new one (:meth:`Reader.read_round`).
        """
        with self.reader.read_round(fresh=fresh) as rnd:
            yield rnd

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, read_only: bool = False) -> GCPProvider:
        model = settings if isinstance(settings, GCPSettings) else GCPSettings(**dict(settings))
        return cls(model, read_only=read_only)

    # -- validation (pure) ------------------------------------------------------------------------

    def resolve(self, intent: Intent, annotations: Mapping[str, str]) -> Intent:
        options = parse_options(annotations)
        validate_source_ranges(intent.source_ranges, intent.ip_families)
        if options.scheme == "internal" and not (options.subnet or self.settings.subnetwork):
            raise InvalidService(
                f"metadata.annotations[{'networking.gke.io/load-balancer-type'}]",
                "an internal load balancer needs the GCP setting 'subnetwork' (LBPROV_GCP_SUBNETWORK) or the "
                "annotation networking.gke.io/internal-load-balancer-subnet; accepted values without them: "
                "leave the annotation out (external)",
            )
        if intent.targets and not instances(intent.targets, self.settings.project, self.settings.region):
            raise InvalidService(
                "nodes",
                f"no node has a providerID gce://{self.settings.project}/<zone in {self.settings.region}>/<name>",
            )
        if "IPv6" in intent.ip_families:
            validate_ipv6(intent, options, self.settings)
        return dataclasses.replace(intent, scheme=options.scheme, options=options)

    # -- plan and apply ---------------------------------------------------------------------------

    def plan(self, intent: Intent) -> Plan:
        """Observe (every read), then diff the desired state against the snapshot (pure)."""
        intent, seen = self.observer.for_service(intent, self.planner.options(intent))
        return self.planner.plan(intent, seen)

    def plan_delete(self, ref: ServiceRef) -> Plan:
        """Everything this cluster owns for the Service, found by the Service UID in descriptions,
        diffed against the empty desired state."""
        return self.planner.plan_delete(ref, self.observer.owned_by(ref))

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        return self.applier.run(plan)

    # -- node sync (lbprov.provider.plan_nodes) ------------------------------------------------------

    def plan_nodes(self, intents: Sequence[Intent]) -> NodeSyncPlan | None:
        """The zone instance groups' membership for every Service at once (reads only); see
        :mod:`lbprov_gcp.node_sync`."""
        return self.node_sync.plan(intents)

    def apply_nodes(self, plan: NodeSyncPlan) -> None:
        self.node_sync.apply(plan)

    # -- gc -----------------------------------------------------------------------------------------

    def list_owned(self) -> list[OwnedLoadBalancer]:
        return owned_load_balancers(self.reader, self.cluster, PROVIDER)

    # -- sandbox ------------------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def sandbox(cls, nodes: Sequence[str]) -> Iterator[SandboxCloud]:
        """Start the local Compute emulator seeded with a network, a subnetwork and the nodes."""
        from lbprov_gcp.sandbox import start_sandbox

        with start_sandbox(nodes) as cloud:
            settings = {
                "project": cloud.project,
                "region": cloud.region,
                "network": cloud.network,
                "subnetwork": cloud.subnetwork,
                "node_tags": [cloud.node_tag],
                "api_endpoint": cloud.server.url,
                "cluster_name": cloud.cluster,
            }

            def add_node(name: str) -> SandboxNode:
                return cloud.add_node(name)

            mutating: Callable[[], list[str]] = cloud.server.mutating_requests
            yield SandboxCloud(
                provider=PROVIDER,
                settings=settings,
                nodes=list(cloud.nodes),
                endpoint=cloud.server.url,
                add_node=add_node,
                mutating_requests=mutating,
                extra={"server": cloud.server, "emulator": cloud.server.emulator, "seeded": cloud},
            )
