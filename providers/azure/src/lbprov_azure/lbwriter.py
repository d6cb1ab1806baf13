"""The shared load balancer's writer: serialised, optimistic (If-Match) and coalescing.

Every Service of a cluster keeps its frontend, probes and rules on ONE Azure load balancer, and an
ARM PUT replaces the whole load balancer. Two Services writing at once therefore lose each other's
rules unless writes are ordered (upstream: k/k#84052), and writing one Service at a time is slow
(upstream takes about an hour for 500 Services). This module does both things right:

* **Serialised per LB in the process**: one :class:`SharedLBWriter` per load balancer; at most one
  thread writes it at a time.
* **Coalesced**: a Service's apply submits an :class:`LBDelta` (its parts to upsert / delete, whether
  it joins or leaves the LB's Service map, the shared pool) and blocks. The first submitter becomes
  the *leader*: it waits ``window`` seconds, and for applies that announced they are coming (still
  creating their public IP, up to ``max_wait``), takes every pending delta, reads the
  LB once (or reuses the body its last PUT returned), merges all deltas, sends ONE PUT and wakes
  every submitter with the result. Leadership then passes to the oldest waiting submitter, so each
  thread only ever writes its own batch plus whatever queued behind it.
* **Optimistic against other writers** (another replica, a human, Azure itself): the PUT carries
  ``If-Match: <etag>`` (``If-None-Match: *`` to create); on 412 the LB is re-read and the deltas are
  merged again, up to ``max_conflicts`` times.
* **Isolated failures**: if ARM rejects a merged PUT (400), the batch is retried one delta at a
  time, so one bad Service cannot fail the others.
* **Created on first need, deleted with its last Service**: a missing LB is created from the
  delta's template; after a merge that leaves the LB with no Service, frontend, rule or probe, it is
  deleted (If-Match again), if it carries this cluster's identity (``lbprov.io/cluster-id``, see
  :func:`deletable`, which the planner asks too: a plan shows the delete only where apply does it).
  The decision is taken at write time, on the merged state, so two Services leaving at once still
  delete it and a Service joining at that moment still keeps it; a delta whose plan said "delete"
  while the emptied LB now lacks the identity is refused with an error naming the LB.

Only the parts a delta names are touched: foreign frontends, rules and probes on the LB survive
every merge, and a part whose name a Service claims while the LB does not record that Service is an
:class:`~lbprov.model.OwnershipConflict` for that Service alone.
"""

from __future__ import annotations

import copy
import marshal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from lbprov.model import OwnershipConflict
from lbprov_azure import names
from lbprov_azure.desired import view_pool

JSON = dict[str, Any]
#: Read-only inside a sub-resource (back references Azure computes).
_READONLY_PROPS = {
    "provisioningState",
    "resourceGuid",
    "loadBalancingRules",
    "inboundNatRules",
    "inboundNatPools",
    "outboundRules",
    "outboundRule",
    "backendIPConfigurations",
    "ipConfiguration",
}
#: Read-only at the LB's own level (the sub-resource lists are NOT: they are the LB's content).
_READONLY_TOP = {"provisioningState", "resourceGuid"}
_PARTS = ("frontendIPConfigurations", "backendAddressPools", "probes", "loadBalancingRules")


class PreconditionFailed(Exception):
    """The LB changed since it was read (HTTP 412)."""


class WriteRejected(Exception):
    """ARM rejected the body (HTTP 400): the content is at fault, not the timing."""


class StalePlan(Exception):
    """The load balancer is no longer what the plan of a delta saw (:class:`Seen`): nothing of the
    delta was written; plan again on fresh data. (The controller knows the class by its name.)"""


@dataclass(frozen=True)
class Seen:
    """What a plan made from a kept view of the load balancers saw of the LB it writes (the node
    sync: :mod:`lbprov_azure.node_sync`), checked on the body the delta is merged into. The writer
    merges into the LB as it is when the PUT is sent (re-read on 412, since the PUT carries
    If-Match), so a delta whose plan read an older body would otherwise write its pools on top of a
    change it never saw."""

    #: (pool name, its addresses as :func:`~lbprov_azure.desired.view_pool` lists them, or None:
    #: the pool did not exist), one per pool the delta writes
    pools: tuple[tuple[str, tuple[str, ...] | None], ...] = ()


