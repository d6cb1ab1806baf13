"""What the cloud holds for one Service, read up front so that the diff is a pure function of it.

The observe room's per-Service half: :class:`Observer` makes every read a plan needs, through
:class:`lbprov_gcp.observe.Reader` (batched and cached within a read round), and hands the diff a
frozen :class:`Snapshot`. :func:`lbprov_gcp.diff.planner.plan_changes` then computes the plan from
(desired, snapshot) alone and never reads.

A delete plan observes what the Service owns by its UID in the resources' descriptions, never by
today's annotations (:meth:`Observer.owned_by`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Intent, InvalidService, ServiceRef
from lbprov_gcp import names as N
from lbprov_gcp import predecessor as U
from lbprov_gcp.desired import host_tags, requested_ip
from lbprov_gcp.ipv6_subnet import served_families
from lbprov_gcp.observe import Reader, view_of
from lbprov_gcp.options import GCPOptions, Instance, instances
from lbprov_gcp.settings import GCPSettings

Json = dict[str, Any]
GroupKey = tuple[str, str]  # (zone, instance group name)


@dataclass(frozen=True)
class Predecessor:
    """cloud-provider-gcp's target-pool load balancer for the Service, as far as it is left.

    Read only when something of it shows in the Service's own reads (its forwarding rule ``<lb>``,
    or a firewall ``k8s-fw-<lb>`` / ``k8s-<lb>-http-hc`` that lbprov has not adopted yet), so that a
    Service without one costs no read; lbprov adopts those firewalls last, so a takeover interrupted
    half-way is still seen, and finished, by the next plan.
    """

    forwarding_rule: Json | None
    #: Every target pool of the region: the Service's own, and who else uses the nodes' check.
    target_pools: tuple[Json, ...]
    #: Upstream's HTTP health checks ``<lb>`` and ``k8s-<clusterID>-node``, where they exist.
    http_health_checks: Mapping[str, Json]


@dataclass(frozen=True)
class Snapshot:
    """The observed state a Service's plan is computed from (plain API JSON, by name)."""

    health_checks: Mapping[str, Json] = field(default_factory=dict)
    backend_services: Mapping[str, Json] = field(default_factory=dict)
    forwarding_rules: Mapping[str, Json] = field(default_factory=dict)
    firewalls: Mapping[str, Json] = field(default_factory=dict)
    #: The Service's own address and any address holding the requested IP.
    addresses: tuple[Json, ...] = ()
    #: Every ``k8s-ig--*`` instance group of the region, and the members of the non-empty ones.
    groups: Mapping[GroupKey, Json] = field(default_factory=dict)
    members: Mapping[GroupKey, list[str]] = field(default_factory=dict)
    #: The nodes' network tags (the setting, or found from the instances).
    node_tags: tuple[str, ...] = ()
    #: Forwarding rules holding the requested IP (a requested IP another load balancer holds is refused).
    rules_holding_ip: tuple[Json, ...] = ()
    #: Every regional backend service, read only when the shared health check may lose its last user.
    all_backend_services: tuple[Json, ...] | None = None
    #: cloud-provider-gcp's load balancer for the Service, when one is (still) there.
    predecessor: Predecessor | None = None
    #: When the groups' membership was read (monotonic): apply tells a plan made before another
    #: worker's write to the same group from a later one (one write per zone per node change).
    groups_read_at: float | None = None
    #: The requested IP of each family (``loadBalancerIP`` by its version, or the named reserved
    #: addresses of ``networking.gke.io/load-balancer-ip-addresses``).
    requested_ips: Mapping[str, str] = field(default_factory=dict)


def _uses_shared_check(intent: Intent) -> bool:
    """As :func:`lbprov_gcp.desired.build_health_check`: Cluster Services share the kube-proxy check."""
    return intent.health_check is None


