"""AzureProvider: Services on one shared Standard load balancer per cluster and scheme.

Per Service: a Standard static public IP (or the user's, never deleted), a frontend IP
configuration, a probe and a load-balancing rule per port, and NSG allow rules on the cluster NSG.
The backend pool of node IPs is shared by all Services. Everything on the shared LB goes through
:class:`~lbprov_azure.lbwriter.SharedLBWriter` (serialised, If-Match, coalesced).

Ownership: per-Service resources (public IPs) carry the Service's tags; the shared LB carries the
cluster's tags and the map of Services with parts on it; a Service's parts on the LB are recognised
by name (they carry its UID); NSG rules by name and description. Deletion finds everything by these
marks, never by today's annotations.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from pydantic import ValidationError

from lbprov import naming
from lbprov.cloudcalls import CloudCalls, RateLimits, RetryPolicy
from lbprov.model import (
    Action,
    Change,
    Ingress,
    Intent,
    InvalidService,
    OwnedLoadBalancer,
    OwnershipConflict,
    Plan,
    ServiceRef,
)
from lbprov.provider import SandboxCloud
from lbprov.settings import SettingsError
from lbprov_azure import client as azclient
from lbprov_azure import names
from lbprov_azure.desired import (
    FRONTEND_ADDRESS,
    LB_FIELDS,
    VIEWS,
    Ids,
    build_desired,
    ref_id,
    view_nsg_rule,
    view_pip,
)
from lbprov_azure.lbwriter import Announcement, LBDelta, PreconditionFailed, SharedLBWriter, WriteRejected
from lbprov_azure.operations import is_write
from lbprov_azure.options import AzureOptions, parse_options
from lbprov_azure.settings import AzureSettings

JSON = dict[str, Any]
T = TypeVar("T")
MAX_RULES_PER_LB = 250
NSG_PRIORITY_MIN = 500
NSG_PRIORITY_MAX = 4096
_RESERVATION_SECONDS = 120.0
_ORDER = {
    "load-balancer": 0,
    "lb-service-tag": 1,
    "backend-pool": 2,
    "frontend-ip-configuration": 3,
    "probe": 4,
    "load-balancing-rule": 5,
}


def _items(lb: JSON | None, fld: str) -> list[JSON]:
    return list(((lb or {}).get("properties") or {}).get(fld) or [])


def _find(items: list[JSON], name: str) -> JSON | None:
    return next((i for i in items if str(i.get("name", "")).lower() == name.lower()), None)


class CapacityExceeded(RuntimeError):
    """The shared load balancer cannot take the Service (Azure: at most 250 rules per LB)."""


@dataclass
class ReadRound:
    """Reads shared by the plans of one reconcile round (see :meth:`AzureProvider.read_round`)."""

    lbs: dict[str, JSON | None] = field(default_factory=dict)
    nsg: JSON | None = None
    pips: dict[str, dict[str, JSON]] = field(default_factory=dict)  # rg lower -> name lower -> body
    lock: threading.Lock = field(default_factory=threading.Lock)


def _with_frontend(rule: JSON, address: str | None) -> tuple[JSON, bool]:
    """``rule`` with the frontend placeholder filled in; True when it must wait for apply."""
    props = rule.get("properties") or {}
    if props.get("destinationAddressPrefix") != FRONTEND_ADDRESS:
        return rule, False
    if address is None:
        return rule, True
    return {**rule, "properties": {**props, "destinationAddressPrefix": address}}, False


def _or_none(fn: Callable[[], Any]) -> JSON | None:
    """A GET's body as JSON, or None on 404 (inside the retried call, so a miss is not an error)."""
    try:
        return dict(fn().as_dict())
    except ResourceNotFoundError:
        return None


class _Store:
    """Adapts one load balancer's SDK calls to :class:`~lbprov_azure.lbwriter.LBStore`."""

    def __init__(self, provider: AzureProvider, name: str) -> None:
        self.p = provider
        self.name = name

    def get(self) -> JSON | None:
        return self.p._get_lb(self.name)

    def put(self, body: JSON, *, etag: str | None) -> JSON:
        headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}
        rg = self.p.settings.resource_group
        lbs = self.p.client.load_balancers
        try:
            return self.p._call(
                "loadBalancers.create_or_update",
                lambda: (
                    lbs.begin_create_or_update(
                        rg,
                        self.name,
                        body,  # type: ignore[call-overload]  # REST JSON is accepted (types.LoadBalancer)
                        headers=headers,
                    )
                    .result()
                    .as_dict()
                ),
            )
        except HttpResponseError as exc:
            raise self._translate(exc) from exc

    def delete(self, *, etag: str) -> None:
        rg = self.p.settings.resource_group
        lbs = self.p.client.load_balancers
        try:
            self.p._call(
                "loadBalancers.delete",
                lambda: lbs.begin_delete(rg, self.name, headers={"If-Match": etag}).result(),
            )
        except HttpResponseError as exc:
            raise self._translate(exc) from exc

    @staticmethod
    def _translate(exc: HttpResponseError) -> BaseException:
        if exc.status_code == 412:
            return PreconditionFailed(str(exc))
        if exc.status_code == 400:
            return WriteRejected(str(exc))
        return exc