def _pool_view(props: JSON, where: _Names, name: str) -> tuple[str, ...] | None:
    idx = where.where("backendAddressPools", name)
    if idx is None:
        return None
    return tuple(view_pool((props.get("backendAddressPools") or [])[idx])["addresses"])


def _stale(current: JSON, work: JSON, where: _Names, services: set[str], seen: Seen) -> str | None:
    """Why the LB differs from what a delta's plan saw (None: it does not, as far as the plan went).

    The same questions the node sync asks before it plans (it declines where they fail): the LB's
    last operation did not fail, some Service uses it, and each pool it writes is as it saw it."""
    if (current.get("properties") or {}).get("provisioningState") == "Failed":
        return "its last operation failed"
    if not services:
        return "no Service uses it"
    for name, addresses in seen.pools:
        now = _pool_view(work["properties"], where, name)
        if now != addresses:
            return f"backend pool {name!r} holds {list(now) if now is not None else 'nothing (no such pool)'}, not the {list(addresses or ())} planned from"
    return None


class LBStore(Protocol):
    """How the writer reads and writes one load balancer (the provider adapts the SDK to this)."""

    def get(self) -> JSON | None: ...

    def put(self, body: JSON, *, etag: str | None) -> JSON:
        """Create (``etag=None``: ``If-None-Match: *``) or replace (``If-Match: etag``)."""
        ...

    def delete(self, *, etag: str) -> None: ...


@dataclass(frozen=True)
class LBDelta:
    """One Service's change to the shared LB.

    ``upserts``: (field, sub-resource JSON) to create or replace by name; ``deletes``: (field, name)
    to remove; ``join``: add (True) or remove (False) the Service in the LB's Service map, or leave it
    (None); ``pools``: the shared backend pools to write (the IPv4 one, and the IPv6 one of an IPv6
    Service), those that changed; ``template``: the LB body to
    create from when it does not exist.
    """

    service: str
    base: str
    upserts: tuple[tuple[str, JSON], ...] = ()
    deletes: tuple[tuple[str, str], ...] = ()
    join: bool | None = None
    pools: tuple[JSON, ...] = ()
    template: JSON | None = None
    #: tags to set on the LB (the cluster identity, added to older LBs on their next reconcile)
    tags: tuple[tuple[str, str], ...] = ()
    #: write the LB even if the merge changes nothing (its last operation failed)
    repair: bool = False
    #: the identity a delete plan found on the LB: an LB it empties may go if it carries exactly this
    identity: str | None = None
    #: the plan said the LB is deleted (it empties and deletable() held): apply refuses, with an
    #: error naming the LB, a write that would keep it emptied instead
    delete_lb: bool = False
    #: the plan proved that the Service's parts on the LB (and the LB itself, if it lacks lbprov's
    #: tags) are cloud-provider-azure's predecessor of this Service (:mod:`lbprov_azure.diff.adopt`):
    #: they are taken over although the LB's Service map does not record the Service yet
    adopt: bool = False
    #: what the delta's plan saw of the LB (a plan from a kept view): the delta is refused with
    #: :class:`StalePlan`, nothing of it written, where the LB differs from it
    seen: Seen | None = None


@dataclass
class WriterStats:
    submissions: int = 0
    #: batches whose leader has fixed which announced applies it waits for (tests wait for this)
    leads: int = 0
    batches: int = 0
    puts: int = 0
    deletes: int = 0
    conflicts: int = 0
    isolations: int = 0


def _json_copy(value: Any) -> Any:
    """A deep copy of JSON data through ``marshal`` (several times faster than ``copy.deepcopy``,
    which was the merge's largest cost at 1,000 Services: one copy per part upserted); anything
    ``marshal`` does not take is deep-copied."""
    try:
        return marshal.loads(marshal.dumps(value))
    except ValueError:
        return copy.deepcopy(value)


