"""What exists in Azure: the shared load balancers, public IPs and the cluster NSG, read through CloudCalls.

Every read the provider makes goes through an :class:`Observer`. Inside a *read round* (a resync,
a node sync: see :meth:`Observer.read_round`) each shared LB, the NSG and the public IPs of a
resource group are read once and kept current with this process's own writes, so that a resync of
N Services costs a handful of reads rather than N times as many.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from azure.mgmt.network import NetworkManagementClient

from lbprov import naming
from lbprov.cloudcalls import CloudCalls
from lbprov.model import OwnedLoadBalancer, ServiceRef
from lbprov_azure import names
from lbprov_azure.arm import ArmRequests
from lbprov_azure.client import get_json, list_json
from lbprov_azure.kept import KeptListing
from lbprov_azure.settings import AzureSettings

JSON = dict[str, Any]
T = TypeVar("T")


def items(lb: JSON | None, fld: str) -> list[JSON]:
    """The sub-resources ``fld`` of a resource body (``properties.<fld>``), or []."""
    return list(((lb or {}).get("properties") or {}).get(fld) or [])


def find(found: list[JSON], name: str) -> JSON | None:
    """The item named ``name`` (ARM names are case-insensitive)."""
    return next((i for i in found if str(i.get("name", "")).lower() == name.lower()), None)


@dataclass
class ReadRound:
    """Reads shared by the plans of one reconcile round (see :meth:`Observer.read_round`).

    The bodies are shared, not copied, between the plans of the round: they are read-only
    snapshots (a write replaces an entry, never changes it in place). Deep copies per plan cost
    O(size of every shared LB + the NSG) of CPU per Service, which made large clusters CPU-bound.
    """

    lbs: dict[str, JSON | None] = field(default_factory=dict)
    nsg: JSON | None = None
    pips: dict[str, dict[str, JSON]] = field(default_factory=dict)  # rg lower -> name lower -> body
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Bumped by every write of this process: a read that saw a write start or finish while it was
    #: on the wire is not cached (it may predate the write), and the write patches the cache itself.
    writes: int = 0
    #: True once the round listed every load balancer of the resource group (``lbs`` is then complete).
    listed: bool = False
    #: Reads on the wire, by what they read (see :meth:`Observer._single_flight`).
    flights: dict[str, Flight] = field(default_factory=dict)


@dataclass
class Flight:
    """A read of the round on the wire, which plans asking for the same read join (single flight)."""

    gen: int  # the round's write count when the read was sent
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    failed: bool = False
    joined: int = 0  # plans waiting for this read instead of sending their own


def _entry() -> dict[str, Any]:
    return {"key": None, "lb": None, "resources": [], "ids": set()}


def _identity(ids: set[str | None], ours: str | None) -> str | None:
    """The identity of a Service's resources; any other than ours wins (gc must then keep them)."""
    known = {i for i in ids if i}
    foreign = sorted(i for i in known if i != ours)
    if foreign:
        return foreign[0]
    return ours if known else None