class Observer:
    """Reads what a plan needs; the only part of planning that talks to the cloud."""

    def __init__(self, settings: GCPSettings, reader: Callable[[], Reader]) -> None:
        self.settings = settings
        self.cluster = settings.cluster_name
        self._reader = reader
        self._tags_lock = threading.Lock()
        self._tags: tuple[frozenset[Instance], tuple[str, ...]] | None = None

    @property
    def reader(self) -> Reader:
        return self._reader()

    def for_service(self, intent: Intent, options: GCPOptions) -> tuple[Intent, Snapshot]:
        """The Service's resources by name; the intent with ``load-balancer-ip-addresses`` resolved."""
        r_, lb = self.reader, intent.lb_name
        # loadBalancerIP belongs to its family; named reserved addresses give one IP per family
        requested: dict[str, str] = {f: ip for f in intent.ip_families if (ip := requested_ip(intent, f))}
        if options.address_names:
            requested = self.named_addresses(options.address_names, intent.ip_families)
        # the subnetwork must serve IPv6 (PreferDualStack falls back to IPv4 where it cannot)
        intent = served_families(self.settings, r_, intent, options)
        r_.warm(N.IG_PREFIX)  # in a round, the listings below at the same time
        read_at = time.monotonic()
        groups, listed_at = r_.groups_at(
            N.IG_PREFIX
        )  # every k8s-ig--* group in the region: ours, upstream's, others'
        read_at = min(read_at, listed_at or read_at)  # a round's listing may be older
        members = {key: r_.members(*key) if groups[key].get("size", 1) else [] for key in sorted(groups)}
        rule_names = [N.rule_name(lb, "TCP"), N.rule_name(lb, "UDP")]
        names = N.per_service_names(lb)
        hcs = r_.named("healthChecks", [lb, N.shared_hc_name(self.cluster)])
        bss = r_.named("backendServices", rule_names)
        # ``<lb>`` is upstream's rule (lbprov's are ``<lb>-tcp``/``-udp``, and their ``-ipv6`` twins):
        # read in the same call
        frs = r_.named("forwardingRules", [*N.rule_names(lb), lb])
        addrs = r_.addresses([lb, N.ipv6(lb)], sorted(requested.values()))
        fw_names = [names["firewall"], names["hc_firewall"], N.shared_hc_firewall_name(self.cluster)]
        fw_names += [N.ipv6(n) for n in fw_names]  # each family's firewalls
        gce_id = self.settings.gce_cluster_id
        if gce_id:
            fw_names.append(U.health_check_firewall_name(U.nodes_health_check_name(gce_id)))
        fws = r_.named("firewalls", fw_names)
        held = tuple(r for ip in sorted(set(requested.values())) for r in r_.rules_holding(ip))
        nodes = instances(intent.targets, self.settings.project, self.settings.region)
        tags = tuple(self.settings.node_tags) or self._node_tags(nodes)
        shared = N.shared_hc_name(self.cluster)
        moving_off_shared = (
            not _uses_shared_check(intent)
            and shared in hcs
            and any(view_of("backendServices", b)["healthCheck"] == shared for b in bss.values())
        )
        return intent, Snapshot(
            health_checks=hcs,
            backend_services=bss,
            forwarding_rules=frs,
            firewalls=fws,
            addresses=tuple(addrs),
            groups=groups,
            members=members,
            node_tags=tags,
            rules_holding_ip=held,
            all_backend_services=tuple(r_.all("backendServices")) if moving_off_shared else None,
            predecessor=self._predecessor(intent.ref, frs, fws, rule_read=True),
            groups_read_at=read_at,
            requested_ips=requested,
        )

    def _predecessor(
        self, ref: ServiceRef, frs: Mapping[str, Json], fws: Mapping[str, Json], *, rule_read: bool
    ) -> Predecessor | None:
        """Upstream's target pool and health checks, read only when the Service shows a sign of
        upstream's load balancer (see :class:`Predecessor`). ``rule_read``: ``frs`` holds the answer
        for upstream's rule ``<lb>`` (else it is read when there is a sign)."""
        lb = naming.lb_name(ref.uid)
        names = N.per_service_names(lb)
        not_adopted = [
            fw
            for fw in (fws.get(names["firewall"]), fws.get(names["hc_firewall"]))
            if fw is not None and U.is_services_firewall(fw, ref.key)
        ]
        if lb not in frs and not not_adopted:
            return None
        if not rule_read:
            frs = self.reader.named("forwardingRules", [lb])
        checks = [lb]
        if self.settings.gce_cluster_id:
            checks.append(U.nodes_health_check_name(self.settings.gce_cluster_id))
        return Predecessor(
            forwarding_rule=frs.get(lb),
            target_pools=tuple(self.reader.all("targetPools")),
            http_health_checks=self.reader.named("httpHealthChecks", checks),
        )

    def owned_by(self, ref: ServiceRef) -> Snapshot:
        """Everything this cluster owns for the Service, found by the Service UID in descriptions,
        and the cluster's shared health check and its firewall."""
        r_ = self.reader

        def owned(collection: str) -> dict[str, Json]:
            found = r_.mentioning(collection, ref.uid)
            return {
                i["name"]: i for i in found if N.owned_by_service(i.get("description"), self.cluster, ref.uid)
            }

        frs = owned("forwardingRules")
        bss = owned("backendServices")
        hcs = owned("healthChecks")
        fws = owned("firewalls")
        addrs = owned("addresses")
        shared_hc = N.shared_hc_name(self.cluster)
        shared_fw = N.shared_hc_firewall_name(self.cluster)
        hcs.update(r_.named("healthChecks", [shared_hc]))
        # the shared check's firewall, and (in the same call) upstream's firewalls of the Service,
        # which show that upstream's load balancer is still there (deleted with the Service)
        lb = naming.lb_name(ref.uid)
        upstream = [U.traffic_firewall_name(lb), U.health_check_firewall_name(lb)]
        gce_id = self.settings.gce_cluster_id
        if gce_id:
            upstream.append(U.health_check_firewall_name(U.nodes_health_check_name(gce_id)))
        named_fws = r_.named("firewalls", [shared_fw, N.ipv6(shared_fw), *upstream])
        fws.update({k: v for k, v in named_fws.items() if k not in fws})
        return Snapshot(
            health_checks=hcs,
            backend_services=bss,
            forwarding_rules=frs,
            firewalls=fws,
            addresses=tuple(addrs[name] for name in sorted(addrs)),
            all_backend_services=tuple(r_.all("backendServices")) if shared_hc in hcs else None,
            predecessor=self._predecessor(ref, frs, fws, rule_read=False),
        )

    def named_addresses(self, names: tuple[str, ...], families: tuple[str, ...]) -> dict[str, str]:
        """The IPs, by family, of the reserved addresses named by ``networking.gke.io/load-balancer-ip-addresses``
        (one per IP family, as GKE takes them); the Service's primary family must be among them."""
        where = "metadata.annotations[networking.gke.io/load-balancer-ip-addresses]"
        found = self.reader.named("addresses", names)
        missing = [n for n in names if n not in found]
        if missing:
            raise InvalidService(
                where,
                f"no reserved address {missing[0]!r} in region {self.settings.region}; reserve it first",
            )
        by_family: dict[str, str] = {}
        for name in names:
            family = "IPv6" if found[name].get("ipVersion") == "IPV6" else "IPv4"
            if family in by_family:
                raise InvalidService(where, f"names two {family} addresses; give one per IP family")
            by_family[family] = str(found[name]["address"])
        if families[0] not in by_family:
            raise InvalidService(
                where,
                f"names no {families[0]} address, the Service's primary IP family (spec.ipFamilies {list(families)})",
            )
        return {f: ip for f, ip in by_family.items() if f in families}

    def _node_tags(self, nodes: tuple[Instance, ...]) -> tuple[str, ...]:
        """The nodes' network tags found from their instances, as upstream (``GetNodeTags``): read
        again only when the set of nodes changes."""
        key = frozenset(nodes)
        with self._tags_lock:
            if self._tags is not None and (self._tags[0] == key or not key):
                return self._tags[1]
        if not key:
            raise RuntimeError(
                "no node to find the nodes' network tags from; set the GCP setting node_tags (LBPROV_GCP_NODE_TAGS)"
            )
        zones: dict[str, list[str]] = {}
        for node in nodes:
            zones.setdefault(node.zone, []).append(node.name)
        found = [i for zone, names in sorted(zones.items()) for i in self.reader.instances(zone, names)]
        missing = sorted({n.name for n in nodes} - {str(i.get("name")) for i in found})
        if missing:
            raise RuntimeError(
                f"instance {missing[0]} of a node was not found in project {self.settings.project}"
            )
        tags = host_tags(found)
        with self._tags_lock:
            self._tags = (key, tags)
        return tags