def clean(body: JSON) -> JSON:
    """A PUT-able copy of a GET body: read-only fields dropped.

    The copy is structural: new dicts and lists down to each sub-resource's properties, whose values
    are shared with ``body`` (nothing here or in :func:`_apply` mutates them; bodies the writer and
    the observer hand out are read-only snapshots). A deep copy per merge cost O(size of the LB)
    of CPU for every batch, which grew with the shared load balancer.
    """
    out: JSON = {k: _json_copy(body[k]) for k in ("location", "sku", "tags", "zones") if k in body}
    props = body.get("properties") or {}
    oprops: JSON = {}
    for k, v in props.items():
        if k in _READONLY_TOP:
            continue
        if isinstance(v, list) and k in (*_PARTS, "outboundRules", "inboundNatRules", "inboundNatPools"):
            oprops[k] = [
                {
                    "name": it.get("name"),
                    "properties": {
                        pk: pv for pk, pv in (it.get("properties") or {}).items() if pk not in _READONLY_PROPS
                    },
                }
                for it in v
            ]
        else:
            oprops[k] = _json_copy(v)
    out["properties"] = oprops
    return out


def _snapshot(work: JSON) -> JSON:
    """What :func:`_apply` may change of ``work`` (its lists and tags), copied to roll back to."""
    props = work.get("properties") or {}
    return {
        **work,
        "tags": dict(work.get("tags") or {}),
        "properties": {k: list(v) if isinstance(v, list) else v for k, v in props.items()},
    }


class _Names:
    """Where each part of the merged body is, by field and lower-case name: built once per field and
    merge, kept current by :func:`_apply`. A scan per upsert cost O(parts of the LB) for each part of
    each Service in a batch, which grew with the shared load balancer (issue 14)."""

    def __init__(self, props: JSON) -> None:
        self.props = props
        self._by_field: dict[str, dict[str, int]] = {}

    def where(self, fld: str, name: str) -> int | None:
        found = self._by_field.get(fld)
        if found is None:
            items = self.props.get(fld) or []
            found = self._by_field[fld] = {}
            for i, it in enumerate(items):
                found.setdefault(str(it.get("name", "")).lower(), i)
        return found.get(name.lower())

    def appended(self, fld: str, name: str, at: int) -> None:
        found = self._by_field.get(fld)
        if found is not None:
            found.setdefault(name.lower(), at)

    def removed(self, fld: str) -> None:
        self._by_field.pop(fld, None)  # positions after it moved: built again on the next lookup


def _put(props: JSON, where: _Names, fld: str, item: JSON) -> None:
    """Create or replace the part ``item`` (by name) in ``props[fld]``."""
    items = props.setdefault(fld, [])
    idx = where.where(fld, item["name"])
    if idx is None:
        items.append(_json_copy(item))
        where.appended(fld, item["name"], len(items) - 1)
    else:
        items[idx] = _json_copy(item)


def _apply(work: JSON, delta: LBDelta, lb_label: str, where: _Names, services: set[str]) -> None:
    """Apply one delta to ``work`` (whose parts ``where`` indexes) and to the Service map
    ``services``; a delta that claims a part it does not own changes nothing and raises."""
    props = work["properties"]
    if delta.service not in services and not delta.adopt:
        claimed: set[tuple[str, str]] = set()
        for fld, item in delta.upserts:
            key = (fld, str(item["name"]).lower())
            if where.where(fld, item["name"]) is not None or key in claimed:
                raise OwnershipConflict(
                    f"load balancer {lb_label}: {fld} {item['name']!r} exists but is not recorded as owned "
                    f"by this Service (uid {names.uid_from_token(delta.service)}); lbprov never adopts it"
                )
            claimed.add(key)
    for fld, item in delta.upserts:
        _put(props, where, fld, item)
    for fld, name in delta.deletes:
        if not names.owns_part(delta.base, name):
            continue  # never remove what is not the Service's by name
        items = props.get(fld) or []
        idx = where.where(fld, name)
        if idx is not None:
            del items[idx]
            where.removed(fld)
    for pool in delta.pools:
        _put(props, where, "backendAddressPools", pool)
    if delta.tags:
        work["tags"] = {**(work.get("tags") or {}), **dict(delta.tags)}
    if delta.join is True:
        services.add(delta.service)
    elif delta.join is False:
        services.discard(delta.service)


