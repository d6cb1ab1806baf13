"""The provider's reads (the observed state), either per Service (server-side filters) or batched for a read round.

Outside a round every plan asks the API for exactly what it needs (``name eq "(a|b)"`` filters),
which is cheapest for one Service. Inside :meth:`GCPProvider.read_round` each collection is listed
once, unfiltered, and every plan of the round is answered from memory: a resync of N Services
costs a handful of list calls instead of ~8 N. Collections an ``apply`` wrote to are dropped from
the round, so a later plan in the same round reads them afresh.
"""

from __future__ import annotations

import functools
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from lbprov import naming
from lbprov.model import OwnedLoadBalancer, ServiceRef
from lbprov_gcp import names as N
from lbprov_gcp.client import Compute
from lbprov_gcp.desired import HC_TIMING

Json = dict[str, Any]
T = TypeVar("T")


def _alternation(names: Iterable[str]) -> str:
    return "(" + "|".join(sorted(set(names))) + ")"


class _Entry:
    """One listing of a round: loaded once, by the first plan that needs it; the others wait."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.read_at = time.monotonic()
        self.value: Any = None
        self.error: BaseException | None = None


#: At most this many written names are read again by name in one request (GCE's filter is a
#: regular expression in the URL); more, and the collection is listed again whole.
MAX_NAMED_REFRESH = 40


class ReadRound:
    """Listings cached for the length of one round, each loaded once however many workers ask.

    The controller's workers plan concurrently inside one round. A listing that several of them
    miss at once is sent once (single flight): the first asks the API, the others wait for its
    answer. A write drops the listings it changed (:meth:`invalidate`), so a plan that starts
    after the write lists them afresh, again once for every worker.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], _Entry] = {}
        # collection -> {name written since it was listed: how many times}; refreshed by name on use
        self._dirty: dict[str, dict[str, int]] = {}
        self._refresh_locks: dict[str, threading.Lock] = {}
        # (collection, field) -> (the listing it was built from, {field value: resources})
        self._indexes: dict[tuple[str, str], tuple[list[Json], dict[Any, list[Json]]]] = {}

    def get(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if entry is None:
                entry = self._entries[key] = _Entry()
        if owner:
            try:
                entry.value = load()
            except BaseException as exc:
                entry.error = exc
                with self._lock:
                    if self._entries.get(key) is entry:
                        del self._entries[key]  # the next plan asks again
                raise
            finally:
                entry.done.set()
        else:
            entry.done.wait()
            if entry.error is not None:
                raise entry.error
        return cast(T, entry.value)

    def index(self, collection: str, items: list[Json], field: str) -> dict[Any, list[Json]]:
        """The resources of the listing ``items`` by the value of ``field``, built once per listing.

        Every plan of a round looks up a few of its own names (or a requested IP) in listings that
        hold every Service's resources: scanning them per plan made a round of N plans cost N x N
        (issue 14). The index is kept until the listing is replaced (a refresh after a write makes
        a new list), so a round builds it once per collection and listing.
        """
        with self._lock:
            cached = self._indexes.get((collection, field))
            if cached is not None and cached[0] is items:
                return cached[1]
        built: dict[Any, list[Json]] = {}
        for res in items:
            built.setdefault(res.get(field), []).append(res)
        with self._lock:
            self._indexes[(collection, field)] = (items, built)
        return built

    def read_at(self, key: tuple[str, ...]) -> float | None:
        """When the cached listing ``key`` was asked for (monotonic), or None if it is not cached."""
        with self._lock:
            entry = self._entries.get(key)
        return entry.read_at if entry is not None else None

    def invalidate(self, collection: str, zone: str | None = None, names: Iterable[str] = ()) -> None:
        """A write to ``collection``: the resources ``names`` are read again by name when a plan next
        asks for them (a whole listing stays valid for every other name, so a round of N creates
        costs no listing that grows with N); without names the listing is dropped."""
        with self._lock:
            if collection == "instanceGroups":
                drop = [
                    k
                    for k in self._entries
                    if k[0] == "groups" or (k[0] == "members" and zone in (None, k[1]))
                ]
            elif names and ("list", collection) in self._entries:
                dirty = self._dirty.setdefault(collection, {})
                for name in names:
                    dirty[name] = dirty.get(name, 0) + 1
                return
            else:
                drop = [("list", collection)]
                self._dirty.pop(collection, None)
            for key in drop:
                self._entries.pop(key, None)

    def listing(
        self,
        collection: str,
        load_all: Callable[[], list[Json]],
        load_named: Callable[[set[str]], list[Json]],
        only: set[str] | None = None,
    ) -> list[Json]:
        """The round's listing of ``collection``, with the resources written since it was made read
        again by name: those among ``only``, or all of them (``only`` None)."""
        key = ("list", collection)
        items = self.get(key, load_all)
        with self._lock:
            if not self._dirty.get(collection):  # nothing written since: the listing as it is now
                entry = self._entries.get(key)
                done = entry is not None and entry.done.is_set() and entry.error is None
                return cast(list[Json], entry.value) if done and entry is not None else items
            refresh = self._refresh_locks.setdefault(collection, threading.Lock())
        with refresh:  # one refresh at a time per collection; the others then see it done
            with self._lock:
                entry = self._entries.get(key)
                if entry is None or not entry.done.is_set() or entry.error is not None:
                    return items  # dropped or being listed again meanwhile: the listing we had
                dirty = self._dirty.get(collection, {})
                todo = {n: k for n, k in dirty.items() if only is None or n in only}
                if not todo:
                    return cast(list[Json], entry.value)
            if len(todo) > MAX_NAMED_REFRESH:  # a name filter that long: list it all again instead
                fresh_all = load_all()
                with self._lock:
                    entry.value = fresh_all
                    dirty.clear()
                return fresh_all
            fresh = [r for r in load_named(set(todo)) if r["name"] in todo]
            with self._lock:
                merged = [r for r in entry.value if r["name"] not in todo] + fresh
                entry.value = merged
                for name, count in todo.items():
                    if dirty.get(name) == count:  # not written again meanwhile
                        del dirty[name]
                return merged


#: The collections every Service's plan reads (the subnetwork, target pools and legacy checks only
#: some): a round's first plan lists them at the same time.
PLAN_COLLECTIONS = ("healthChecks", "backendServices", "forwardingRules", "addresses", "firewalls")


class Reader:
    def __init__(self, compute: Compute) -> None:
        self.compute = compute
        self.round: ReadRound | None = None
        self._round_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @contextmanager
    def read_round(self, *, fresh: bool = False) -> Iterator[ReadRound]:
        """A read round (GCPProvider.read_round): nesting reuses the open round, unless ``fresh``.

        ``fresh`` (the controller's rollover, lbprov.provider.read_round): a new round replaces the
        open one at once, for the plans in flight too (every read looks :attr:`round` up when it is
        made), and the replaced round's exit leaves the new one in place. A plan then never finds no
        round between the two: outside a round each plan reads its resources by name, about 8 calls
        where the round answers from memory.
        """
        with self._round_lock:
            outer = self.round
            if outer is not None and not fresh:
                rnd, mine = outer, False
            else:
                rnd, mine = ReadRound(), True
                self.round = rnd
        try:
            yield rnd
        finally:
            if mine:
                with self._round_lock:
                    if self.round is rnd:
                        self.round = None

    def warm(self, group_prefix: str) -> None:
        """List what every plan of a round reads at the same time, where the round lacks it.

        A plan reads one listing after another; the round's first plan (and the plans waiting on
        it) paid each listing's round trip in turn: five collections (several pages each at 1,000
        Services), the instance groups, then each group's members. Listing them concurrently
        makes the wait the longest chain instead of the sum (issue 14). Loaded into the round
        exactly as a plan would load them (single flight), so the reads are the same ones.
        """
        round_ = self.round
        if round_ is None:
            return
        jobs: list[Callable[[], object]] = [
            functools.partial(round_.get, ("list", c), functools.partial(self.compute.list_items, c))
            for c in PLAN_COLLECTIONS
            if round_.read_at(("list", c)) is None
        ]
        if round_.read_at(("groups", group_prefix)) is None:
            jobs.append(functools.partial(self._warm_groups, group_prefix))
        self._run(jobs)

    def _warm_groups(self, prefix: str) -> None:
        groups = self.groups(prefix)
        self._run(
            [functools.partial(self.members, *key) for key in sorted(groups) if groups[key].get("size", 1)]
        )

    def _run(self, jobs: list[Callable[[], object]]) -> None:
        """Run ``jobs`` concurrently (the last one in this thread); raise the first error."""
        if not jobs:
            return
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lbprov-gcp-read")
            pool = self._pool
        futures = [pool.submit(job) for job in jobs[:-1]]
        jobs[-1]()
        for future in futures:
            future.result()

    def _all(self, rnd: ReadRound, collection: str, only: set[str] | None = None) -> list[Json]:
        return rnd.listing(
            collection,
            lambda: self.compute.list_items(collection),
            lambda names: self.compute.list_items(collection, f'name eq "{_alternation(names)}"'),
            only,
        )

    # Each read below looks the round up once (``rnd``) and uses that round throughout: the round
    # can be handed over to a new one (read_round(fresh=True)), or end, while the read runs.

    def all(self, collection: str) -> list[Json]:
        """Every resource of a collection in the region (global for firewalls)."""
        if (rnd := self.round) is not None:
            return self._all(rnd, collection)
        return self.compute.list_items(collection)

    @staticmethod
    def _lookup(
        rnd: ReadRound, collection: str, listed: list[Json], field: str, values: Iterable[Any]
    ) -> list[Json]:
        """The resources of a round's listing whose ``field`` is one of ``values`` (indexed)."""
        by_value = rnd.index(collection, listed, field)
        return [r for v in sorted(set(values)) for r in by_value.get(v, ())]

    def named(self, collection: str, names: Iterable[str]) -> dict[str, Json]:
        wanted = set(names)
        if (rnd := self.round) is not None:
            listed = self._all(rnd, collection, wanted)
            return {r["name"]: r for r in self._lookup(rnd, collection, listed, "name", wanted)}
        found = self.compute.list_items(collection, f'name eq "{_alternation(wanted)}"')
        return {r["name"]: r for r in found if r["name"] in wanted}

    def addresses(self, names: str | Iterable[str], ips: str | Iterable[str] | None) -> list[Json]:
        """The addresses called ``names`` (one per IP family) and any address holding one of ``ips``."""
        wanted = {names} if isinstance(names, str) else set(names)
        held = set() if ips is None else {ips} if isinstance(ips, str) else set(ips)
        if (rnd := self.round) is not None:
            listed = self._all(rnd, "addresses", None if held else wanted)
            found = {id(a): a for a in self._lookup(rnd, "addresses", listed, "name", wanted)}
            found.update({id(a): a for a in self._lookup(rnd, "addresses", listed, "address", held)})
            return list(found.values())
        terms = [f'(name = "{n}")' for n in sorted(wanted)] + [f'(address = "{ip}")' for ip in sorted(held)]
        query = " OR ".join(terms) if len(terms) > 1 else f'name = "{next(iter(wanted))}"'
        return self.compute.list_items("addresses", query)

    def subnetwork(self, name: str) -> Json | None:
        """A subnetwork of the region (its stack type tells whether it serves IPv6)."""
        if (rnd := self.round) is None:
            return self.compute.get("subnetworks", name)
        return rnd.get(("subnetwork", name), lambda: self.compute.get("subnetworks", name))

    def instances(self, zone: str, names: Iterable[str]) -> list[Json]:
        """The named instances of one zone (one filtered list; the whole zone inside a read round)."""
        wanted = set(names)
        if (rnd := self.round) is not None:
            listed = rnd.get(
                ("list", f"instances/{zone}"), lambda: self.compute.list_items("instances", zone=zone)
            )
            return [i for i in listed if i["name"] in wanted]
        found = self.compute.list_items("instances", f'name eq "{_alternation(wanted)}"', zone=zone)
        return [i for i in found if i["name"] in wanted]

    def rules_holding(self, ip: str) -> list[Json]:
        """Forwarding rules whose IP is ``ip`` (a requested IP that another load balancer holds)."""
        if (rnd := self.round) is not None:
            listed = self._all(rnd, "forwardingRules")
            return self._lookup(rnd, "forwardingRules", listed, "IPAddress", [ip])
        return self.compute.list_items("forwardingRules", f'IPAddress = "{ip}"')

    def mentioning(self, collection: str, text: str) -> list[Json]:
        """Resources whose description contains ``text`` (callers check ownership exactly)."""
        if (rnd := self.round) is not None:
            return [r for r in self._all(rnd, collection) if text in (r.get("description") or "")]
        return self.compute.list_items(collection, f'description eq ".*{text}.*"')

    def groups(self, prefix: str) -> dict[tuple[str, str], Json]:
        """Instance groups named ``prefix*`` in the region, by (zone, name)."""
        return self.groups_at(prefix)[0]

    def groups_at(self, prefix: str) -> tuple[dict[tuple[str, str], Json], float | None]:
        """:meth:`groups` and when that listing was asked for (monotonic; None: read just now,
        outside a round), from the same round: a round handed over meanwhile has its own time."""
        if (rnd := self.round) is None:
            return self.compute.instance_groups(prefix), None
        found = rnd.get(("groups", prefix), lambda: self.compute.instance_groups(prefix))
        return found, rnd.read_at(("groups", prefix))

    def members(self, zone: str, name: str) -> list[str]:
        if (rnd := self.round) is None:
            return self.compute.group_members(zone, name)
        return list(rnd.get(("members", zone, name), lambda: self.compute.group_members(zone, name)))

    def members_of(self, groups: Mapping[tuple[str, str], Json]) -> dict[tuple[str, str], list[str]]:
        """The members of each of ``groups`` (as :meth:`groups` lists them), read at the same time:
        an empty group (``size`` 0) costs no read."""
        out: dict[tuple[str, str], list[str]] = {key: [] for key in groups}

        def read(key: tuple[str, str]) -> None:
            out[key] = self.members(*key)

        self._run([functools.partial(read, key) for key in sorted(groups) if groups[key].get("size", 1)])
        return out

    def wrote(self, collection: str, zone: str | None = None, names: Iterable[str] = ()) -> None:
        if (rnd := self.round) is not None:
            rnd.invalidate(collection, zone, names)


@functools.lru_cache(maxsize=8192)
def _cidr(value: str) -> str:
    """A range as GCE may echo it (a bare IP or a CIDR) in one form.

    Kept for the last 8,192 ranges: every plan compares its firewall's destination (the Service's
    IP) this way, and parsing an address was an eighth of a resync's planning CPU (issue 14).
    """
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return value


def view_of(collection: str, res: Json) -> Json:
    """The managed fields of a resource as read from the API, in the shape of the desired specs' views."""
    _name = N.last_segment
    if collection == "healthChecks":
        http = res.get("httpHealthCheck") or {}
        return {
            "type": res.get("type"),
            "port": http.get("port"),
            "requestPath": http.get("requestPath"),
            **{k: res.get(k) for k in HC_TIMING},
        }
    if collection == "firewalls":
        return {
            "network": _name(res.get("network")),
            "direction": res.get("direction"),
            "priority": res.get("priority"),
            "sourceRanges": sorted(res.get("sourceRanges") or []),
            "destinationRanges": sorted(_cidr(r) for r in res.get("destinationRanges") or []),
            "targetTags": sorted(res.get("targetTags") or []),
            "allowed": [
                {"IPProtocol": a.get("IPProtocol"), "ports": list(a.get("ports") or [])}
                for a in res.get("allowed") or []
            ],
        }
    if collection == "addresses":
        v6 = res.get("ipVersion") == "IPV6"
        view: Json = {"addressType": res.get("addressType", "EXTERNAL"), "address": res.get("address")}
        if view["addressType"] == "EXTERNAL":
            view["networkTier"] = res.get("networkTier", "PREMIUM")
            if v6:
                view["subnetwork"] = _name(res.get("subnetwork"))
        else:
            view["subnetwork"] = _name(res.get("subnetwork"))
            view["purpose"] = res.get("purpose")
        if v6:
            view["ipVersion"] = "IPV6"
        return view
    if collection == "backendServices":
        backends = []
        for b in res.get("backends") or []:
            parts = str(b.get("group", "")).rstrip("/").split("/")
            backends.append(f"{parts[-3]}/{parts[-1]}" if len(parts) >= 3 else parts[-1])
        hcs = res.get("healthChecks") or []
        return {
            "loadBalancingScheme": res.get("loadBalancingScheme"),
            "protocol": res.get("protocol"),
            "sessionAffinity": res.get("sessionAffinity", "NONE"),
            "healthCheck": _name(hcs[0]) if len(hcs) == 1 else [_name(h) for h in hcs],
            "backends": sorted(backends),
            "network": _name(res.get("network")),
        }
    if collection == "forwardingRules":
        fr: Json = {
            "loadBalancingScheme": res.get("loadBalancingScheme"),
            "IPProtocol": res.get("IPProtocol"),
            "ports": "all" if res.get("allPorts") else list(res.get("ports") or [res.get("portRange")]),
            "backendService": _name(res.get("backendService")),
        }
        v6 = res.get("ipVersion") == "IPV6"
        if v6:
            fr["ipVersion"] = "IPV6"
        if res.get("loadBalancingScheme") == "INTERNAL":
            fr["subnetwork"] = _name(res.get("subnetwork"))
            fr["allowGlobalAccess"] = bool(res.get("allowGlobalAccess"))
        else:
            fr["networkTier"] = res.get("networkTier", "PREMIUM")
            if v6:
                fr["subnetwork"] = _name(res.get("subnetwork"))
        return fr
    raise ValueError(collection)


def owned_load_balancers(reader: Reader, cluster: str, provider: str) -> list[OwnedLoadBalancer]:
    """Every Service's load balancer that this cluster owns, by the tags in the descriptions (for gc),
    with the cluster identity its resources carry."""
    r_ = reader
    by_uid: dict[str, dict[str, Any]] = {}
    for kind, collection in (
        ("forwarding-rule", "forwardingRules"),
        ("backend-service", "backendServices"),
        ("health-check", "healthChecks"),
        ("firewall-rule", "firewalls"),
        ("address", "addresses"),
    ):
        for res in r_.mentioning(collection, naming.cluster_tag_key(cluster)):
            tags = N.ownership(res.get("description"))
            uid = tags.get(naming.SERVICE_UID_TAG)
            if not uid or not naming.is_owned_by_cluster(tags, cluster):
                continue
            entry = by_uid.setdefault(uid, {"tags": tags, "resources": [], "ids": set()})
            entry["resources"].append((kind, res["name"]))
            entry["ids"].add(N.identity(res))
            if naming.LB_KIND_TAG in tags:
                entry["tags"] = tags
    out = []
    for uid, entry in sorted(by_uid.items()):
        tags = entry["tags"]
        ns, _, name = tags.get(naming.SERVICE_NAME_TAG, "/").partition("/")
        out.append(
            OwnedLoadBalancer(
                provider,
                ServiceRef(ns, name, uid),
                naming.lb_name(uid),
                tags.get(naming.LB_KIND_TAG, "gcp-passthrough"),
                tuple(sorted(entry["resources"])),
                # the identity only when every resource carries the same one: gc deletes nothing less
                cluster_id=next(iter(entry["ids"])) if len(entry["ids"]) == 1 else None,
            )
        )
    return out
