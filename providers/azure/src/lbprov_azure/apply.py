"""Plan -> ARM writes, in the plan's order (the deployer).

Consecutive changes of one shared load balancer become ONE submission to its
:class:`~lbprov_azure.lbwriter.SharedLBWriter` (the write-side concurrency: serialised per LB,
If-Match, coalesced across Services); public IPs are written through the
:class:`~lbprov_azure.pipwriter.PublicIPWriter` (bounded, the sync's worker slot lent meanwhile); NSG
rules are written directly, or through their rule's writer when shared. Values that
are only known after a write (the frontend address an NSG rule targets) are resolved here.

A new Service's writes overlap where nothing depends on them (:mod:`lbprov_azure.overlap`): its LB
group is submitted once its public IP's operation has succeeded, beside the IP's final GET, and NSG
rule additions whose address is known go beside the LB write; apply waits for all of them.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from azure.core.exceptions import HttpResponseError

from lbprov.model import Action, Change, Ingress, Plan
from lbprov.side_writes import wait_all
from lbprov.slots import released
from lbprov_azure import client as azclient
from lbprov_azure.desired import LB_FIELDS, Ids, destinations, family_of, fill_frontend, with_destinations
from lbprov_azure.diff import Priorities, options_of
from lbprov_azure.lbwriter import Announcement, LBDelta, PreconditionFailed, SharedLBWriter, WriteRejected
from lbprov_azure.nsgwriter import RuleDelta, RuleWriter, merged_destinations
from lbprov_azure.observe import Observer, find, items
from lbprov_azure.overlap import adds_only, independent_rule_changes
from lbprov_azure.pipwriter import PublicIPWriter
from lbprov_azure.settings import AzureSettings

JSON = dict[str, Any]
log = logging.getLogger(__name__)

#: Threads for the writes an apply sends beside its own (:mod:`lbprov_azure.overlap`): a new
#: Service's LB submission (waiting for its batch), or its NSG rule additions (one per independent
#: rule change: a Service with per-port rules may hold several at once). The controller runs at most
#: 4 x workers syncs at once (lbprov.slots), 40 at its default of 10. The pool should not be what
#: bounds them: an LB submission queued here keeps its announcement, and the LB's leader waits for it
#: up to coalesce_max_wait_seconds (a stall, never a deadlock: every wait is bounded).
#: ThreadPoolExecutor starts threads only as they are needed, so the cap costs nothing below it.
SIDE_THREADS = 512


def _rule_key(name: str) -> str:
    """A shared NSG rule's key among an apply's announcements (LB names have no ':')."""
    return "nsg:" + name.lower()


class _Store:
    """Adapts one load balancer's SDK calls to :class:`~lbprov_azure.lbwriter.LBStore`."""

    def __init__(self, applier: Applier, name: str) -> None:
        self.a = applier
        self.name = name

    def get(self) -> JSON | None:
        return self.a.seen.lb(self.name, fresh=True)

    def put(self, body: JSON, *, etag: str | None) -> JSON:
        headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}
        s = self.a.settings
        try:
            self.a.seen.kept.writing(self.name)
            return self.a.seen.call(
                "loadBalancers.create_or_update",
                lambda: azclient.put_json(
                    s,
                    self.a.seen.arm,
                    Ids(s.subscription_id).lb(s.resource_group, self.name),
                    body,
                    headers,
                    self.a.timeout,
                    f"load balancer {self.name}",
                ),
            )
        except BaseException as exc:
            if (failed := self._failed(exc)) is exc:
                raise
            raise failed from exc

    def delete(self, *, etag: str) -> None:
        rg = self.a.settings.resource_group
        lbs = self.a.seen.client.load_balancers
        try:
            self.a.seen.kept.writing(self.name)
            self.a.seen.call(
                "loadBalancers.delete",
                lambda: azclient.delete(
                    self.a.settings,
                    lambda polling: lbs.begin_delete(
                        rg, self.name, headers={"If-Match": etag}, polling=polling
                    ),
                    self.a.timeout,
                    f"delete load balancer {self.name}",
                ),
            )
        except BaseException as exc:
            if (failed := self._failed(exc)) is exc:
                raise
            raise failed from exc

    def _failed(self, exc: BaseException) -> BaseException:
        """What a failed write raises; the kept listing (:mod:`lbprov_azure.kept`) forgets it: the
        load balancer is now as nobody here knows (412: someone else wrote it)."""
        self.a.seen.kept.forget(self.name)
        return self._translate(exc) if isinstance(exc, HttpResponseError) else exc

    @staticmethod
    def _translate(exc: HttpResponseError) -> BaseException:
        if exc.status_code == 412:
            return PreconditionFailed(str(exc))
        if exc.status_code == 400:
            return WriteRejected(str(exc))
        return exc