def _empty(work: JSON) -> bool:
    props = work.get("properties") or {}
    if names.service_tokens(work.get("tags")):
        return False
    return not any(
        props.get(k)
        for k in (
            "frontendIPConfigurations",
            "probes",
            "loadBalancingRules",
            "inboundNatRules",
            "outboundRules",
        )
    )


def deletable(tags: Mapping[str, str] | None, cluster_id: str | None, planned: Iterable[str | None]) -> bool:
    """Whether an emptied load balancer with ``tags`` may be deleted: it carries this cluster's
    identity (``cluster_id``) or the identity a delete plan found on it (``planned``), checked by
    :func:`names.identity_matches` (an LB of unknown identity never goes). The planner and
    :func:`merge` both ask this, so the plan says what apply does."""
    return any(names.identity_matches(tags, i) for i in {cluster_id, *planned})


def _withdrawn(delta: LBDelta) -> LBDelta:
    """``delta`` changing nothing (a refused delta keeps its place, so errors keep their index)."""
    return replace(
        delta,
        upserts=(),
        deletes=(),
        pools=(),
        tags=(),
        join=None,
        repair=False,
        identity=None,
        delete_lb=False,
        seen=None,
    )


@dataclass
class Merged:
    action: str  # "none" | "create" | "update" | "delete"
    body: JSON | None
    errors: dict[int, BaseException] = field(default_factory=dict)


def merge(
    current: JSON | None,
    deltas: list[LBDelta],
    cluster: str,
    lb_label: str,
    cluster_id: str | None = None,
) -> Merged:
    """Pure: the LB after applying ``deltas`` in order to ``current`` (None = does not exist).

    An LB the merge leaves empty is deleted only where it carries this cluster's identity
    (``cluster_id``), or the identity a delete plan found on it (a Service's parts taken from another
    identity's LB on purpose): deleting it is decided from cloud state, not from one Service's plan.
    """
    errors: dict[int, BaseException] = {}
    if (
        current is not None
        and not names.is_cluster_owned(current.get("tags"), cluster)
        and not any(d.adopt for d in deltas)
    ):
        err = OwnershipConflict(
            f"load balancer {lb_label} exists but is not owned by cluster {cluster!r} "
            f"(no tag {names.azure_key('kubernetes.io/cluster/' + cluster)}=owned); lbprov never adopts it"
        )
        return Merged("none", current, dict.fromkeys(range(len(deltas)), err))
    base = clean(current) if current is not None else None
    # a copy of base's lists and tags: _apply replaces parts, never changes one in place
    work = _snapshot(base) if base is not None else None
    where = _Names(work["properties"]) if work is not None else None
    services = names.services_of(work.get("tags")) if work is not None else set()
    applied = False
    for i, d in enumerate(deltas):
        if d.seen is not None:
            if current is None or work is None or where is None:
                why: str | None = "it no longer exists"
            else:
                why = _stale(current, work, where, services, d.seen)
            if why is not None:
                errors[i] = StalePlan(
                    f"load balancer {lb_label}: {why}, which its plan did not see; nothing of the change "
                    "was written: plan again"
                )
                continue
        if work is None:
            if not d.join or d.template is None:
                continue  # nothing to remove from, or update on, a load balancer that does not exist
            work = clean(d.template)
            where = _Names(work["properties"])
            services = names.services_of(work.get("tags"))
        assert where is not None
        try:
            _apply(work, d, lb_label, where, services)
            applied = True
        except OwnershipConflict as exc:
            errors[i] = exc
    if work is None:
        return Merged("none", None, errors)
    if applied:  # the Service map, packed once for the batch
        work["tags"] = names.with_services(work.get("tags"), services)
    if current is None:
        return Merged("create", work, errors) if not _empty(work) else Merged("none", None, errors)
    if _empty(work):
        if deletable(work.get("tags"), cluster_id, (d.identity for d in deltas)):
            return Merged("delete", None, errors)
        # The plan of a delta that says "delete" saw the identity, which the LB lacks now (its tags
        # changed since): keep the LB (the guard), and refuse those deltas, not a silent keep --
        # nothing of theirs is written; the retry plans again from what is there.
        refused = {i for i, d in enumerate(deltas) if d.delete_lb and i not in errors}
        if refused:
            err = OwnershipConflict(
                f"load balancer {lb_label}: the plan deletes it (its last Service leaves) but it no longer "
                f"carries this cluster's identity ({names.CLUSTER_ID_KEY}={cluster_id}) or the one the plan "
                f"found: lbprov keeps a load balancer it cannot prove is this cluster's; plan again"
            )
            rest = [_withdrawn(d) if i in refused else d for i, d in enumerate(deltas)]
            again = merge(current, rest, cluster, lb_label, cluster_id)
            return Merged(again.action, again.body, {**again.errors, **dict.fromkeys(refused, err)})
    if work == base and not any(d.repair for d in deltas):
        return Merged("none", current, errors)
    return Merged("update", work, errors)


