"""AWSProvider: NLB (default) or classic ELB per Service, over boto3.

plan = one round of reads (observe.py) + a pure diff (diff/planner.py); apply = exactly the plan's
changes (apply/). Every request passes CloudCalls through a botocore hook (client.py).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from lbprov import naming
from lbprov.cloudcalls import CloudCalls, RateLimits, RetryPolicy, Timeouts
from lbprov.model import Action, Ingress, Intent, OwnedLoadBalancer, Plan, ServiceRef
from lbprov.provider import NodeSyncPlan, Provider, SandboxCloud
from lbprov_aws import operations
from lbprov_aws.apply import Executor
from lbprov_aws.client import AWSClients
from lbprov_aws.desired import LB_NAME_TAG
from lbprov_aws.diff import adopt
from lbprov_aws.diff.adopt import keep_kind
from lbprov_aws.diff.nlb_security_groups import uses_groups
from lbprov_aws.diff.node_rules import RuleConfig
from lbprov_aws.diff.planner import Planner
from lbprov_aws.names import (
    elb_backend_security_group_name,
    elb_security_group_name,
    nlb_backend_security_group_name,
)
from lbprov_aws.node_sync import NodeSync
from lbprov_aws.observe import DEEP_CHECK_READS, ClusterContext, Reader, ReadRound, ServiceState
from lbprov_aws.options import AWSOptions, implemented_elsewhere, provider_id_instance, resolve
from lbprov_aws.settings import AWSSettings
from lbprov_aws.sg_index import index_of


class AWSProvider:
    """The lbprov provider for AWS. See DESIGN.md (AWS) and the package README for the annotations."""

    name: ClassVar[str] = "aws"
    settings_model: ClassVar[type[BaseModel]] = AWSSettings
    #: NLB and classic ELB targets are instances: traffic goes to the NodePorts.
    needs_node_ports: ClassVar[bool] = True
    #: IPv4, and IPv4 + IPv6 as a dualstack NLB (resolve() refuses IPv6-only and dual-stack classic).
    ip_families: ClassVar[frozenset[str]] = frozenset({"IPv4", "IPv6"})
    #: read_round(fresh=True) hands the open round over (lbprov.provider.read_round).
    #: False: the controller ends an expired round before it opens the next (its young implicit
    #: round is then taken over, Reader.explicit_round). Handing rounds over (``read_round(fresh=
    #: True)``, still supported) raised the 10,000-Service create peak from 158.5-159.5 MB to
    #: 195-214 MB when create crossed the 120 s round (bench/scale_memory.py, issue 14), while it
    #: saved AWS nothing: the takeover already spared the second listing.
    hands_over_rounds: ClassVar[bool] = False

    def __init__(self, settings: AWSSettings, *, read_only: bool = False) -> None:
        self.settings = settings
        self.cluster = settings.cluster_name
        self.calls = CloudCalls(
            "aws",
            is_write=operations.is_write,
            is_retryable=operations.is_retryable,
            is_throttle=operations.is_throttle,
            retry_after=operations.retry_after,
            read_only=read_only,
            retry=RetryPolicy(
                max_attempts=settings.max_attempts,
                initial_seconds=settings.retry_initial_seconds,
                max_seconds=settings.retry_max_seconds,
            ),
            limits=RateLimits(
                reads_per_second=settings.reads_per_second or None,
                read_burst=settings.read_burst,
                writes_per_second=settings.writes_per_second or None,
                write_burst=settings.write_burst,
            ),
            timeouts=Timeouts(connect=settings.connect_timeout, read=settings.read_timeout),
        )
        self.clients = AWSClients(settings, self.calls)
        self.reader = Reader(self.clients, self.cluster, settings.node_security_group_id)
        lo, hi = settings.port_range()
        self.rules = RuleConfig(
            mode=settings.node_security_group_rules,
            budget=settings.node_security_group_rule_budget,
            lo=lo,
            hi=hi,
        )
        self.planner = Planner(
            self.cluster,
            manage_sg=settings.manage_node_security_group,
            node_sg_id=settings.node_security_group_id,
            rules=self.rules,
            cluster_id=settings.cluster_id,
            nlb_security_groups=settings.nlb_security_groups,
        )
        self._period = -1
        self._period_lock = threading.Lock()
        self.executor = Executor(
            self.clients,
            self.cluster,
            self.rules,
            target_group_facts=lambda: self.reader.target_group_facts(fresh=True),
            load_balancers_using=lambda ids: self.reader.load_balancers_using(ids, fresh=True),
            name_free=self.reader.name_free,
        )

        self.node_sync = NodeSync(settings, self.reader, self.clients, self._resolved)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, read_only: bool = False) -> AWSProvider:
        model = settings if isinstance(settings, AWSSettings) else AWSSettings(**dict(settings))
        return cls(model, read_only=read_only)

    def __repr__(self) -> str:  # never shows credentials
        return f"AWSProvider(cluster={self.cluster!r}, region={self.settings.region!r})"

    # -- the Provider protocol -------------------------------------------------------------------

    @staticmethod
    def implemented_elsewhere(service: Mapping[str, Any]) -> str | None:
        """Why ``service`` belongs to aws-load-balancer-controller, else None (see
        options.implemented_elsewhere): the hook the core needs to skip it without events."""
        return implemented_elsewhere(service)

    def resolve(self, intent: Intent, annotations: Mapping[str, str]) -> Intent:
        return resolve(intent, annotations, self.settings.default_load_balancer_type)

    def _resolved(self, intent: Intent) -> Intent:
        """The intent with AWS's options (the controller's intents are resolved already)."""
        return intent if isinstance(intent.options, AWSOptions) else self.resolve(intent, {})

    def plan_nodes(self, intents: Sequence[Intent]) -> NodeSyncPlan:
        """The node sync (node_sync.py): every NLB Service's target registrations at once."""
        return self.node_sync.plan(intents)

    def apply_nodes(self, plan: NodeSyncPlan) -> dict[str, str]:
        return self.node_sync.apply(plan)

    def plan(self, intent: Intent) -> Plan:
        started = time.monotonic()  # before any read: apply/flights.py tells by it what the plan saw
        with self.reader.shared_round():
            plan = self._plan(intent)
        return dataclasses.replace(plan, data={**plan.data, "planned_at": started})

    def _plan(self, intent: Intent) -> Plan:
        if not isinstance(intent.options, AWSOptions):
            intent = self.resolve(intent, {})
        ids = sorted({i for t in intent.targets if (i := provider_id_instance(t.provider_id))})
        state = self.reader.service_state(
            intent.ref.uid, intent.lb_name, adopt.target_group_prefixes(intent.ref), details=False
        )
        intent = keep_kind(intent, state, self.cluster)
        self._named_nlbs(state, intent.ref, intent.options.name, details=True)
        # With no eligible node (a node-pool rotation) the instances cannot tell the VPC: the load
        # balancer the Service already has can, so it is kept with an empty target set (issue 13).
        vpc_id = self.settings.vpc_id or (None if ids else _vpc_of(state))
        ctx = self.reader.cluster_context(ids, vpc_id=vpc_id)
        if intent.options.kind == "classic" and ctx.vpc_id is None:
            # The VPC's listing (the read round's, kept current by our writes) holds every group of
            # the VPC, tagged or not, so a foreign k8s-elb-<lb> is found in it; only a listing of
            # the cluster-tagged groups (the VPC unknown) needs the group read by name.
            named = self.reader.security_groups_named(elb_security_group_name(intent.lb_name), ctx.vpc_id)
            known = index_of(ctx, self.cluster).by_id
            if new := [sg for sg in named if sg.id not in known]:  # (else the round's index stays)
                ctx.security_groups = [*ctx.security_groups, *new]
        if intent.options.kind != "classic":
            self._count_other_classics(ctx, state, intent.ref.uid, intent.lb_name)
        if not intent.options.subnets and ctx.vpc_id:  # subnet discovery needs these
            ctx.zone_types = self.reader.zone_types()
            if intent.scheme != "internal":
                ctx.route_tables = self.reader.route_tables(ctx.vpc_id)
        # cloud-provider-aws's resources for this Service: shown to the planner as lbprov's.
        predecessors = adopt.prepare(
            state,
            ctx,
            intent.ref,
            intent.lb_name,
            self.cluster,
            self.settings.cluster_id,
            intent=intent,
            manage_sg=self.settings.manage_node_security_group,
        )
        self.reader.details(state, intent.ref.uid)
        self._range_rules(ctx)
        nlb = (
            state.nlb
            if state.nlb and naming.is_owned_by_service(state.nlb.tags, self.cluster, intent.ref.uid)
            else None
        )
        scheme = "internal" if intent.scheme == "internal" else "internet-facing"
        sgo = intent.options.groups
        backend = nlb_backend_security_group_name(self.cluster)
        carries_backend = nlb is not None and any(
            sg.id in nlb.security_groups for sg in index_of(ctx, self.cluster).named(backend)
        )
        if (
            intent.options.kind != "nlb"
            or not (
                uses_groups(nlb, scheme, self.settings.nlb_security_groups, sgo.needs_groups) and sgo.backend
            )
            or (nlb is not None and nlb.security_groups and not carries_backend)
        ):
            own = {intent.lb_name, intent.options.name, *(n.name for n in state.renamed)}
            self._backend_users(ctx, {n for n in own if n})
        out = self.planner.plan(intent, ctx, state, predecessors)
        return Plan("aws", intent.ref, tuple(out.changes), intent, out.ingress, data=out.data)

    def _named_nlbs(self, state: ServiceState, ref: ServiceRef, wanted: str | None, *, details: bool) -> None:
        """NLBs of the Service under another name than the UID-derived one (``load-balancer-name``):
        the name asked for, the names its target groups record, and the load balancers they are
        attached to. Costs nothing for a Service that never had a chosen name."""
        default = naming.lb_name(ref.uid)
        owned_tgs = [
            tg for tg in state.target_groups if naming.is_owned_by_service(tg.tags, self.cluster, ref.uid)
        ]
        names = {wanted} if wanted else set()
        names |= {tg.tags[LB_NAME_TAG] for tg in owned_tgs if tg.tags.get(LB_NAME_TAG)}
        names.discard(default)
        arns = {arn for tg in owned_tgs for arn in tg.lb_arns} - ({state.nlb.arn} if state.nlb else set())
        if not names and not arns:
            return
        for nlb in self.reader.nlbs_named(ref.uid, sorted(names), sorted(arns), details=details):
            if naming.is_owned_by_service(nlb.tags, self.cluster, ref.uid):
                state.renamed.append(nlb)
            elif nlb.name == wanted:
                state.foreign_named = nlb

    def _count_other_classics(self, ctx: ClusterContext, state: ServiceState, uid: str, lb_name: str) -> None:
        """Where the cluster's shared classic backend group exists: how many classic ELBs other than
        this Service's use it. At 0 any plan deletes it (identity permitting), so a crash right
        after the last classic ELB's delete cannot leave it for good."""
        backend_name = elb_backend_security_group_name(self.cluster)
        backends = {sg.id for sg in index_of(ctx, self.cluster).named(backend_name)}
        if backends:
            ctx.other_classic_elbs = len(self.reader.classics_using(backends) - {lb_name})

    def _backend_users(self, ctx: ClusterContext, own: set[str]) -> None:
        """For a plan that does not use the cluster's NLB backend group: where that group exists
        (ours, of this identity), which load balancers other than the Service's carry it (at none
        the plan releases it: diff/nlb_security_groups.py). With the VPC unknown (a delete whose
        load balancer and target groups are gone), the group's own VPC is read for the node rules.
        ``own``: the names of the Service's own load balancers (the UID-derived one, a chosen
        ``load-balancer-name``, older names), which do not count as users."""
        name = nlb_backend_security_group_name(self.cluster)
        ours = [
            sg
            for sg in index_of(ctx, self.cluster).named(name)
            if naming.is_owned_by_cluster(sg.tags, self.cluster)
            and naming.identity_matches(sg.tags, self.settings.cluster_id)
        ]
        if not ours:
            return
        if ctx.vpc_id is None:
            known = {sg.id for sg in ctx.security_groups}
            more = self.reader.security_groups(ours[0].vpc_id)
            ctx.security_groups = [*ctx.security_groups, *(sg for sg in more if sg.id not in known)]
        ctx.backend_users = self.reader.load_balancers_using({sg.id for sg in ours}) - own

    def _range_rules(self, ctx: ClusterContext) -> None:
        """Who wants the shared rules is told by the cluster's target groups: read them where a
        whole-NodePort-range rule or the kube-proxy rule exists, and (with a cluster identity)
        wherever lbprov rules exist, to sweep orphaned ones (diff/node_rules.orphan_points)."""
        if not self.settings.manage_node_security_group:
            return
        index = index_of(ctx, self.cluster)  # (the groups' rules are parsed once per listing)
        for ours, _ in index.rules.values():
            ctx.ranged_keys |= {r.key for r in ours if self.rules.is_range(r)}
        sweep = bool(index.rules) and bool(self.settings.cluster_id)
        if sweep or ctx.ranged_keys or index.kube_proxy:
            ctx.target_group_facts = self.reader.target_group_facts()

    def plan_delete(self, ref: ServiceRef) -> Plan:
        """Finds everything by the Service UID's name and ownership tags, whatever the annotations say."""
        with self.reader.shared_round():
            return self._plan_delete(ref)

    def _plan_delete(self, ref: ServiceRef) -> Plan:
        state = self.reader.service_state(
            ref.uid, naming.lb_name(ref.uid), adopt.target_group_prefixes(ref), details=False
        )
        self._named_nlbs(state, ref, None, details=False)
        for nlb in [state.nlb, *state.renamed]:
            if nlb is not None and naming.is_owned_by_service(nlb.tags, self.cluster, ref.uid):
                nlb.attributes = self.reader.nlb_attributes(nlb.arn)  # deletion protection
        ctx = self.reader.cluster_context([], vpc_id=self.settings.vpc_id or _vpc_of(state), need_vpc=False)
        # What cloud-provider-aws made for the Service goes too (it was never adopted).
        predecessors = adopt.prepare(
            state, ctx, ref, naming.lb_name(ref.uid), self.cluster, self.settings.cluster_id, intent=None
        )
        self._count_other_classics(ctx, state, ref.uid, naming.lb_name(ref.uid))
        self._range_rules(ctx)
        own = {naming.lb_name(ref.uid), *(n.name for n in [state.nlb, *state.renamed] if n is not None)}
        self._backend_users(ctx, own)
        out = self.planner.plan_delete(ref, ctx, state, predecessors)
        return Plan("aws", ref, tuple(out.changes), None, (), data=out.data)

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        try:
            return self.executor.apply(plan)
        finally:
            if self.reader.round is not None and plan.changes:
                self.reader.round.invalidate(
                    plan.ref.uid,
                    target_groups=_changes_target_groups(plan),
                    security_groups=_may_change_security_groups(plan),
                )

    def list_owned(self) -> list[OwnedLoadBalancer]:
        nlbs, classics, tgs = self.reader.all_owned()
        by_uid: dict[str, dict[str, Any]] = defaultdict(lambda: {"lbs": [], "tgs": [], "tags": {}})
        for lb in nlbs:
            entry = by_uid[lb.tags.get(naming.SERVICE_UID_TAG, "")]
            entry["lbs"].append(("nlb", lb.name))
            entry["tags"] = lb.tags
        for clb in classics:
            entry = by_uid[clb.tags.get(naming.SERVICE_UID_TAG, "")]
            entry["lbs"].append(("classic", clb.name))
            entry["tags"] = clb.tags
        for tg in tgs:
            entry = by_uid[tg.tags.get(naming.SERVICE_UID_TAG, "")]
            entry["tgs"].append(tg.name)
            entry["tags"] = entry["tags"] or tg.tags
        out: list[OwnedLoadBalancer] = []
        for uid, entry in sorted(by_uid.items()):
            ns, _, name = entry["tags"].get(naming.SERVICE_NAME_TAG, "/").partition("/")
            ref = ServiceRef(ns, name, uid)
            kind, lb_name = (
                entry["lbs"][0]
                if entry["lbs"]
                else (entry["tags"].get(naming.LB_KIND_TAG, "nlb"), naming.lb_name(uid) if uid else "")
            )
            resources = tuple(("load-balancer", n) for _, n in entry["lbs"]) + tuple(
                ("target-group", n) for n in sorted(entry["tgs"])
            )
            out.append(
                OwnedLoadBalancer(
                    "aws", ref, lb_name, kind, resources, cluster_id=entry["tags"].get(naming.CLUSTER_ID_TAG)
                )
            )
        return out

    # -- read rounds -----------------------------------------------------------------------------

    @contextmanager
    def read_round(self, *, fresh: bool = False) -> Iterator[ReadRound]:
        """Cache account-wide listings (load balancers, target groups, tags, subnets, security
        groups) for the plans made inside the block. Use it around a resync::

            with provider.read_round():
                for intent in intents:
                    plan = provider.plan(intent)
                    if not plan.empty:
                        provider.apply(plan)

        A Service whose plan was applied is re-read directly afterwards, so later plans see fresh
        state. Nesting reuses the outer round; ``fresh`` hands it over to a new one
        (observe.py ``Reader.explicit_round``).

        Details (listeners, attributes, registered targets) are planned from what was remembered
        of them (observe.py ``_details``), except for the Services due for a deep check when the
        controller marks the round as its periodic resync (``ReadRound.drift_check``): each
        Service is due once every :attr:`drift_check_periods` resyncs.
        """
        with self.reader.explicit_round(
            periods=self._next_period, k=self.drift_check_periods, fresh=fresh
        ) as rnd:
            yield rnd

    @property
    def drift_check_periods(self) -> int:
        """K: every Service is deep-checked once every K resyncs, so that a resync costs about
        ``resync_read_budget`` reads per one-port Service (a deep check: 4 reads; see settings)."""
        return max(1, math.ceil(DEEP_CHECK_READS / self.settings.resync_read_budget))

    def _next_period(self) -> int:
        with self._period_lock:
            self._period += 1
            return self._period

    # -- sandbox ---------------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def sandbox(cls, nodes: Sequence[str], *, cluster: str = "sandbox") -> Iterator[SandboxCloud]:
        """A moto server on 127.0.0.1 (ephemeral port) seeded with a cluster VPC and one instance per node."""
        from lbprov_aws.sandbox import MotoSandbox

        box = MotoSandbox()
        try:
            yield box.seed(nodes, cluster=cluster)
        finally:
            box.stop()


