"""Intent + options -> the GCP resources one Service needs (pure: the model builder).

Each resource kind is a frozen spec. ``view`` is what the diff compares with the observed resource
(references reduced to names, see :func:`lbprov_gcp.observe.view_of`); ``body`` is the JSON the API
receives. Both derive from the one spec, so they cannot disagree.

An address is reserved for every Service, not only when ``loadBalancerIP`` is set: the TCP and UDP
forwarding rules of one Service must share one IP, and that IP must survive the replacement of a
forwarding rule (a port change), which needs a reserved address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any, ClassVar, Literal, Protocol

from lbprov.model import Intent
from lbprov_gcp import names as N
from lbprov_gcp.options import GCPOptions, Instance
from lbprov_gcp.settings import HEALTH_CHECK_RANGES_IPV6, GCPSettings

Json = dict[str, Any]
Scheme = Literal["EXTERNAL", "INTERNAL"]

KUBE_PROXY_HEALTH_PORT = 10256
HEALTH_PATH = "/healthz"
#: Upstream's timings (REFERENCE.md section 3): interval 8 s, timeout 1 s, healthy 1, unhealthy 3.
HC_TIMING = {"checkIntervalSec": 8, "timeoutSec": 1, "healthyThreshold": 1, "unhealthyThreshold": 3}
MAX_LISTED_PORTS = 5


class Spec(Protocol):
    """What the diff needs of any desired resource."""

    kind: ClassVar[str]  # the Change kind
    collection: ClassVar[str]  # the API collection

    @property
    def name(self) -> str: ...

    @property
    def shared(self) -> bool: ...

    @property
    def view(self) -> Json: ...

    @property
    def body(self) -> Json: ...


@dataclass(frozen=True)
class HealthCheckSpec:
    """A regional HTTP health check (per Service for Local; the cluster's shared one for Cluster)."""

    kind: ClassVar[str] = "health-check"
    collection: ClassVar[str] = "healthChecks"
    name: str
    description: str
    port: int
    path: str
    shared: bool = False

    @property
    def view(self) -> Json:
        return {"type": "HTTP", "port": self.port, "requestPath": self.path, **HC_TIMING}

    @property
    def body(self) -> Json:
        return {
            "name": self.name,
            "description": self.description,
            "type": "HTTP",
            "httpHealthCheck": {"port": self.port, "requestPath": self.path},
            **HC_TIMING,
        }


@dataclass(frozen=True)
class Allowed:
    protocol: str  # "tcp" / "udp"
    ports: tuple[str, ...]


@dataclass(frozen=True)
class FirewallSpec:
    """An INGRESS allow rule on the VPC network towards the node tags."""

    kind: ClassVar[str] = "firewall-rule"
    collection: ClassVar[str] = "firewalls"
    name: str
    description: str
    network: str
    network_link: str
    priority: int
    source_ranges: tuple[str, ...]
    target_tags: tuple[str, ...]
    allowed: tuple[Allowed, ...]
    #: The traffic rule's destination: the load balancer's IP (as upstream); empty for the health checks.
    destination_ranges: tuple[str, ...] = ()
    shared: bool = False

    @property
    def view(self) -> Json:
        return {
            "network": self.network,
            "direction": "INGRESS",
            "priority": self.priority,
            "sourceRanges": sorted(self.source_ranges),
            "destinationRanges": sorted(self.destination_ranges),
            "targetTags": list(self.target_tags),
            "allowed": [{"IPProtocol": a.protocol, "ports": list(a.ports)} for a in self.allowed],
        }

    @property
    def body(self) -> Json:
        body = {"name": self.name, "description": self.description, **self.view, "network": self.network_link}
        if not self.destination_ranges:
            del body["destinationRanges"]
        return body


@dataclass(frozen=True)
class AddressSpec:
    """The Service's regional address (EXTERNAL, or INTERNAL in the subnetwork)."""

    kind: ClassVar[str] = "address"
    collection: ClassVar[str] = "addresses"
    name: str
    description: str
    address_type: Scheme
    address: str | None  # None: any IP the cloud allocates
    network_tier: str | None = None  # EXTERNAL only
    subnetwork: str | None = None  # INTERNAL only
    subnetwork_link: str | None = None
    cluster_id: str | None = None  # as the label lbprov-cluster-id
    shared: bool = False
    #: IPV6: from the dual-stack subnetwork's IPv6 range (external ones too, as a NETLB /96)
    ip_version: Literal["IPV4", "IPV6"] = "IPV4"

    @property
    def view(self) -> Json:
        view: Json = {"addressType": self.address_type}
        if self.address_type == "EXTERNAL":
            view["networkTier"] = self.network_tier
            if self.ip_version == "IPV6":
                view["subnetwork"] = self.subnetwork or ""
        else:
            view["subnetwork"] = self.subnetwork or ""
            view["purpose"] = "SHARED_LOADBALANCER_VIP"
        if self.ip_version == "IPV6":
            view["ipVersion"] = "IPV6"
        view["address"] = self.address
        return view

    @property
    def body(self) -> Json:
        body: Json = {"name": self.name, "description": self.description}
        body.update({k: v for k, v in self.view.items() if v is not None})
        if self.address_type == "INTERNAL" or self.ip_version == "IPV6":
            body["subnetwork"] = self.subnetwork_link
        if self.ip_version == "IPV6" and self.address_type == "EXTERNAL":
            body["ipv6EndpointType"] = "NETLB"
        if self.cluster_id:
            body["labels"] = {N.ID_LABEL: self.cluster_id}
        return body


@dataclass(frozen=True)
class BackendServiceSpec:
    """A regional passthrough backend service over the cluster's instance groups."""

    kind: ClassVar[str] = "backend-service"
    collection: ClassVar[str] = "backendServices"
    name: str
    description: str
    scheme: Scheme
    protocol: str
    affinity: Literal["NONE", "CLIENT_IP"]
    health_check: str
    health_check_link: str
    groups: tuple[tuple[str, str], ...]  # (zone, group name)
    group_links: tuple[str, ...]
    network: str | None = None  # INTERNAL only
    network_link: str | None = None
    shared: bool = False

    @property
    def view(self) -> Json:
        return {
            "loadBalancingScheme": self.scheme,
            "protocol": self.protocol,
            "sessionAffinity": self.affinity,
            "healthCheck": self.health_check,
            "backends": [f"{zone}/{group}" for zone, group in self.groups],
            "network": self.network,
        }

    @property
    def body(self) -> Json:
        body: Json = {
            "name": self.name,
            "description": self.description,
            "loadBalancingScheme": self.scheme,
            "protocol": self.protocol,
            "sessionAffinity": self.affinity,
            "healthChecks": [self.health_check_link],
            "backends": [{"group": link, "balancingMode": "CONNECTION"} for link in self.group_links],
        }
        if self.network_link:
            body["network"] = self.network_link
        return body


@dataclass(frozen=True)
class ForwardingRuleSpec:
    """A regional forwarding rule per protocol; its IP is known only at apply time."""

    kind: ClassVar[str] = "forwarding-rule"
    collection: ClassVar[str] = "forwardingRules"
    name: str
    description: str
    scheme: Scheme
    protocol: str
    ports: tuple[str, ...] | None  # None: allPorts
    backend_service: str
    backend_service_link: str
    network_tier: str | None = None  # EXTERNAL only
    subnetwork: str | None = None  # INTERNAL only
    subnetwork_link: str | None = None
    allow_global_access: bool = False  # INTERNAL only
    cluster_id: str | None = None  # as the label lbprov-cluster-id
    shared: bool = False
    #: IPV6: the rule's IP comes from the dual-stack subnetwork (external ones too)
    ip_version: Literal["IPV4", "IPV6"] = "IPV4"

    @property
    def view(self) -> Json:
        view: Json = {
            "loadBalancingScheme": self.scheme,
            "IPProtocol": self.protocol,
            "ports": list(self.ports) if self.ports is not None else "all",
            "backendService": self.backend_service,
        }
        if self.ip_version == "IPV6":
            view["ipVersion"] = "IPV6"
        if self.scheme == "EXTERNAL":
            view["networkTier"] = self.network_tier
            if self.ip_version == "IPV6":
                view["subnetwork"] = self.subnetwork
        else:
            view["subnetwork"] = self.subnetwork
            view["allowGlobalAccess"] = self.allow_global_access
        return view

    @property
    def body(self) -> Json:
        """The insert body without ``IPAddress`` (apply adds it)."""
        body: Json = {
            "name": self.name,
            "description": self.description,
            "loadBalancingScheme": self.scheme,
            "IPProtocol": self.protocol,
            "backendService": self.backend_service_link,
        }
        if self.ports is None:
            body["allPorts"] = True
        else:
            body["ports"] = list(self.ports)
        if self.ip_version == "IPV6":
            body["ipVersion"] = "IPV6"
        if self.scheme == "EXTERNAL":
            body["networkTier"] = self.network_tier
            if self.ip_version == "IPV6":
                body["subnetwork"] = self.subnetwork_link
        else:
            body["subnetwork"] = self.subnetwork_link
            if self.allow_global_access:
                body["allowGlobalAccess"] = True
        if self.cluster_id:
            body["labels"] = {N.ID_LABEL: self.cluster_id}
        return body


@dataclass(frozen=True)
class Frontend:
    """What one IP family of a Service needs: its IP (address), a forwarding rule per protocol, and
    the traffic firewall to that IP. GCE firewalls and forwarding rules hold one family each, so a
    dual-stack Service has two frontends over the same backend services (as ingress-gce's)."""

    family: str  # "IPv4" / "IPv6"
    scheme: str  # "external" / "internal"
    address: AddressSpec
    forwarding_rules: Mapping[str, ForwardingRuleSpec]  # protocol -> forwarding rule
    firewall: FirewallSpec

    @property
    def ip_suffix(self) -> str:
        """How a forwarding rule is given this family's IP: an external IPv6 rule holds a /96."""
        return "/96" if self.family == "IPv6" and self.scheme == "external" else ""

    @property
    def destination_length(self) -> int:
        """The traffic firewall's destination prefix: the IP (/32, /128), or an external IPv6 rule's /96."""
        if self.family == "IPv4":
            return 32
        return 96 if self.scheme == "external" else 128


@dataclass(frozen=True)
class Desired:
    """Everything one Service wants, in the shape the diff walks."""

    scheme: str
    group_name: str
    instance_groups: Mapping[tuple[str, str], tuple[str, ...]]  # (zone, group) -> instance names
    health_check: HealthCheckSpec
    hc_firewall: FirewallSpec
    backend_services: Mapping[str, BackendServiceSpec]  # protocol -> backend service
    frontends: tuple[Frontend, ...]  # one per IP family, in spec.ipFamilies order
    #: the health-check firewall for Google's IPv6 probers, when a family is IPv6
    hc_firewall_ipv6: FirewallSpec | None = None


def _link(settings: GCPSettings, path: str) -> str:
    return f"projects/{settings.project}/{path}"


GroupKey = tuple[str, str]  # (zone, instance group name)


@dataclass(frozen=True)
class Placement:
    """Which instance group each eligible node serves from, given what the groups hold now."""

    groups: Mapping[GroupKey, tuple[str, ...]]  # group -> the instances it should hold
    conflicts: tuple[tuple[Instance, GroupKey], ...] = ()  # nodes in a group lbprov cannot use


def place_nodes(
    nodes: tuple[Instance, ...],
    group_name: str,
    members: Mapping[GroupKey, Sequence[str]],
    usable: set[GroupKey],
) -> Placement:
    """Put every node in one usable group of its zone, never in a second load-balanced one.

    GCE allows an instance in at most one load-balanced instance group. A node already in a usable
    group (upstream's ``k8s-ig--<clusterID>``, or a group lbprov made for this cluster) stays there;
    a node in no group joins ``group_name`` in its zone; a node in a foreign ``k8s-ig--`` group is a
    conflict, reported by name rather than added to a second group.
    """
    groups: dict[GroupKey, list[str]] = {}
    conflicts: list[tuple[Instance, GroupKey]] = []
    for node in nodes:
        holding = sorted(key for key, names in members.items() if key[0] == node.zone and node.name in names)
        foreign = [key for key in holding if key not in usable]
        if foreign:
            conflicts.append((node, foreign[0]))
            continue
        key = next(iter(sorted(holding, key=lambda k: k[1] != group_name)), (node.zone, group_name))
        groups.setdefault(key, []).append(node.name)
    return Placement({k: tuple(sorted(v)) for k, v in sorted(groups.items())}, tuple(conflicts))


def build_health_check(intent: Intent, settings: GCPSettings, svc_desc: str) -> HealthCheckSpec:
    """Local -> per Service on healthCheckNodePort; Cluster -> the shared kube-proxy check."""
    if intent.health_check is not None:
        return HealthCheckSpec(
            name=N.per_service_names(intent.lb_name)["hc"],
            description=svc_desc,
            port=int(intent.health_check.port or 0),
            path=intent.health_check.path or HEALTH_PATH,
        )
    cluster = intent.cluster
    return HealthCheckSpec(
        name=N.shared_hc_name(cluster),
        description=N.cluster_description(cluster, settings.cluster_id),
        port=KUBE_PROXY_HEALTH_PORT,
        path=HEALTH_PATH,
        shared=True,
    )


def host_tags(instances: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The nodes' network tags as upstream computes them (``computeHostTags``): per instance, the
    longest of its tags that is a prefix of its name. An instance without one is an error naming it."""
    tags: set[str] = set()
    for inst in instances:
        name = str(inst.get("name"))
        longest = max(
            (t for t in (inst.get("tags") or {}).get("items") or [] if name.startswith(t)),
            key=len,
            default="",
        )
        if not longest:
            raise ValueError(
                f"instance {name} has no network tag that is a prefix of its name, so the nodes' tag cannot "
                "be found as upstream finds it; set the GCP setting node_tags (LBPROV_GCP_NODE_TAGS)"
            )
        tags.add(longest)
    return tuple(sorted(tags))


def build_hc_firewall(
    intent: Intent,
    settings: GCPSettings,
    hc: HealthCheckSpec,
    svc_desc: str,
    tags: tuple[str, ...],
    family: str = "IPv4",
    scheme: str = "external",
) -> FirewallSpec:
    """From Google's health-check probers to the check's port; GCE firewalls hold one family each,
    so the IPv6 probers (by scheme; both for the shared check) get their own ``-ipv6`` rule."""
    cluster = intent.cluster
    ranges: tuple[str, ...]
    if family == "IPv6":
        ranges = HEALTH_CHECK_RANGES_IPV6["external"] + HEALTH_CHECK_RANGES_IPV6["internal"]
        if not hc.shared:
            ranges = HEALTH_CHECK_RANGES_IPV6[scheme]
    else:
        ranges = tuple(settings.health_check_source_ranges)
    base = (
        N.shared_hc_firewall_name(cluster)
        if hc.shared
        else N.per_service_names(intent.lb_name)["hc_firewall"]
    )
    return FirewallSpec(
        name=N.family_name(base, family),
        description=N.cluster_description(cluster, settings.cluster_id) if hc.shared else svc_desc,
        network=settings.network,
        network_link=_link(settings, f"global/networks/{settings.network}"),
        priority=settings.firewall_priority,
        source_ranges=tuple(sorted(ranges)),
        allowed=(Allowed("tcp", (str(hc.port),)),),
        target_tags=tags,
        shared=hc.shared,
    )


def family_source_ranges(source_ranges: Sequence[str], family: str) -> tuple[str, ...]:
    """The Service's source ranges of one family. The default (all of IPv4) stands for "everyone",
    so it is ``::/0`` for IPv6; a family the user listed no range of gets none (resolve refuses)."""
    version = 6 if family == "IPv6" else 4
    ranges = tuple(sorted(r for r in source_ranges if ip_network(r, strict=False).version == version))
    if not ranges and tuple(source_ranges) == ("0.0.0.0/0",) and family == "IPv6":
        return ("::/0",)
    return ranges


def build_firewall(
    intent: Intent, settings: GCPSettings, svc_desc: str, tags: tuple[str, ...], family: str = "IPv4"
) -> FirewallSpec:
    """Passthrough keeps the service port, so the traffic rule allows the service ports."""
    allowed = []
    for proto in intent.protocols:
        ports = sorted({p.port for p in intent.ports if p.protocol == proto})
        allowed.append(Allowed(proto.lower(), tuple(str(p) for p in ports)))
    return FirewallSpec(
        name=N.family_name(N.per_service_names(intent.lb_name)["firewall"], family),
        description=svc_desc,
        network=settings.network,
        network_link=_link(settings, f"global/networks/{settings.network}"),
        priority=settings.firewall_priority,
        source_ranges=family_source_ranges(intent.source_ranges, family),
        target_tags=tags,
        allowed=tuple(allowed),
    )


def requested_ip(intent: Intent, family: str) -> str | None:
    """``loadBalancerIP`` belongs to the family of its version."""
    ip = intent.requested_ip
    if ip is None or ip_address(ip).version != (6 if family == "IPv6" else 4):
        return None
    return ip


def build_address(
    intent: Intent, settings: GCPSettings, options: GCPOptions, svc_desc: str, family: str = "IPv4"
) -> AddressSpec:
    """The Service's own address; the diff drops it when loadBalancerIP is a user-reserved address."""
    name = N.family_name(N.per_service_names(intent.lb_name)["address"], family)
    if family == "IPv6":
        subnet = options.subnet if options.scheme == "internal" and options.subnet else settings.subnetwork
        return AddressSpec(
            name,
            svc_desc,
            "EXTERNAL" if options.scheme == "external" else "INTERNAL",
            requested_ip(intent, family),
            network_tier=options.network_tier if options.scheme == "external" else None,
            subnetwork=subnet,
            subnetwork_link=_link(settings, f"regions/{settings.region}/subnetworks/{subnet}"),
            cluster_id=settings.cluster_id,
            ip_version="IPV6",
        )
    if options.scheme == "external":
        return AddressSpec(
            name,
            svc_desc,
            "EXTERNAL",
            requested_ip(intent, family),
            network_tier=options.network_tier,
            cluster_id=settings.cluster_id,
        )
    subnet = options.subnet or settings.subnetwork
    return AddressSpec(
        name,
        svc_desc,
        "INTERNAL",
        requested_ip(intent, family),
        subnetwork=subnet,
        subnetwork_link=_link(settings, f"regions/{settings.region}/subnetworks/{subnet}"),
        cluster_id=settings.cluster_id,
    )


def build_backend_service(
    intent: Intent,
    settings: GCPSettings,
    options: GCPOptions,
    proto: str,
    hc: HealthCheckSpec,
    groups: Mapping[GroupKey, tuple[str, ...]],
    svc_desc: str,
) -> BackendServiceSpec:
    internal = options.scheme == "internal"
    return BackendServiceSpec(
        name=N.rule_name(intent.lb_name, proto),
        description=svc_desc,
        scheme="INTERNAL" if internal else "EXTERNAL",
        protocol=proto,
        affinity="CLIENT_IP" if intent.session_affinity else "NONE",
        health_check=hc.name,
        health_check_link=_link(settings, f"regions/{settings.region}/healthChecks/{hc.name}"),
        groups=tuple(groups),
        group_links=tuple(_link(settings, f"zones/{zone}/instanceGroups/{name}") for zone, name in groups),
        network=settings.network if internal else None,
        network_link=_link(settings, f"global/networks/{settings.network}") if internal else None,
    )


def build_forwarding_rule(
    intent: Intent, settings: GCPSettings, options: GCPOptions, bs: BackendServiceSpec, family: str = "IPv4"
) -> ForwardingRuleSpec:
    """Up to 5 ports are listed, else allPorts (as upstream)."""
    ports = sorted({p.port for p in intent.ports if p.protocol == bs.protocol})
    listed = tuple(str(p) for p in ports) if len(ports) <= MAX_LISTED_PORTS else None
    internal = bs.scheme == "INTERNAL"
    v6 = family == "IPv6"
    subnet = options.subnet or settings.subnetwork
    return ForwardingRuleSpec(
        name=N.family_name(bs.name, family),
        description=bs.description,
        scheme=bs.scheme,
        protocol=bs.protocol,
        ports=listed,
        backend_service=bs.name,
        backend_service_link=_link(settings, f"regions/{settings.region}/backendServices/{bs.name}"),
        network_tier=None if internal else options.network_tier,
        subnetwork=subnet if internal or v6 else None,
        subnetwork_link=_link(settings, f"regions/{settings.region}/subnetworks/{subnet}")
        if internal or v6
        else None,
        allow_global_access=options.allow_global_access,
        cluster_id=settings.cluster_id,
        ip_version="IPV6" if v6 else "IPV4",
    )


def build(
    intent: Intent,
    settings: GCPSettings,
    options: GCPOptions,
    groups: Mapping[GroupKey, tuple[str, ...]],
    tags: tuple[str, ...],
) -> Desired:
    """``tags``: the nodes' network tags (the setting, or found from the instances)."""
    svc_desc = N.service_description(intent, options.scheme, settings.cluster_id)
    hc = build_health_check(intent, settings, svc_desc)
    services: dict[str, BackendServiceSpec] = {
        proto: build_backend_service(intent, settings, options, proto, hc, groups, svc_desc)
        for proto in intent.protocols
    }
    frontends = tuple(
        Frontend(
            family,
            options.scheme,
            build_address(intent, settings, options, svc_desc, family),
            {
                proto: build_forwarding_rule(intent, settings, options, bs, family)
                for proto, bs in services.items()
            },
            build_firewall(intent, settings, svc_desc, tags, family),
        )
        for family in intent.ip_families
    )
    return Desired(
        scheme=options.scheme,
        group_name=N.ig_name(intent.cluster, settings.gce_cluster_id),
        instance_groups=groups,
        health_check=hc,
        hc_firewall=build_hc_firewall(intent, settings, hc, svc_desc, tags),
        backend_services=services,
        frontends=frontends,
        hc_firewall_ipv6=build_hc_firewall(intent, settings, hc, svc_desc, tags, "IPv6", options.scheme)
        if "IPv6" in intent.ip_families
        else None,
    )