@dataclass(eq=False)
class _Ticket:
    delta: LBDelta
    event: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    done: bool = False
    result: JSON | None = None
    error: BaseException | None = None


_UNKNOWN: Any = object()


@dataclass(eq=False)
class Announcement:
    """A promise to submit to a writer soon (see :meth:`SharedLBWriter.announce`)."""

    writer: AnnouncingWriter
    #: the order of announcements: a leader waits only for those made before it took the lead
    seq: int = 0
    spent: bool = False

    def __enter__(self) -> Announcement:
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.withdraw(self)


class AnnouncingWriter:
    """The announcements of a batch writer whose leader waits for applies on their way (the LB
    writer and the NSG rules' :class:`~lbprov_azure.nsgwriter.RuleWriter`): a leader waits only for
    those announced before it took the lead, up to its ``max_wait``."""

    def _init_announcements(self) -> None:
        self._lock = threading.Condition()
        self._announced = 0  # announcements made so far (their seq)
        self._expected: set[int] = set()  # seqs of announced submitters still on their way

    def announce(self) -> Announcement:
        """Say that a submission is coming; pass the announcement to ``submit``, or
        :meth:`withdraw` it."""
        with self._lock:
            self._announced += 1
            self._expected.add(self._announced)
            return Announcement(self, self._announced)

    def withdraw(self, announcement: Announcement) -> None:
        with self._lock:
            self._spend(announcement)

    def _own(self, announcement: Announcement | None) -> Announcement | None:
        """``announcement`` if it is this writer's, to be spent by :meth:`_spend` in the same hold
        of the lock that makes the submission pending; another writer's is withdrawn there."""
        if announcement is not None and announcement.writer is not self:
            announcement.writer.withdraw(announcement)
            return None
        return announcement

    def _spend(self, announcement: Announcement | None) -> None:
        """Mark ``announcement`` spent and wake the leader that may wait for it (the caller holds
        the lock). A submit spends its own announcement in the same hold of the lock in which it
        makes its ticket pending: with the two apart, a leader woken by the withdrawal could take
        its batch in between, and the announced apply went out in a write of its own (found by the
        session 9 review)."""
        if announcement is not None and not announcement.spent:
            announcement.spent = True
            self._expected.discard(announcement.seq)
            self._lock.notify_all()

    def _await_announced(self, cut: int, deadline: float) -> None:
        """Wait (the caller holds the lock) until every apply announced up to ``cut`` has submitted
        or withdrawn, or until ``deadline``. Only applies announced before a batch began are waited
        for: with syncs that wait without a worker slot (lbprov.slots), new ones announce all the
        time, and waiting for them too would hold every batch for ``max_wait``."""
        while any(s <= cut for s in self._expected) and (left := deadline - time.monotonic()) > 0:
            self._lock.wait(timeout=left)