def _vpc_of(state: ServiceState) -> str | None:
    """The VPC of what a Service left (its node rules are in that VPC's security groups)."""
    found = [x.vpc_id for x in (state.nlb, state.classic, *state.target_groups) if x is not None and x.vpc_id]
    return found[0] if found else None


#: Change types (``Change.data["type"]``) that never write a security group or its rules.
_NO_SECURITY_GROUP_WRITES = frozenset({"tg", "nlb", "listener"})


def _may_change_security_groups(plan: Plan) -> bool:
    """Whether a plan may write security groups (then the round's listing of them is read again):
    a new node only registers targets, and must not cost every later plan a security group read."""
    return any(c.data.get("type") not in _NO_SECURITY_GROUP_WRITES for c in plan.changes)


def _changes_target_groups(plan: Plan) -> bool:
    """Whether a plan creates, deletes or re-tags target groups (what the read round's listing of
    them, used to tell who wants a NodePort range rule, must see): a new node only registers targets."""
    for c in plan.changes:
        if c.kind != "target-group":
            continue
        if c.action is not Action.UPDATE or (c.before or {}).get("tags") != (c.after or {}).get("tags"):
            return True
    return False


if TYPE_CHECKING:  # mypy checks that AWSProvider implements the Provider protocol
    _conforms: type[Provider] = AWSProvider