class Applier:
    """Executes plans; owns one :class:`SharedLBWriter` per load balancer name."""

    def __init__(self, settings: AzureSettings, seen: Observer, priorities: Priorities) -> None:
        self.settings = settings
        self.seen = seen
        self.priorities = priorities
        self.timeout = settings.operation_timeout_seconds
        self._writers: dict[str, SharedLBWriter] = {}
        self._lock = threading.Lock()
        self._rule_writers: dict[str, RuleWriter] = {}
        self.pips = PublicIPWriter(settings.public_ip_writers)
        self._pool: ThreadPoolExecutor | None = None  # the NSG rule changes beside LB writes

    def _side_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(SIDE_THREADS, thread_name_prefix="lbprov-azure-apply")
            return self._pool

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
                    cluster_id=self.settings.cluster_id,
                    on_change=functools.partial(self.seen.wrote_lb, lb),
                )
                self._writers[lb] = w
            return w

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        changes = list(plan.changes)
        announced: dict[str, Announcement] = {}
        lbs = list(dict.fromkeys(str(ch.data["lb"]) for ch in changes if ch.data.get("lb")))
        # Shared NSG rules are announced only by an apply that first creates its public IP: its rule
        # delta follows the IP, beside the LB write (lbprov_azure.overlap). Other applies reach their
        # rules after an LB batch, and a rule's leader waiting for them would wait for that batch.
        new_ip = bool(changes) and changes[0].kind == "public-ip" and changes[0].action is Action.CREATE
        rules = list(
            dict.fromkeys(
                str(ch.data["name"])
                for ch in changes
                if new_ip and ch.kind == "nsg-rule" and ch.data.get("shared")
            )
        )
        once: list[bool] = []

        def announce() -> None:
            """Tell each LB's and shared NSG rule's writer this apply is coming, so that its leader
            can wait for it."""
            if not once:
                once.append(True)
                for lbn in lbs:
                    announced[lbn] = self.writer(lbn).announce()
                for rule in rules:
                    announced[_rule_key(rule)] = self.rule_writer(rule).announce()

        # An apply that first creates its public IP announces itself when that write starts: the
        # PublicIPWriter's bound may hold it behind others, and a leader waiting for applies whose
        # public IP has not started would hold its batch for coalesce_max_wait_seconds.
        if not (changes and changes[0].kind == "public-ip"):
            announce()
        try:
            lb_bodies, pip_ips = self._apply_changes(changes, announced, announce)
        finally:
            for a in list(announced.values()):
                a.writer.withdraw(a)
        if plan.intent is None:
            return ()
        opts = options_of(plan.intent)
        # one address per family, primary first (plan.data["frontends"]: family, frontend name and
        # the address the plan knew)
        fronts = plan.data.get("frontends") or [["IPv4", plan.intent.lb_name, None]]
        lbn = str(plan.data.get("lb"))
        out: list[Ingress] = []
        for family, fe_name, known in fronts:
            if opts.internal:
                addr = known
                if lbn in lb_bodies:
                    fe = find(items(lb_bodies[lbn], "frontendIPConfigurations"), fe_name)
                    addr = ((fe or {}).get("properties") or {}).get("privateIPAddress")
            else:
                addr = pip_ips.get(family) or known
            if addr:
                out.append(Ingress(ip=addr))
        if not opts.internal and out:
            # azure-additional-public-ips follow the frontend's address, as upstream's status
            out.extend(Ingress(ip=ip) for ip in opts.additional_public_ips)
        return tuple(out) if out else plan.ingress

    def _apply_changes(
        self, changes: list[Change], announced: dict[str, Announcement], announce: Callable[[], None]
    ) -> tuple[dict[str, JSON | None], dict[str, str]]:
        """Execute ``changes`` in order; consecutive changes of one LB become one writer submission.

        Returns the LB bodies as written and the addresses of public IPs created or updated, by family.
        """
        lb_bodies: dict[str, JSON | None] = {}
        pip_ips: dict[str, str] = {}
        i = 0
        while i < len(changes):
            ch = changes[i]
            lbn = ch.data.get("lb")
            if lbn:
                j = i
                while j < len(changes) and changes[j].data.get("lb") == lbn:
                    j += 1
                self.seen.writing()
                # the writer tells the read round each body it writes, in write order (on_change);
                # the wait for the batch gives the worker slot to another sync (lbprov.slots)
                delta = self._delta(changes[i:j])
                # the NSG rule additions whose address is known go out beside the LB write
                # (lbprov_azure.overlap); apply waits for them before it goes on
                m = independent_rule_changes(changes, j, changes[i:j], pip_ips)
                side = [(ch, self._frontend_address(ch, {}, pip_ips)) for ch in changes[j:m]]
                with released():
                    beside: list[Future[None]] = []
                    try:
                        # started inside the try: a submit that raises (no thread could be
                        # started) still waits for those already started
                        for ch, addr in side:
                            beside.append(self._side_pool().submit(self._apply_nsg_rule, ch, addr, announced))
                        # the announcement leaves ``announced`` only as it is handed to the writer
                        # (whose submit withdraws or uses it): taken earlier, an error before the
                        # submit left it pending for good, and every later batch of the LB waited
                        # coalesce_max_wait_seconds for it
                        lb_bodies[lbn] = self.writer(lbn).submit(delta, announced.pop(lbn, None))
                    except BaseException:
                        wait_all(beside, raise_first=False, log=log)  # none goes on after the apply
                        raise
                    wait_all(beside, raise_first=True, log=log)
                i = m
                continue
            if ch.kind == "public-ip" and (bounds := self._new_pips_then_lb(changes, i)):
                i = self._pips_beside_lb(changes, i, *bounds, announced, announce, lb_bodies, pip_ips)
                continue
            if ch.kind == "public-ip":
                made = self._apply_pip(ch, announce)
                if made:
                    pip_ips[family_of(made)] = made
            elif ch.kind == "nsg-rule":
                self._apply_nsg_rule(ch, self._frontend_address(ch, lb_bodies, pip_ips), announced)
            else:  # pragma: no cover - plans only hold the kinds above
                raise ValueError(f"unknown change kind {ch.kind!r}")
            i += 1
        return lb_bodies, pip_ips

    @staticmethod
    def _new_pips_then_lb(changes: list[Change], i: int) -> tuple[int, int] | None:
        """Where the LB group starts and ends, if ``changes[i:]`` starts with public IPs to create
        followed by one LB group of additions (a new Service's shape); else None."""
        p = i
        while p < len(changes) and changes[p].kind == "public-ip" and changes[p].action is Action.CREATE:
            p += 1
        lbn = changes[p].data.get("lb") if p < len(changes) else None
        if p == i or not lbn:
            return None
        j = p
        while j < len(changes) and changes[j].data.get("lb") == lbn:
            j += 1
        return (p, j) if adds_only(changes[p:j]) else None  # a group that removes anything: the plan's order

    def _pips_beside_lb(
        self,
        changes: list[Change],
        i: int,
        p: int,
        j: int,
        announced: dict[str, Announcement],
        announce: Callable[[], None],
        lb_bodies: dict[str, JSON | None],
        pip_ips: dict[str, str],
    ) -> int:
        """New public IPs ``changes[i:p]``, then the LB group ``changes[p:j]``: the group's
        submission starts as soon as the last public IP's operation has succeeded, beside that IP's
        final GET and the NSG rule additions that follow the group (:mod:`lbprov_azure.overlap`).

        ARM refuses a frontend whose public IP has not succeeded yet (the emulator's
        ``ReferencedResourceNotProvisioned``), so the group waits for the operation, not for the GET
        that only tells the address (which the LB does not need: the frontend names the IP by id).
        Returns the index after the changes done here.
        """
        lbn = str(changes[p].data["lb"])
        delta = self._delta(changes[p:j])
        started: list[Future[JSON | None]] = []

        def start_lb() -> None:
            if not started:
                self.seen.writing()
                submit, pool = self.writer(lbn).submit, self._side_pool()
                announcement = announced.pop(lbn, None)
                try:
                    started.append(pool.submit(submit, delta, announcement))
                except BaseException:  # e.g. no thread could be started: apply's finally withdraws it
                    if announcement is not None:
                        announced[lbn] = announcement
                    raise

        try:
            for k in range(i, p):
                made = self._apply_pip(changes[k], announce, start_lb if k == p - 1 else None)
                if made:
                    pip_ips[family_of(made)] = made
            start_lb()  # no operation status was polled (an answer already final)
            m = independent_rule_changes(changes, j, changes[p:j], pip_ips)
            for ch in changes[j:m]:
                self._apply_nsg_rule(ch, self._frontend_address(ch, {}, pip_ips), announced)
            with released():  # the wait for the LB's batch gives the worker slot to another sync
                lb_bodies[lbn] = started[0].result()
        except BaseException:
            wait_all(started, raise_first=False, log=log)  # none goes on after the apply
            raise
        return m

    @staticmethod
    def _delta(group: list[Change]) -> LBDelta:
        first = group[0].data
        upserts: list[tuple[str, JSON]] = []
        deletes: list[tuple[str, str]] = []
        join: bool | None = None
        pools: dict[str, JSON] = {}
        template: JSON | None = None
        tags: dict[str, str] = {}
        repair = False
        adopt = False
        delete_lb = False
        identity: str | None = None
        for ch in group:
            repair = repair or bool(ch.data.get("repair"))
            adopt = adopt or bool(ch.data.get("adopt"))
            identity = identity or ch.data.get("identity")
            delete_lb = delete_lb or (ch.kind == "load-balancer" and ch.action == Action.DELETE)
            if ch.data.get("template") is not None:
                template = ch.data["template"]
            if ch.kind == "load-balancer" and ch.data.get("tags"):
                tags.update(ch.data["tags"])
            if ch.action == Action.ADOPT:
                continue  # kept as it is: the Service map (lb-service-tag) records it
            if ch.kind == "lb-service-tag":
                join = ch.action != Action.DELETE
            elif ch.kind == "backend-pool":
                pools[str(ch.data["item"]["name"])] = ch.data["item"]
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
            pools=tuple(pools.values()),
            template=template,
            tags=tuple(sorted(tags.items())),
            repair=repair,
            identity=identity,
            delete_lb=delete_lb,
            adopt=adopt,
        )

    def _apply_pip(
        self, ch: Change, on_start: Callable[[], None], on_provisioned: Callable[[], None] | None = None
    ) -> str | None:
        """Write one public IP; returns its address (None: deleted). ``on_provisioned``: called when
        a create's or update's operation has succeeded, before the final GET (:func:`client.put_json`)."""
        rg, name = str(ch.data["rg"]), str(ch.data["name"])
        ops = self.seen.client.public_ip_addresses
        self.seen.writing()
        if ch.action == Action.DELETE:
            # No If-Match: detaching it from the LB earlier in this apply changed its ETag, and
            # its ownership (tags) was checked by the plan.
            self.pips.run(
                on_start,
                lambda: self.seen.call(
                    "publicIPAddresses.delete",
                    lambda: azclient.delete(
                        self.settings,
                        lambda polling: ops.begin_delete(rg, name, polling=polling),
                        self.timeout,
                        f"delete public IP {name}",
                    ),
                ),
            )
            self.seen.wrote_pip(rg, name, None)
            return None
        headers = {"If-Match": ch.data["etag"]} if ch.data.get("etag") else {"If-None-Match": "*"}
        body = ch.data["body"]
        result = self.pips.run(  # three round trips (PUT, poll, GET): off the worker slot
            on_start,
            lambda: self.seen.call(
                "publicIPAddresses.create_or_update",
                lambda: azclient.put_json(
                    self.settings,
                    self.seen.arm,
                    Ids(self.settings.subscription_id).pip(rg, name),
                    body,
                    headers,
                    self.timeout,
                    f"public IP {name}",
                    on_provisioned,
                ),
            ),
        )
        self.seen.wrote_pip(rg, name, result)
        return (result.get("properties") or {}).get("ipAddress")

    @staticmethod
    def _frontend_address(
        ch: Change, lb_bodies: dict[str, JSON | None], pip_ips: dict[str, str]
    ) -> str | None:
        """The frontend address an NSG rule waits for (floating IP on), once this apply knows it."""
        want = ch.data.get("resolve_frontend")
        if not want:
            return None
        if pip_ips.get(want.get("family", "IPv4")):
            return pip_ips[want.get("family", "IPv4")]
        fe = find(items(lb_bodies.get(want["lb"]), "frontendIPConfigurations"), want["base"])
        addr = ((fe or {}).get("properties") or {}).get("privateIPAddress")
        if not addr:
            raise RuntimeError(f"NSG rule {ch.name}: the frontend address is not known after the LB write")
        return str(addr)

    def rule_writer(self, name: str) -> RuleWriter:
        """The process-wide writer of one shared NSG rule (one per provider instance and rule name)."""
        with self._lock:
            w = self._rule_writers.get(name.lower())
            if w is None:
                w = RuleWriter(
                    functools.partial(self._write_shared_rule, name),
                    self.settings.coalesce_window_seconds,
                    max_wait=self.settings.coalesce_max_wait_seconds,
                )
                self._rule_writers[name.lower()] = w
            return w

    def _apply_shared_rule(
        self, ch: Change, frontend_addr: str | None, announced: dict[str, Announcement]
    ) -> None:
        """A membership delta of a rule shared by destination, through the rule's writer
        (:mod:`lbprov_azure.nsgwriter`: the deltas of concurrent Services, one read and one PUT)."""
        name = str(ch.data["name"])
        add = ch.data.get("add") or frontend_addr
        if ch.data.get("resolve_frontend") and not add:
            raise RuntimeError(f"NSG rule {name}: the frontend address is not known after the LB write")
        template = {**ch.data["body"]["properties"], "priority": ch.data.get("priority")}
        delta = RuleDelta(
            add={add} if add else set(),
            remove=set(ch.data.get("remove") or ()),
            template=template,
            description=template.get("description") if ch.data.get("identity") else None,
            snapshot=ch.data.get("snapshot"),
            seen="snapshot" in ch.data,
        )
        w = self.rule_writer(name)
        with released():  # the wait for the rule's batch gives the worker slot to another sync
            w.submit(delta, announced.pop(_rule_key(name), None))

    def _write_shared_rule(
        self, name: str, deltas: list[RuleDelta], start: JSON | None, known: bool
    ) -> JSON | None:
        """Apply ``deltas`` to the rule (``start`` when ``known``, else a fresh read), write it once
        (If-Match / If-None-Match; a 412 re-reads and re-applies); none left: delete. Returns the rule
        as written (None: gone)."""
        s = self.settings
        nsg, rg = str(s.security_group_name), s.resource_group
        ops = self.seen.client.security_rules
        path = (
            f"/subscriptions/{s.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Network/"
            f"networkSecurityGroups/{nsg}/securityRules/{name}"
        )
        priority: int | None = None
        for _ in range(8):
            if known:
                current, known = start, False
            else:
                current = self.seen.call("securityRules.get", lambda: azclient.get_json(self.seen.arm, path))
            props = (current or {}).get("properties") or {}
            before = set(destinations(props))
            dests = merged_destinations(before, deltas)
            description = next((d.description for d in deltas if d.description), None)
            self.seen.writing()
            try:
                if not dests:
                    if current is not None:
                        self.seen.call(
                            "securityRules.delete",
                            lambda etag=current["etag"]: azclient.delete(  # type: ignore[misc]  # mypy infers no lambda with defaults
                                self.settings,
                                lambda polling: ops.begin_delete(
                                    rg, nsg, name, headers={"If-Match": etag}, polling=polling
                                ),
                                self.timeout,
                                f"delete NSG rule {name}",
                            ),
                        )
                    self.seen.wrote_nsg_rule(name, None)
                    return None
                if current is not None and dests == before and not description:
                    return current
                base = dict(deltas[0].template if current is None else props)
                if description:  # the rule predates cluster identities: it gets ours
                    base["description"] = description
                priority = int(props.get("priority") or priority or base.get("priority") or 0)
                keep = ("provisioningState", "priority")
                body = {
                    "properties": {
                        **with_destinations({k: v for k, v in base.items() if k not in keep}, dests),
                        "priority": priority,
                    }
                }
                headers = {"If-Match": current["etag"]} if current is not None else {"If-None-Match": "*"}
                result = self.seen.call(
                    "securityRules.create_or_update",
                    lambda b=body, h=headers: azclient.put_json(  # type: ignore[misc]  # mypy infers no lambda with defaults
                        self.settings, self.seen.arm, path, b, h, self.timeout, f"NSG rule {name}"
                    ),
                )
                self.seen.wrote_nsg_rule(name, result)
                return dict(result)
            except HttpResponseError as exc:
                code = azclient.error_code(exc)
                if exc.status_code in (404, 412) or code == "PreconditionFailed":
                    continue  # changed (or gone) since: re-read and re-apply the deltas
                if exc.status_code == 400 and code == "SecurityRuleConflict" and current is None:
                    fresh = self.seen.nsg(fresh=True)  # the priority was taken since the plan
                    priority = self.priorities.allocate(self.priorities.used(fresh or {}), name)
                    continue
                raise
        raise RuntimeError(f"NSG rule {name}: kept changing under 8 attempts")

    def _apply_nsg_rule(
        self, ch: Change, frontend_addr: str | None = None, announced: dict[str, Announcement] | None = None
    ) -> None:
        if ch.data.get("shared"):
            self._apply_shared_rule(ch, frontend_addr, announced if announced is not None else {})
            return
        s = self.settings
        nsg, rg = str(s.security_group_name), s.resource_group
        name = str(ch.data["name"])
        ops = self.seen.client.security_rules
        self.seen.writing()
        if ch.action == Action.DELETE:
            self.seen.call(
                "securityRules.delete",
                lambda: azclient.delete(
                    self.settings,
                    lambda polling: ops.begin_delete(rg, nsg, name, polling=polling),
                    self.timeout,
                    f"delete NSG rule {name}",
                ),
            )
            self.seen.wrote_nsg_rule(name, None)
            return
        priority = int(ch.data["priority"])
        path = f"{Ids(s.subscription_id).rg_prefix(rg)}/networkSecurityGroups/{nsg}/securityRules/{name}"
        for _ in range(8):
            body = {"properties": {**ch.data["body"]["properties"], "priority": priority}}
            if frontend_addr:
                body["properties"] = fill_frontend(body["properties"], frontend_addr)
            try:
                result = self.seen.call(
                    "securityRules.create_or_update",
                    lambda b=body: azclient.put_json(  # type: ignore[misc]  # mypy infers no lambda with defaults
                        self.settings, self.seen.arm, path, b, {}, self.timeout, f"NSG rule {name}"
                    ),
                )
                self.seen.wrote_nsg_rule(name, result)
                return
            except HttpResponseError as exc:
                if exc.status_code != 400 or azclient.error_code(exc) != "SecurityRuleConflict":
                    raise
            # another writer took the priority since the plan: pick a free one on fresh data
            fresh = self.seen.nsg(fresh=True)
            deny = ch.data["body"]["properties"].get("access") == "Deny"
            priority = self.priorities.allocate(self.priorities.used(fresh or {}), name, from_end=deny)
        raise RuntimeError(f"NSG rule {name}: could not find a free priority after 8 attempts")