class Observer:
    """Reads Azure state; ``on_lb_read`` lets the LB writers reuse a fresh plan read."""

    def __init__(
        self,
        settings: AzureSettings,
        client: NetworkManagementClient,
        calls: CloudCalls,
        arm: ArmRequests,
        on_lb_read: Callable[[str, JSON | None], None] | None = None,
    ) -> None:
        self.settings = settings
        #: the SDK client (deletes); reads and PUTs go through ``arm`` (lbprov_azure.arm)
        self.client = client
        self.arm = arm
        self.calls = calls
        self.on_lb_read = on_lb_read
        self._round: ReadRound | None = None
        #: the last listing of the load balancers, kept current with our writes (the node sync's)
        self.kept = KeptListing(max_age=settings.node_sync_listing_max_age_seconds)
        self._round_lock = threading.Lock()  # opening and ending rounds

    def call(self, op: str, fn: Callable[[], T]) -> T:
        return self.calls.call(op, fn, hooked=True)

    def _path(self, rg: str, kind: str, name: str | None = None) -> str:
        """The ARM path of a resource (``name``) or collection of the Network provider."""
        base = f"/subscriptions/{self.settings.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Network/{kind}"
        return f"{base}/{name}" if name else base

    # -- reads ----------------------------------------------------------------------------------

    def lb(self, name: str, *, fresh: bool = False) -> JSON | None:
        """The load balancer ``name`` (None: absent); inside a round, the round's copy.

        ``fresh``: read the cloud even inside a round, and keep the answer in the round. The LB
        writer re-reads this way after a lost ETag race or a rejected batch: the round's copy is what
        the writer already knows, so answering from it repeats the same lost race.
        """
        rnd = self._round
        if fresh:
            body = self.call(
                "loadBalancers.get",
                lambda: get_json(self.arm, self._path(self.settings.resource_group, "loadBalancers", name)),
            )
            self.wrote_lb(name, body)
            return body
        if rnd is not None:
            with rnd.lock:
                if name.lower() in rnd.lbs or rnd.listed:
                    return rnd.lbs.get(name.lower())
        rg = self.settings.resource_group
        gen = self._gen()
        body = self.call(
            "loadBalancers.get", lambda: get_json(self.arm, self._path(rg, "loadBalancers", name))
        )
        if self.on_lb_read is not None:
            self.on_lb_read(name, body)
        self._keep(gen, lambda r: r.lbs.__setitem__(name.lower(), body))
        return body

    def pip(self, rg: str, name: str) -> JSON | None:
        rnd = self._round
        if rnd is not None:  # one listing of the resource group serves every Service of the round
            with rnd.lock:
                listed = rnd.pips.get(rg.lower())
                if listed is not None:  # by name: a scan per Service made a round O(N^2)
                    return listed.get(name.lower())
            return next((p for p in self.pips(rg) if str(p.get("name", "")).lower() == name.lower()), None)
        return self.call(
            "publicIPAddresses.get", lambda: get_json(self.arm, self._path(rg, "publicIPAddresses", name))
        )

    def pips(self, rg: str) -> list[JSON]:
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                if rg.lower() in rnd.pips:
                    return list(rnd.pips[rg.lower()].values())
        key = rg.lower()
        return list(
            self._single_flight(
                f"publicIPAddresses.list {key}",
                lambda: self._list_pips(rg),
                lambda r: None if (listed := r.pips.get(key)) is None else list(listed.values()),
            )
        )

    def _list_pips(self, rg: str) -> list[JSON]:
        gen = self._gen()
        pips = self.call(
            "publicIPAddresses.list", lambda: list_json(self.arm, self._path(rg, "publicIPAddresses"))
        )
        self._keep(
            gen,
            lambda r: r.pips.__setitem__(rg.lower(), {str(p.get("name", "")).lower(): p for p in pips}),
        )
        return pips

    def lbs(self) -> list[JSON]:
        rg = self.settings.resource_group
        return self.call("loadBalancers.list", lambda: list_json(self.arm, self._path(rg, "loadBalancers")))

    def lbs_by_name(self) -> dict[str, JSON]:
        """Every load balancer of the resource group by lower-case name: ONE listing, which serves
        every slot of both schemes (inside a round: once per round, kept current by our writes)."""
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                if rnd.listed:
                    return {k: v for k, v in rnd.lbs.items() if v is not None}
        return dict(
            self._single_flight(
                "loadBalancers.list",
                self._list_lbs,
                lambda r: {k: v for k, v in r.lbs.items() if v is not None} if r.listed else None,
            )
        )

    def _list_lbs(self) -> dict[str, JSON]:
        gen = self._gen()
        mark = self.kept.sending()
        try:
            found = {str(b.get("name", "")).lower(): b for b in self.lbs()}
        except BaseException:
            self.kept.abandoned()
            raise
        self.kept.listed(mark, found)
        if self.on_lb_read is not None:
            for body in found.values():
                if names.is_cluster_owned(body.get("tags"), self.settings.cluster_name):
                    self.on_lb_read(str(body.get("name")), body)

        def store(r: ReadRound) -> None:
            r.lbs = dict(found)
            r.listed = True

        self._keep(gen, store)
        return found

    def nsg(self, *, fresh: bool = False) -> JSON | None:
        """The cluster NSG (None when no ``security_group_name`` is set); ``fresh`` skips the round cache."""
        name = self.settings.security_group_name
        if not name:
            return None
        rnd = self._round
        if rnd is not None and not fresh:
            with rnd.lock:
                if rnd.nsg is not None:
                    return rnd.nsg
            return self._single_flight(
                "networkSecurityGroups.get", lambda: self._read_nsg(name), lambda r: r.nsg
            )
        return self._read_nsg(name)

    def _read_nsg(self, name: str) -> JSON:
        rg = self.settings.resource_group
        gen = self._gen()
        nsg = self.call(
            "networkSecurityGroups.get",
            lambda: get_json(self.arm, self._path(rg, "networkSecurityGroups", name)),
        )
        if nsg is None:
            raise RuntimeError(
                f"cluster network security group {name!r} not found in resource group {rg!r} "
                "(setting security_group_name)"
            )
        self._keep(gen, lambda r: setattr(r, "nsg", nsg))
        return nsg

    # -- gc -------------------------------------------------------------------------------------

    def owned(self) -> list[OwnedLoadBalancer]:
        """Everything of this cluster's Services, grouped by Service UID (for ``lbprov gc``)."""
        cluster = self.settings.cluster_name
        by_uid: dict[str, dict[str, Any]] = {}
        for pip in self.pips(self.settings.resource_group):
            tags = pip.get("tags") or {}
            uid = tags.get(names.azure_key(naming.SERVICE_UID_TAG))
            if uid and names.is_cluster_owned(tags, cluster):
                entry = by_uid.setdefault(uid, _entry())
                entry["key"] = tags.get(names.azure_key(naming.SERVICE_NAME_TAG))
                entry["resources"].append(("public-ip", str(pip.get("name"))))
                entry["ids"].add(names.identity_of(tags))
        # rules shared by destination belong to the Services whose frontend address they name
        by_address: dict[str, str] = {}
        pip_addresses = {
            str(p.get("id", "")).lower(): str((p.get("properties") or {}).get("ipAddress"))
            for p in self.pips(self.settings.resource_group)
        }
        for lb in self.lbs():
            if not names.is_cluster_owned(lb.get("tags"), cluster):
                continue
            for token in names.service_tokens(lb.get("tags")):
                uid = names.uid_from_token(token)
                base = naming.lb_name(uid)
                entry = by_uid.setdefault(uid, _entry())
                entry["lb"] = str(lb.get("name"))
                entry["ids"].add(names.identity_of(lb.get("tags")))
                for kind, fld in (
                    ("frontend-ip-configuration", "frontendIPConfigurations"),
                    ("probe", "probes"),
                    ("load-balancing-rule", "loadBalancingRules"),
                ):
                    for item in items(lb, fld):
                        if names.owns_part(base, str(item.get("name", ""))):
                            entry["resources"].append((kind, f"{lb.get('name')}/{item.get('name')}"))
                fronts = (base, base + names.IPV6_SUFFIX)  # a frontend per IP family
                for fe in [f for f in items(lb, "frontendIPConfigurations") if f.get("name") in fronts]:
                    fprops = fe.get("properties") or {}
                    if fprops.get("privateIPAddress"):
                        by_address[str(fprops["privateIPAddress"])] = uid
                    pip_id = str((fprops.get("publicIPAddress") or {}).get("id") or "").lower()
                    if pip_id in pip_addresses:
                        by_address[pip_addresses[pip_id]] = uid
        nsg = self.nsg()
        cid = self.settings.cluster_id
        for rule in items(nsg, "securityRules"):
            desc = str((rule.get("properties") or {}).get("description") or "")
            name = str(rule.get("name", ""))
            parsed = names.parse_rule_description(desc, cluster) if name.startswith("lbprov-") else None
            if parsed is None:
                continue
            if parsed[0] == "shared":
                p = rule.get("properties") or {}
                dests = [p["destinationAddressPrefix"]] if p.get("destinationAddressPrefix") else []
                for address in dests or p.get("destinationAddressPrefixes") or []:
                    if address in by_address:
                        owner = by_uid.setdefault(by_address[address], _entry())
                        owner["resources"].append(("nsg-rule", f"{nsg['name'] if nsg else ''}/{name}"))
                continue
            uid, mark, key = parsed
            if not uid or not name.startswith(names.nsg_rule_prefix(naming.lb_name(uid))):
                continue
            entry = by_uid.setdefault(uid, _entry())
            entry["key"] = entry["key"] or key or None
            # rules carry a hash of the identity: ours when it matches, else the mark (never an id)
            entry["ids"].add(cid if cid and mark == names.rule_identity(cid) else mark)
            entry["resources"].append(("nsg-rule", f"{nsg['name'] if nsg else ''}/{name}"))
        out = []
        for uid, e in sorted(by_uid.items()):
            ns, _, nm = str(e["key"] or "").partition("/")
            out.append(
                OwnedLoadBalancer(
                    provider="azure",
                    ref=ServiceRef(ns, nm, uid),
                    name=e["lb"] or "",
                    kind=names.LB_KIND,
                    resources=tuple(e["resources"]),
                    cluster_id=_identity(e["ids"], cid),
                )
            )
        return out

    # -- read rounds ------------------------------------------------------------------------------

    @contextmanager
    def read_round(self, *, fresh: bool = False) -> Iterator[ReadRound]:
        """Share reads between the plans of one reconcile round (a resync, a node sync).

        Every Service's plan reads the same shared LBs, the cluster NSG and public IPs; inside a
        round each is read once (public IPs: one listing of the resource group) and kept current
        with this process's own writes (the LB writer's result, each public IP written, the NSG
        re-read after a rule changed). A plan from a slightly stale view is harmless for the LB:
        the writer re-merges on fresh data and skips a PUT that changes nothing. Nesting reuses the
        outer round.

        ``fresh`` (the controller's rollover, lbprov.provider.read_round): a new round replaces the
        open one at once, for the plans in flight too, and the replaced round's exit leaves the new
        one in place. A plan then never finds no round between the two: outside a round each plan
        lists every load balancer and public IP of the resource group for itself.
        """
        with self._round_lock:
            outer = self._round
            if outer is not None and not fresh:
                rnd, mine = outer, False
            else:
                rnd, mine = ReadRound(), True
                self._round = rnd
        try:
            yield rnd
        finally:
            if mine:
                with self._round_lock:
                    if self._round is rnd:
                        self._round = None

    def _single_flight(
        self, key: str, read: Callable[[], T], cached: Callable[[ReadRound], T | None] | None = None
    ) -> T:
        """``read()``, or the answer of the same read already on the wire in this round.

        The plans of a round start together (a resync hands every worker a Service at once), and each
        found the round's cache empty and sent its own listing: about 10 concurrent listings of the
        load balancers (and of the public IPs, and NSG reads) per round. A plan joins a read on the
        wire only if no write of this process started or finished since it was sent (the round's write
        count is the same), so the answer it gets is as current as one it would send itself: holds
        and the writers' bookkeeping (:meth:`_keep`) see the same order as before. A failed read is
        not shared: each plan that joined it reads for itself. Outside a round: ``read()``.

        ``cached(round)``: the round's copy, or None; asked again under the lock that elects the
        leader, since a flight that ended between the caller's own look at the cache and here has
        stored its answer and left (without the second look, a plan arriving then sent a second
        listing: the single-flight test failed now and then on a loaded machine).
        """
        rnd = self._round
        if rnd is None:
            return read()
        with rnd.lock:
            if cached is not None and (found := cached(rnd)) is not None:
                return found
            flight = rnd.flights.get(key)
            leader = flight is None or flight.gen != rnd.writes
            if leader:
                flight = rnd.flights[key] = Flight(rnd.writes)
            else:
                assert flight is not None
                flight.joined += 1
        assert flight is not None
        if not leader:
            flight.done.wait()
            return read() if flight.failed else cast(T, flight.result)
        try:
            flight.result = read()
        except BaseException:
            flight.failed = True
            raise
        finally:
            with rnd.lock:
                if rnd.flights.get(key) is flight:
                    del rnd.flights[key]
            flight.done.set()
        return cast(T, flight.result)

    def _gen(self) -> tuple[ReadRound | None, int]:
        """The round a read is sent in, and its write count then (for :meth:`_keep`)."""
        rnd = self._round
        if rnd is None:
            return None, 0
        with rnd.lock:
            return rnd, rnd.writes

    def _keep(self, gen: tuple[ReadRound | None, int], store: Callable[[ReadRound], None]) -> None:
        """Cache a read in the round it was sent in, unless a write started or finished while it was
        on the wire, or that round has ended or been handed over (read_round(fresh=True)): a read
        sent before a round began is not that round's to keep (a periodic round reads afresh)."""
        rnd, writes = gen
        if rnd is not None and rnd is self._round:
            with rnd.lock:
                if rnd.writes == writes:
                    store(rnd)

    def writing(self) -> None:
        """A write is about to be sent: reads now on the wire may predate it (see :meth:`_keep`)."""
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                rnd.writes += 1

    def wrote_lb(self, name: str, body: JSON | None) -> None:
        self.kept.record(name, body)
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                rnd.writes += 1
                rnd.lbs[name.lower()] = body

    def wrote_pip(self, rg: str, name: str, body: JSON | None) -> None:
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                rnd.writes += 1
                cached = rnd.pips.get(rg.lower())
                if cached is not None:
                    if body is None:
                        cached.pop(name.lower(), None)
                    else:
                        cached[name.lower()] = body

    def wrote_nsg_rule(self, name: str, body: JSON | None) -> None:
        """The cluster NSG as this write left it: ``name`` replaced by ``body`` (None = deleted).

        Patching the round's copy, rather than dropping it, is what makes a check right after a
        delete read what the delete produced even when another plan re-read the NSG while the
        delete was on the wire (that copy still held the rule).
        """
        rnd = self._round
        if rnd is not None:
            with rnd.lock:
                rnd.writes += 1
                if rnd.nsg is not None:
                    props = rnd.nsg.get("properties") or {}
                    rules = [
                        r
                        for r in props.get("securityRules") or []
                        if str(r.get("name", "")).lower() != name.lower()
                    ]
                    if body is not None:
                        rules.append(body)
                    # a new NSG body (copy on write): plans may hold the previous one
                    rnd.nsg = {**rnd.nsg, "properties": {**props, "securityRules": rules}}