class AzureProvider:
    """The Azure provider (see the module doc)."""

    name: ClassVar[str] = "azure"
    settings_model: ClassVar[type[AzureSettings]] = AzureSettings

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
        self.client = azclient.make_client(settings, self.calls)
        self.ids = Ids(settings.subscription_id)
        self._writers: dict[str, SharedLBWriter] = {}
        self._lock = threading.Lock()
        self._reserved: dict[int, tuple[str, float]] = {}  # NSG priority -> (rule name, when)
        self._round: ReadRound | None = None

    # -- construction -----------------------------------------------------------------------------

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
        with self._lock:
            w = self._writers.get(lb)
            if w is None:
                w = SharedLBWriter(
                    _Store(self, lb),
                    self.settings.cluster_name,
                    lb,
                    window=self.settings.coalesce_window_seconds,
                    max_wait=self.settings.coalesce_max_wait_seconds,
                )
                self._writers[lb] = w
            return w

    # -- SDK calls (every one through CloudCalls) -------------------------------------------------

    def _call(self, op: str, fn: Callable[[], T]) -> T:
        return self.calls.call(op, fn, hooked=True)

    def _get_lb(self, name: str) -> JSON | None:
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                if name in rnd.lbs:
                    return copy.deepcopy(rnd.lbs[name])
        rg = self.settings.resource_group
        body = self._call(
            "loadBalancers.get", lambda: _or_none(lambda: self.client.load_balancers.get(rg, name))
        )
        self.writer(name).observe(body)
        if rnd is not None:
            with rnd.lock:
                rnd.lbs[name] = copy.deepcopy(body)
        return body

    def _get_pip(self, rg: str, name: str) -> JSON | None:
        rnd = self._round
        if rnd is not None:  # one listing of the resource group serves every Service of the round
            return next(
                (p for p in self._list_pips(rg) if str(p.get("name", "")).lower() == name.lower()), None
            )
        return self._call(
            "publicIPAddresses.get", lambda: _or_none(lambda: self.client.public_ip_addresses.get(rg, name))
        )

    def _list_pips(self, rg: str) -> list[JSON]:
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                if rg.lower() in rnd.pips:
                    return copy.deepcopy(list(rnd.pips[rg.lower()].values()))
        pips = self._call(
            "publicIPAddresses.list", lambda: [p.as_dict() for p in self.client.public_ip_addresses.list(rg)]
        )
        if rnd is not None:
            with rnd.lock:
                rnd.pips[rg.lower()] = {str(p.get("name", "")).lower(): copy.deepcopy(p) for p in pips}
        return pips

    def _list_lbs(self) -> list[JSON]:
        rg = self.settings.resource_group
        return self._call(
            "loadBalancers.list", lambda: [p.as_dict() for p in self.client.load_balancers.list(rg)]
        )

    def _get_nsg(self, *, fresh: bool = False) -> JSON | None:
        name = self.settings.security_group_name
        if not name:
            return None
        rnd = self._round
        if rnd is not None and not fresh:
            with rnd.lock:
                if rnd.nsg is not None:
                    return copy.deepcopy(rnd.nsg)
        rg = self.settings.resource_group
        nsg = self._call(
            "networkSecurityGroups.get",
            lambda: _or_none(lambda: self.client.network_security_groups.get(rg, name)),
        )
        if nsg is None:
            raise RuntimeError(
                f"cluster network security group {name!r} not found in resource group {rg!r} "
                "(setting security_group_name)"
            )
        if rnd is not None:
            with rnd.lock:
                rnd.nsg = copy.deepcopy(nsg)
        return nsg

    # -- read rounds ------------------------------------------------------------------------------

    @contextmanager
    def read_round(self) -> Iterator[ReadRound]:
        """Share reads between the plans of one reconcile round (a resync, a node sync).

        Every Service's plan reads the same shared LBs, the cluster NSG and public IPs; inside a
        round each is read once (public IPs: one listing of the resource group) and kept current
        with this process's own writes (the LB writer's result, each public IP written, the NSG
        re-read after a rule changed). A plan from a slightly stale view is harmless for the LB:
        the writer re-merges on fresh data and skips a PUT that changes nothing. Nesting reuses the
        outer round.
        """
        if self._round is not None:
            yield self._round
            return
        rnd = ReadRound()
        self._round = rnd
        try:
            yield rnd
        finally:
            self._round = None

    def _round_lb(self, name: str, body: JSON | None) -> None:
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                rnd.lbs[name] = copy.deepcopy(body)

    def _round_pip(self, rg: str, name: str, body: JSON | None) -> None:
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                cached = rnd.pips.get(rg.lower())
                if cached is not None:
                    if body is None:
                        cached.pop(name.lower(), None)
                    else:
                        cached[name.lower()] = copy.deepcopy(body)

    def _round_nsg_changed(self) -> None:
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                rnd.nsg = None

    # -- resolve ----------------------------------------------------------------------------------

    def resolve(self, intent: Intent, annotations: Mapping[str, str]) -> Intent:
        opts = parse_options(intent, annotations)
        return replace(intent, scheme="internal" if opts.internal else "external", options=opts)

    # -- plan -------------------------------------------------------------------------------------

    def _options(self, intent: Intent) -> AzureOptions:
        if isinstance(intent.options, AzureOptions):
            return intent.options
        return parse_options(intent, {})

    def plan(self, intent: Intent) -> Plan:
        s = self.settings
        opts = self._options(intent)
        cluster, rg = s.cluster_name, s.resource_group
        base = intent.lb_name
        token = names.uid_token(intent.ref.uid)
        scheme = "internal" if opts.internal else "external"
        lbn = names.lb_name(cluster, scheme)
        othern = names.lb_name(cluster, "external" if opts.internal else "internal")
        lb = self._get_lb(lbn)
        other = self._get_lb(othern)
        if lb is not None and not names.is_cluster_owned(lb.get("tags"), cluster):
            raise OwnershipConflict(
                f"load balancer {lbn!r} exists in resource group {rg!r} but is not owned by cluster {cluster!r}; "
                "lbprov never adopts it (rename the cluster or remove that load balancer)"
            )
        self._check_parts_owned(lb, lbn, base, token)
        changes: list[Change] = []
        ingress: tuple[Ingress, ...] = ()

        # -- public IP ---------------------------------------------------------------------------
        pip_id: str | None = None
        pip_ip: str | None = None
        if not opts.internal:
            pip_rg = opts.pip_resource_group or rg
            if opts.ipv4:
                found = [
                    p
                    for p in self._list_pips(pip_rg)
                    if (p.get("properties") or {}).get("ipAddress") == opts.ipv4
                ]
                if not found:
                    raise InvalidService(
                        "spec.loadBalancerIP",
                        f"no public IP address with address {opts.ipv4} in resource group {pip_rg!r}; "
                        "create a Standard static public IP with it first",
                    )
                pip = found[0]
                self._check_user_pip(pip, lb, base)
                pip_id, pip_ip = str(pip["id"]), (pip.get("properties") or {}).get("ipAddress")
            else:
                pip_name = opts.pip_name or names.pip_name(cluster, base)
                found_pip = self._get_pip(pip_rg, pip_name)
                pip_id = self.ids.pip(pip_rg, pip_name)
                desired_pip = build_desired(intent, opts, s, pip_id).pip_body
                assert desired_pip is not None
                if found_pip is None:
                    changes.append(
                        Change(
                            Action.CREATE,
                            "public-ip",
                            f"{pip_rg}/{pip_name}",
                            after=view_pip(desired_pip),
                            data={"rg": pip_rg, "name": pip_name, "body": desired_pip},
                        )
                    )
                elif names.is_service_owned(found_pip.get("tags"), cluster, intent.ref.uid):
                    pip_id, pip_ip = (
                        str(found_pip["id"]),
                        (found_pip.get("properties") or {}).get("ipAddress"),
                    )
                    before, after = view_pip(found_pip), view_pip(desired_pip)
                    if before != after:
                        changes.append(
                            Change(
                                Action.UPDATE,
                                "public-ip",
                                f"{pip_rg}/{pip_name}",
                                before=before,
                                after=after,
                                cloud_id=pip_id,
                                data={
                                    "rg": pip_rg,
                                    "name": pip_name,
                                    "body": desired_pip,
                                    "etag": found_pip.get("etag"),
                                },
                            )
                        )
                elif opts.pip_name:
                    self._check_user_pip(found_pip, lb, base)
                    pip_id, pip_ip = (
                        str(found_pip["id"]),
                        (found_pip.get("properties") or {}).get("ipAddress"),
                    )
                else:
                    raise OwnershipConflict(
                        f"public IP {pip_name!r} in resource group {pip_rg!r} exists but is not owned by Service "
                        f"{intent.ref.key} of cluster {cluster!r}; lbprov never adopts it"
                    )
        desired = build_desired(intent, opts, s, pip_id)
        others = [
            r for r in _items(lb, "loadBalancingRules") if not names.owns_part(base, str(r.get("name", "")))
        ]
        if len(others) + len(desired.rules) > MAX_RULES_PER_LB:
            raise CapacityExceeded(
                f"load balancer {lbn!r} holds {len(others)} rules of other Services; {len(desired.rules)} more "
                f"would exceed Azure's limit of {MAX_RULES_PER_LB} rules per load balancer"
            )

        # -- the shared load balancer ------------------------------------------------------------
        group = self._lb_changes(lb, lbn, desired, base, token, intent.ref)
        changes.extend(group)
        fe = _find(_items(lb, "frontendIPConfigurations"), base)
        if opts.internal:
            if fe is not None and not any(c.kind == "frontend-ip-configuration" for c in group):
                addr = (fe.get("properties") or {}).get("privateIPAddress")
                ingress = (Ingress(ip=addr),) if addr else ()
        elif pip_ip:
            ingress = (Ingress(ip=pip_ip),)

        # -- what this Service left elsewhere: the other scheme's LB, a public IP no longer used --
        stale_pips: set[str] = set()
        if fe is not None:
            old = ref_id((fe.get("properties") or {}).get("publicIPAddress"))
            if old and pip_id and old.lower() != pip_id.lower():
                stale_pips.add(old)
        if other is not None and names.is_cluster_owned(other.get("tags"), cluster):
            changes.extend(self._lb_removal(other, othern, base, token, intent.ref))
            ofe = _find(_items(other, "frontendIPConfigurations"), base)
            old = ref_id(((ofe or {}).get("properties") or {}).get("publicIPAddress"))
            if old and (not pip_id or old.lower() != pip_id.lower()):
                stale_pips.add(old)
        for old in sorted(stale_pips):
            changes.extend(self._pip_deletion(old, intent.ref))

        # -- NSG rules ---------------------------------------------------------------------------
        if opts.internal:
            frontend_addr = opts.ipv4 or (
                (fe.get("properties") or {}).get("privateIPAddress")
                if fe is not None and not any(c.kind == "frontend-ip-configuration" for c in group)
                else None
            )
        else:
            frontend_addr = pip_ip
        changes.extend(self._nsg_changes(desired.nsg_rules, base, intent.ref, lbn, frontend_addr))
        return Plan(
            provider=self.name,
            ref=intent.ref,
            changes=tuple(changes),
            intent=intent,
            ingress=ingress,
            data={"lb": lbn, "internal": opts.internal, "base": base},
        )

    def _check_user_pip(self, pip: JSON, lb: JSON | None, base: str) -> None:
        if (pip.get("sku") or {}).get("name") != "Standard":
            raise InvalidService(
                "metadata.annotations[service.beta.kubernetes.io/azure-pip-name]",
                f"public IP {pip.get('name')!r} has SKU {(pip.get('sku') or {}).get('name')!r}; the shared "
                "Standard load balancer needs a Standard public IP",
            )
        used_by = ref_id((pip.get("properties") or {}).get("ipConfiguration"))
        if used_by:
            ours = lb is not None and used_by.lower() == f"{lb['id']}/frontendIPConfigurations/{base}".lower()
            if not ours:
                raise InvalidService(
                    "metadata.annotations[service.beta.kubernetes.io/azure-pip-name]",
                    f"public IP {pip.get('name')!r} is already attached to {used_by}",
                )

    def _check_parts_owned(self, lb: JSON | None, lbn: str, base: str, token: str) -> None:
        if lb is None or token in names.services_of(lb.get("tags")):
            return
        for fld in ("frontendIPConfigurations", "probes", "loadBalancingRules"):
            for item in _items(lb, fld):
                if names.owns_part(base, str(item.get("name", ""))):
                    raise OwnershipConflict(
                        f"load balancer {lbn!r} has {fld} {item.get('name')!r}, named like this Service's, but "
                        "does not record the Service as its owner; lbprov never adopts it"
                    )

    def _lb_changes(
        self, lb: JSON | None, lbn: str, desired: Any, base: str, token: str, ref: ServiceRef
    ) -> list[Change]:
        """Changes to the Service's parts on its LB; all carry ``data['lb']`` (one writer group)."""
        common = {"lb": lbn, "service": token, "base": base, "template": desired.lb_template}
        out: list[Change] = []
        if lb is None:
            out.append(
                Change(
                    Action.CREATE,
                    "load-balancer",
                    lbn,
                    after={"sku": "Standard", "backend_pool": desired.pool["name"]},
                    data=common,
                )
            )
        if lb is None or token not in names.services_of(lb.get("tags")):
            out.append(
                Change(
                    Action.CREATE,
                    "lb-service-tag",
                    f"{lbn}/{token}",
                    after={"service": ref.key, "uid": ref.uid},
                    data=common,
                )
            )
        if lb is not None:
            existing_pool = _find(_items(lb, "backendAddressPools"), desired.pool["name"])
            before = VIEWS["backend-pool"](existing_pool) if existing_pool else None
            after = VIEWS["backend-pool"](desired.pool)
            if before != after:
                out.append(
                    Change(
                        Action.UPDATE if existing_pool else Action.CREATE,
                        "backend-pool",
                        f"{lbn}/{desired.pool['name']}",
                        before=before,
                        after=after,
                        data={**common, "item": desired.pool},
                    )
                )
        wanted: list[tuple[str, JSON]] = [("frontend-ip-configuration", desired.frontend)]
        wanted += [("probe", p) for p in desired.probes.values()]
        wanted += [("load-balancing-rule", r) for r in desired.rules.values()]
        for kind, item in wanted:
            existing = _find(_items(lb, LB_FIELDS[kind]), item["name"])
            after = VIEWS[kind](item)
            before = VIEWS[kind](existing) if existing else None
            if before != after:
                out.append(
                    Change(
                        Action.UPDATE if existing else Action.CREATE,
                        kind,
                        f"{lbn}/{item['name']}",
                        before=before,
                        after=after,
                        cloud_id=str(existing["id"]) if existing and existing.get("id") else None,
                        data={**common, "item": item},
                    )
                )
        keep = {("probe", n.lower()) for n in desired.probes} | {
            ("load-balancing-rule", n.lower()) for n in desired.rules
        }
        for kind in ("load-balancing-rule", "probe"):
            for item in _items(lb, LB_FIELDS[kind]):
                n = str(item.get("name", ""))
                if names.owns_part(base, n) and (kind, n.lower()) not in keep:
                    out.append(_part_delete(kind, lbn, item, common))
        return sorted(out, key=lambda c: (c.action == Action.DELETE, _ORDER.get(c.kind, 9)))

    def _lb_removal(self, lb: JSON, lbn: str, base: str, token: str, ref: ServiceRef) -> list[Change]:
        """Changes that remove every part of the Service from ``lb`` (and the LB if it empties)."""
        common = {"lb": lbn, "service": token, "base": base}
        out: list[Change] = []
        remaining = 0
        for kind in ("load-balancing-rule", "probe", "frontend-ip-configuration"):
            for item in _items(lb, LB_FIELDS[kind]):
                n = str(item.get("name", ""))
                if names.owns_part(base, n):
                    out.append(_part_delete(kind, lbn, item, common))
                else:
                    remaining += 1
        services = names.services_of(lb.get("tags"))
        if token in services:
            out.insert(
                0,
                Change(
                    Action.DELETE,
                    "lb-service-tag",
                    f"{lbn}/{token}",
                    before={"service": ref.key, "uid": ref.uid},
                    data=common,
                ),
            )
        if (out and not remaining and not (services - {token})) or (not remaining and not services):
            out.append(
                Change(
                    Action.DELETE,
                    "load-balancer",
                    lbn,
                    before={"sku": "Standard"},
                    cloud_id=str(lb.get("id")),
                    reason="its last Service leaves it",
                    data={**common, "informational": True},
                )
            )
        return out

    def _pip_deletion(self, pip_id: str, ref: ServiceRef) -> list[Change]:
        seg = pip_id.split("/")
        if len(seg) < 9:
            return []
        rg, name = seg[4], seg[-1]
        pip = self._get_pip(rg, name)
        if pip is None or not names.is_service_owned(pip.get("tags"), self.settings.cluster_name, ref.uid):
            return []  # gone, or the user's: never deleted
        return [
            Change(
                Action.DELETE,
                "public-ip",
                f"{rg}/{name}",
                before=view_pip(pip),
                cloud_id=str(pip.get("id")),
                data={"rg": rg, "name": name, "etag": pip.get("etag")},
            )
        ]

    def _owned_nsg_rules(self, nsg: JSON, base: str) -> dict[str, JSON]:
        out = {}
        for r in _items(nsg, "securityRules"):
            n = str(r.get("name", ""))
            if n.startswith(names.nsg_rule_prefix(base)):
                desc = str((r.get("properties") or {}).get("description") or "")
                if not desc.startswith(f"lbprov {self.settings.cluster_name} "):
                    raise OwnershipConflict(
                        f"NSG rule {n!r} is named like this Service's but its description {desc!r} does not "
                        f"mark it as cluster {self.settings.cluster_name!r}'s; lbprov never adopts it"
                    )
                out[n] = r
        return out

    def _nsg_changes(
        self, desired: dict[str, JSON], base: str, ref: ServiceRef, lbn: str, frontend_addr: str | None
    ) -> list[Change]:
        nsg = self._get_nsg()
        if nsg is None:
            return []
        ours = self._owned_nsg_rules(nsg, base)
        used = self._used_priorities(nsg)
        out: list[Change] = []
        for name, wanted in desired.items():
            existing = ours.get(name)
            body, resolve = _with_frontend(wanted, frontend_addr)
            after = view_nsg_rule(body)
            extra = {"resolve_frontend": {"lb": lbn, "base": base}} if resolve else {}
            if existing is None:
                priority = self._allocate_priority(used, name)
                used.add(priority)
                out.append(
                    Change(
                        Action.CREATE,
                        "nsg-rule",
                        f"{nsg['name']}/{name}",
                        after={**after, "priority": priority},
                        data={"name": name, "body": body, "priority": priority, **extra},
                    )
                )
            else:
                before = view_nsg_rule(existing)
                if before != after:
                    priority = int((existing.get("properties") or {}).get("priority") or 0)
                    out.append(
                        Change(
                            Action.UPDATE,
                            "nsg-rule",
                            f"{nsg['name']}/{name}",
                            before={**before, "priority": priority},
                            after={**after, "priority": priority},
                            cloud_id=str(existing.get("id")),
                            data={"name": name, "body": body, "priority": priority, **extra},
                        )
                    )
        for name, existing in sorted(ours.items()):
            if name not in desired:
                out.append(
                    Change(
                        Action.DELETE,
                        "nsg-rule",
                        f"{nsg['name']}/{name}",
                        before=view_nsg_rule(existing),
                        cloud_id=str(existing.get("id")),
                        data={"name": name},
                    )
                )
        return out

    @staticmethod
    def _used_priorities(nsg: JSON) -> set[int]:
        return {
            int((r.get("properties") or {}).get("priority") or 0)
            for r in _items(nsg, "securityRules")
            if (r.get("properties") or {}).get("direction", "Inbound") == "Inbound"
        }

    def _allocate_priority(self, used: set[int], rule: str) -> int:
        """Lowest free priority in 500-4096, skipping ones other plans of this process just took."""
        now = time.monotonic()
        with self._lock:
            self._reserved = {p: v for p, v in self._reserved.items() if now - v[1] < _RESERVATION_SECONDS}
            for p in range(NSG_PRIORITY_MIN, NSG_PRIORITY_MAX + 1):
                holder = self._reserved.get(p)
                if p in used or (holder is not None and holder[0] != rule):
                    continue
                self._reserved[p] = (rule, now)
                return p
        raise RuntimeError(
            f"network security group {self.settings.security_group_name!r} has no free priority in "
            f"{NSG_PRIORITY_MIN}-{NSG_PRIORITY_MAX}"
        )

    # -- delete plan ------------------------------------------------------------------------------

    def plan_delete(self, ref: ServiceRef) -> Plan:
        s = self.settings
        cluster = s.cluster_name
        base = naming.lb_name(ref.uid)
        token = names.uid_token(ref.uid)
        changes: list[Change] = []
        pip_ids: set[str] = set()
        for scheme in ("external", "internal"):
            lbn = names.lb_name(cluster, scheme)
            lb = self._get_lb(lbn)
            if lb is None or not names.is_cluster_owned(lb.get("tags"), cluster):
                continue
            fe = _find(_items(lb, "frontendIPConfigurations"), base)
            old = ref_id(((fe or {}).get("properties") or {}).get("publicIPAddress"))
            if old:
                pip_ids.add(old)
            changes.extend(self._lb_removal(lb, lbn, base, token, ref))
        pips: dict[str, JSON] = {}
        for pip in self._list_pips(s.resource_group):
            if names.is_service_owned(pip.get("tags"), cluster, ref.uid):
                pips[str(pip["id"]).lower()] = pip
        for pid in pip_ids:
            if pid.lower() not in pips:
                seg = pid.split("/")
                if len(seg) >= 9 and seg[4].lower() != s.resource_group.lower():
                    other_pip = self._get_pip(seg[4], seg[-1])
                    if other_pip and names.is_service_owned(other_pip.get("tags"), cluster, ref.uid):
                        pips[pid.lower()] = other_pip
        for pip in sorted(pips.values(), key=lambda p: str(p["id"])):
            seg = str(pip["id"]).split("/")
            changes.append(
                Change(
                    Action.DELETE,
                    "public-ip",
                    f"{seg[4]}/{seg[-1]}",
                    before=view_pip(pip),
                    cloud_id=str(pip["id"]),
                    data={"rg": seg[4], "name": seg[-1], "etag": pip.get("etag")},
                )
            )
        nsg = self._get_nsg()
        if nsg is not None:
            for name, rule in sorted(self._owned_nsg_rules(nsg, base).items()):
                changes.append(
                    Change(
                        Action.DELETE,
                        "nsg-rule",
                        f"{nsg['name']}/{name}",
                        before=view_nsg_rule(rule),
                        cloud_id=str(rule.get("id")),
                        data={"name": name},
                    )
                )
        return Plan(provider=self.name, ref=ref, changes=tuple(changes), intent=None)

    # -- apply ------------------------------------------------------------------------------------

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        changes = list(plan.changes)
        announced: dict[str, Announcement] = {}
        for ch in changes:  # tell each LB's writer this apply is coming, so it can wait for it
            lbn = ch.data.get("lb")
            if lbn and lbn not in announced:
                announced[lbn] = self.writer(lbn).announce()
        try:
            lb_bodies, pip_ip = self._apply_changes(changes, announced)
        finally:
            for a in announced.values():
                a.writer.withdraw(a)
        if plan.intent is None:
            return ()
        opts = self._options(plan.intent)
        if opts.internal:
            lbn = str(plan.data.get("lb"))
            if lbn in lb_bodies:
                fe = _find(_items(lb_bodies[lbn], "frontendIPConfigurations"), plan.intent.lb_name)
                addr = ((fe or {}).get("properties") or {}).get("privateIPAddress")
                return (Ingress(ip=addr),) if addr else ()
            return plan.ingress
        if pip_ip:
            return (Ingress(ip=pip_ip),)
        return plan.ingress

    def _apply_changes(
        self, changes: list[Change], announced: dict[str, Announcement]
    ) -> tuple[dict[str, JSON | None], str | None]:
        """Execute ``changes`` in order; consecutive changes of one LB become one writer submission.

        Returns the LB bodies as written and the address of a public IP created or updated.
        """
        lb_bodies: dict[str, JSON | None] = {}
        pip_ip: str | None = None
        i = 0
        while i < len(changes):
            ch = changes[i]
            lbn = ch.data.get("lb")
            if lbn:
                j = i
                while j < len(changes) and changes[j].data.get("lb") == lbn:
                    j += 1
                lb_bodies[lbn] = self.writer(lbn).submit(self._delta(changes[i:j]), announced.pop(lbn, None))
                self._round_lb(lbn, lb_bodies[lbn])
                i = j
                continue
            if ch.kind == "public-ip":
                pip_ip = self._apply_pip(ch) or pip_ip
            elif ch.kind == "nsg-rule":
                self._apply_nsg_rule(ch, self._frontend_address(ch, lb_bodies, pip_ip))
            else:  # pragma: no cover - plans only hold the kinds above
                raise ValueError(f"unknown change kind {ch.kind!r}")
            i += 1
        return lb_bodies, pip_ip

    @staticmethod
    def _delta(group: list[Change]) -> LBDelta:
        first = group[0].data
        upserts: list[tuple[str, JSON]] = []
        deletes: list[tuple[str, str]] = []
        join: bool | None = None
        pool: JSON | None = None
        template: JSON | None = None
        for ch in group:
            if ch.data.get("template") is not None:
                template = ch.data["template"]
            if ch.kind == "lb-service-tag":
                join = ch.action != Action.DELETE
            elif ch.kind == "backend-pool":
                pool = ch.data["item"]
            elif ch.kind in LB_FIELDS:
                if ch.action == Action.DELETE:
                    deletes.append((LB_FIELDS[ch.kind], str(ch.data["name"])))
                else:
                    upserts.append((LB_FIELDS[ch.kind], ch.data["item"]))
        if upserts:
            join = True  # (re)creates the LB from the template if it vanished since the plan
        return LBDelta(
            service=str(first["service"]),
            base=str(first["base"]),
            upserts=tuple(upserts),
            deletes=tuple(deletes),
            join=join,
            pool=pool,
            template=template,
        )

    def _apply_pip(self, ch: Change) -> str | None:
        rg, name = str(ch.data["rg"]), str(ch.data["name"])
        ops = self.client.public_ip_addresses
        if ch.action == Action.DELETE:
            # No If-Match: detaching it from the LB earlier in this apply changed its ETag, and
            # its ownership (tags) was checked by the plan.
            self._call("publicIPAddresses.delete", lambda: ops.begin_delete(rg, name).result())
            self._round_pip(rg, name, None)
            return None
        headers = {"If-Match": ch.data["etag"]} if ch.data.get("etag") else {"If-None-Match": "*"}
        body = ch.data["body"]
        result = self._call(
            "publicIPAddresses.create_or_update",
            lambda: ops.begin_create_or_update(rg, name, body, headers=headers).result().as_dict(),
        )
        self._round_pip(rg, name, result)
        return (result.get("properties") or {}).get("ipAddress")

    @staticmethod
    def _frontend_address(ch: Change, lb_bodies: dict[str, JSON | None], pip_ip: str | None) -> str | None:
        """The frontend address an NSG rule waits for (floating IP on), once this apply knows it."""
        want = ch.data.get("resolve_frontend")
        if not want:
            return None
        if pip_ip:
            return pip_ip
        fe = _find(_items(lb_bodies.get(want["lb"]), "frontendIPConfigurations"), want["base"])
        addr = ((fe or {}).get("properties") or {}).get("privateIPAddress")
        if not addr:
            raise RuntimeError(f"NSG rule {ch.name}: the frontend address is not known after the LB write")
        return str(addr)

    def _apply_nsg_rule(self, ch: Change, frontend_addr: str | None = None) -> None:
        s = self.settings
        nsg, rg = str(s.security_group_name), s.resource_group
        name = str(ch.data["name"])
        ops = self.client.security_rules
        self._round_nsg_changed()
        if ch.action == Action.DELETE:
            self._call("securityRules.delete", lambda: ops.begin_delete(rg, nsg, name).result())
            return
        priority = int(ch.data["priority"])
        for _ in range(8):
            body = {"properties": {**ch.data["body"]["properties"], "priority": priority}}
            if frontend_addr:
                body["properties"]["destinationAddressPrefix"] = frontend_addr
            try:
                self._call(
                    "securityRules.create_or_update",
                    lambda b=body: ops.begin_create_or_update(rg, nsg, name, b).result(),  # type: ignore[misc]
                )
                return
            except HttpResponseError as exc:
                if exc.status_code != 400 or azclient.error_code(exc) != "SecurityRuleConflict":
                    raise
            # another writer took the priority since the plan: pick a free one on fresh data
            fresh = self._get_nsg(fresh=True)
            priority = self._allocate_priority(self._used_priorities(fresh or {}), name)
        raise RuntimeError(f"NSG rule {name}: could not find a free priority after 8 attempts")

    # -- gc ---------------------------------------------------------------------------------------

    def list_owned(self) -> list[OwnedLoadBalancer]:
        cluster = self.settings.cluster_name
        by_uid: dict[str, dict[str, Any]] = {}
        for pip in self._list_pips(self.settings.resource_group):
            tags = pip.get("tags") or {}
            uid = tags.get(names.azure_key(naming.SERVICE_UID_TAG))
            if uid and names.is_cluster_owned(tags, cluster):
                entry = by_uid.setdefault(uid, {"key": None, "lb": None, "resources": []})
                entry["key"] = tags.get(names.azure_key(naming.SERVICE_NAME_TAG))
                entry["resources"].append(("public-ip", str(pip.get("name"))))
        for lb in self._list_lbs():
            if not names.is_cluster_owned(lb.get("tags"), cluster):
                continue
            for token in names.services_of(lb.get("tags")):
                uid = names.uid_from_token(token)
                base = naming.lb_name(uid)
                entry = by_uid.setdefault(uid, {"key": None, "lb": None, "resources": []})
                entry["lb"] = str(lb.get("name"))
                for kind, fld in (
                    ("frontend-ip-configuration", "frontendIPConfigurations"),
                    ("probe", "probes"),
                    ("load-balancing-rule", "loadBalancingRules"),
                ):
                    for item in _items(lb, fld):
                        if names.owns_part(base, str(item.get("name", ""))):
                            entry["resources"].append((kind, f"{lb.get('name')}/{item.get('name')}"))
        nsg = self._get_nsg()
        prefix = f"lbprov {cluster} "
        for rule in _items(nsg, "securityRules"):
            desc = str((rule.get("properties") or {}).get("description") or "")
            name = str(rule.get("name", ""))
            if not (name.startswith("lbprov-") and desc.startswith(prefix)):
                continue
            uid, _, key = desc[len(prefix) :].partition(" ")
            if not uid or not name.startswith(names.nsg_rule_prefix(naming.lb_name(uid))):
                continue
            entry = by_uid.setdefault(uid, {"key": None, "lb": None, "resources": []})
            entry["key"] = entry["key"] or key or None
            entry["resources"].append(("nsg-rule", f"{nsg['name'] if nsg else ''}/{name}"))
        out = []
        for uid, e in sorted(by_uid.items()):
            ns, _, nm = str(e["key"] or "").partition("/")
            out.append(
                OwnedLoadBalancer(
                    provider=self.name,
                    ref=ServiceRef(ns, nm, uid),
                    name=e["lb"] or "",
                    kind=names.LB_KIND,
                    resources=tuple(e["resources"]),
                )
            )
        return out


def _part_delete(kind: str, lbn: str, item: JSON, common: Mapping[str, Any]) -> Change:
    """Delete one of a Service's parts (rule, probe, frontend) of the shared load balancer."""
    name = str(item.get("name", ""))
    return Change(
        Action.DELETE, kind, f"{lbn}/{name}", before=VIEWS[kind](item), data={**common, "name": name}
    )