class SharedLBWriter(AnnouncingWriter):
    """Serialises and coalesces the writes of one shared load balancer (see the module doc)."""

    def __init__(
        self,
        store: LBStore,
        cluster: str,
        label: str,
        *,
        window: float = 0.01,
        max_wait: float = 1.0,
        max_conflicts: int = 8,
        cluster_id: str | None = None,
        on_change: Callable[[JSON | None], None] | None = None,
    ) -> None:
        self.store = store
        #: told each body this writer wrote (None: deleted), in write order: the batches of one LB
        #: run one at a time, so a read round kept current this way never goes back to an older
        #: body (submitters reporting their results themselves could, when two of them race)
        self.on_change = on_change
        self.cluster = cluster
        self.cluster_id = cluster_id
        self.label = label
        self.window = window
        self.max_wait = max_wait
        self.max_conflicts = max_conflicts
        self.stats = WriterStats()
        self._init_announcements()
        self._pending: list[_Ticket] = []
        self._busy = False
        self._cache: Any = _UNKNOWN  # the LB as our last write left it (None = deleted)

    def submit(self, delta: LBDelta, announcement: Announcement | None = None) -> JSON | None:
        """Apply ``delta`` (merged with whatever else is pending); returns the LB as written (None = gone)."""
        ticket, announcement = _Ticket(delta), self._own(announcement)
        with self._lock:
            self._spend(announcement)  # in one hold with the ticket's append
            self.stats.submissions += 1
            self._pending.append(ticket)
            if not self._busy:
                self._busy = True
                ticket.lead = True
        while not ticket.done:
            if ticket.lead:
                self._lead(ticket)
            else:
                ticket.event.wait()
                ticket.event.clear()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def observe(self, body: JSON | None) -> None:
        """Offer a fresh read of the LB (from a plan) so the next batch need not read it again.

        Only taken while the writer knows nothing newer; a stale offer costs one 412 and a re-read.
        """
        with self._lock:
            if self._cache is _UNKNOWN and not self._busy:
                self._cache = body  # read-only snapshot (see clean)

    def invalidate(self) -> None:
        """Forget the cached body (the next batch re-reads the LB)."""
        with self._lock:
            self._cache = _UNKNOWN

    def _lead(self, me: _Ticket) -> None:
        deadline = time.monotonic() + self.max_wait
        with self._lock:
            cut = self._announced  # only applies announced before the batch began are waited for
            self.stats.leads += 1
        if self.window:
            time.sleep(self.window)
        with self._lock:
            self._await_announced(cut, deadline)
            batch, self._pending = self._pending, []
        self._write(batch)
        with self._lock:
            if self._pending:
                nxt = self._pending[0]
                nxt.lead = True
                nxt.event.set()
            else:
                self._busy = False
        me.lead = False

    def _current(self) -> JSON | None:
        if self._cache is _UNKNOWN:
            self._cache = self.store.get()
        return self._cache if self._cache is not None else None  # merge() copies what it changes

    def _finish(self, batch: list[_Ticket], result: JSON | None, errors: dict[int, BaseException]) -> None:
        for i, t in enumerate(batch):
            t.error = errors.get(i)
            t.result = result  # read-only: callers only read it
            t.done = True
            t.event.set()

    def _write(self, batch: list[_Ticket]) -> None:
        """Write one batch; never raises (errors go to the batch's tickets)."""
        self.stats.batches += 1
        deltas = [t.delta for t in batch]
        try:
            for _ in range(self.max_conflicts + 1):
                current = self._current()
                merged = merge(current, deltas, self.cluster, self.label, self.cluster_id)
                try:
                    if merged.action == "none":
                        result = current
                    elif merged.action == "delete":
                        assert current is not None
                        self.stats.deletes += 1
                        self.store.delete(etag=current["etag"])
                        result = None
                    else:
                        assert merged.body is not None
                        self.stats.puts += 1
                        etag = current["etag"] if current is not None else None
                        result = self.store.put(merged.body, etag=etag)
                except PreconditionFailed:
                    self.stats.conflicts += 1
                    self._cache = _UNKNOWN
                    continue
                self._cache = result
                if self.on_change is not None and merged.action != "none":
                    self.on_change(result)
                self._finish(batch, result, merged.errors)
                return
            raise PreconditionFailed(
                f"load balancer {self.label} kept changing: {self.max_conflicts + 1} writes lost the ETag race"
            )
        except WriteRejected as exc:
            self._cache = _UNKNOWN
            if len(batch) > 1:
                self.stats.isolations += 1
                for t in batch:
                    self._write([t])
                return
            self._finish(batch, None, {0: exc.__cause__ or exc})
        except BaseException as exc:
            self._cache = _UNKNOWN
            self._finish(batch, None, dict.fromkeys(range(len(batch)), exc))
