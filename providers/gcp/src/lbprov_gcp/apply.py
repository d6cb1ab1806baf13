"""Plan -> SDK writes, in the plan's order (the deployer).

Shared resources (the cluster's instance groups, the shared health check and its firewall) may be
planned by several concurrent reconciles: this process creates each once (``_shared_known``, under a
lock) and, when another controller created one between plan and apply, accepts it if it is ours.
A failed apply forgets what it knew, so a resource deleted behind our back is created again.

A plan's creates that nothing after them needs run beside the others (:mod:`lbprov_gcp.overlap`):
the same writes, in fewer round trips one after the other. An apply returns (or raises) only once
every write it started has finished.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from google.api_core import exceptions as gexc

from lbprov.model import Action, Change, Ingress, Plan
from lbprov.side_writes import wait_all
from lbprov_gcp import names as N
from lbprov_gcp import overlap
from lbprov_gcp.client import Compute, is_in_use
from lbprov_gcp.observe import Reader

Json = dict[str, Any]
log = logging.getLogger("lbprov.gcp")

#: Threads for the writes a plan runs beside its others (:mod:`lbprov_gcp.overlap`): at most two
#: per apply at a time, so 32 serve 16 concurrent syncs without a wait; more syncs queue for them.
SIDE_THREADS = 32


def _ip_key(family: object) -> str:
    return "ip6" if family == "IPv6" else "ip"


class Applier:
    """Executes exactly a plan's changes; returns the Service's ingress."""

    def __init__(self, cluster: str, compute: Callable[[], Compute], reader: Callable[[], Reader]) -> None:
        self.cluster = cluster
        self._compute = compute
        self._reader = reader
        self._shared_lock = threading.RLock()
        self._shared_known: set[tuple[str, str | None, str]] = set()
        # Instance-group membership: one lock per group, and the members after this process's last
        # write to it (with when that write finished), so that a node change costs one write per
        # zone however many Services' concurrent plans asked for it.
        self._group_locks: dict[tuple[str, str], threading.Lock] = {}
        self._group_written: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}
        self._pool: ThreadPoolExecutor | None = None  # the changes a plan runs beside the others

    @property
    def compute(self) -> Compute:
        return self._compute()

    @property
    def reader(self) -> Reader:
        return self._reader()

    def run(self, plan: Plan) -> tuple[Ingress, ...]:
        ctx: dict[str, Any] = {}
        started: dict[int, Future[None]] = {}
        try:
            self._apply_steps(plan.changes, ctx, started)
            for name in ctx.get("transient", []):
                # The forwarding rules hold the IP now: release the reservation (upstream does the
                # same; the IP stays with the rules as an ephemeral one).
                try:
                    self.compute.delete("addresses", name)
                except gexc.NotFound:
                    pass
                finally:
                    self.reader.wrote("addresses", names=[name])
        except BaseException:
            # no write of this apply goes on after it returns; the first error is the one raised
            wait_all(started.values(), raise_first=False, log=log)
            raise
        wait_all(started.values(), raise_first=True, log=log)
        if plan.is_delete:
            return ()
        if plan.ingress and not plan.changes:
            return plan.ingress
        # status.loadBalancer.ingress: one IP per family, in spec.ipFamilies order
        out = []
        for family in plan.data.get("families") or ("IPv4",):
            ip = ctx.get(_ip_key(family)) or self._current_ip(plan, family)
            if ip:
                out.append(Ingress(ip=ip))
        return tuple(out)

    def apply_changes(self, changes: Sequence[Change], ctx: dict[str, Any] | None = None) -> None:
        """Execute ``changes`` one after the other (the node sync's instance-group changes)."""
        ctx = {} if ctx is None else ctx
        for change in changes:
            self._apply_recorded(change, ctx)

    def _apply_steps(
        self, changes: Sequence[Change], ctx: dict[str, Any], started: dict[int, Future[None]]
    ) -> None:
        """A plan's changes, the independent creates beside the others (:mod:`lbprov_gcp.overlap`).

        A started change gets a copy of ``ctx`` as it is then (the IPs reserved so far), so that
        what it leaves there does not mix with the changes running here.
        """
        for step in overlap.steps(changes):
            change = changes[step.index]
            if step.action == "run":
                self._apply_recorded(change, ctx)
            elif step.action == "start":
                started[step.index] = self._side_pool().submit(self._apply_recorded, change, dict(ctx))
            else:
                started.pop(step.index).result()

    def _side_pool(self) -> ThreadPoolExecutor:
        with self._shared_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(SIDE_THREADS, thread_name_prefix="lbprov-gcp-apply")
            return self._pool

    def _apply_recorded(self, change: Change, ctx: dict[str, Any]) -> None:
        """One change; a failure forgets the shared resources known; the round forgets what it
        wrote (or may have written)."""
        try:
            self._apply_one(change, ctx)
        except gexc.BadRequest as exc:
            with self._shared_lock:
                self._shared_known.clear()
                self._group_written.clear()
            if "instanceInMultipleLoadBalancedIgs" in {str(e.get("reason")) for e in exc.errors or []}:
                # GCE's message names the instance; say what to do about it.
                raise RuntimeError(
                    f"{change.kind} {change.name}: {exc.message} An instance group outside the cluster's "
                    "k8s-ig--<cluster ID> groups holds it: remove the instance from that group, or label "
                    "the node node.kubernetes.io/exclude-from-external-load-balancers=true"
                ) from exc
            raise
        except BaseException:
            with self._shared_lock:
                self._shared_known.clear()
                self._group_written.clear()
            raise
        finally:
            data = change.data
            if not ctx.pop("no_write", False):
                self.reader.wrote(
                    "instanceGroups" if change.kind == "instance-group" else str(data.get("collection")),
                    data.get("zone"),
                    [str(data.get("name") or change.name)],
                )

    def _current_ip(self, plan: Plan, family: str) -> str | None:
        v6 = family == "IPv6"
        for ingress in plan.ingress:
            if ingress.ip and (":" in ingress.ip) == v6:
                return ingress.ip
        address = (plan.data.get("addresses") or {}).get(family) or (None if v6 else plan.data.get("address"))
        if address:
            found = self.compute.get("addresses", address)
            if found:
                return str(found.get("address"))
        return None

    def _apply_one(self, change: Change, ctx: dict[str, Any]) -> None:
        c = self.compute
        data = change.data
        if change.kind == "instance-group":
            self._apply_group(change, ctx)
            return
        collection = data["collection"]
        if change.action is Action.DELETE:
            with self._shared_lock:
                self._shared_known.discard((collection, data.get("zone"), data["name"]))
            try:
                c.delete(collection, data["name"], zone=data.get("zone"))
            except gexc.NotFound:
                pass  # already gone: the goal of a delete
            except gexc.BadRequest as exc:
                if data.get("shared") and is_in_use(exc):
                    log.info("shared %s %s is in use again; kept", change.kind, change.name)
                else:
                    raise
            return
        if change.action is Action.REPLACE and collection != "forwardingRules":
            c.delete(collection, change.name)
        body = dict(data["body"])
        ip_key = _ip_key(data.get("family"))  # each IP family's IP apart
        if data.get("destination_from_ip"):
            # The traffic firewall's destination is the IP reserved earlier in this apply.
            ip = ctx.get(ip_key)
            if not ip:
                raise RuntimeError(f"firewall {change.name}: the Service's IP is not known yet; plan again")
            body["destinationRanges"] = [f"{ip}/{data.get('destination_length', 32)}"]
        if change.action is Action.UPDATE and data.get("verb") == "setLabels":
            c.set_labels(collection, change.name, body)
            return
        if change.action is Action.UPDATE or (change.action is Action.ADOPT and data.get("verb")):
            # adopt with a verb: a predecessor's resource patched into lbprov's in place
            c.modify(collection, data.get("verb", "patch"), change.name, body)
            return
        if collection == "forwardingRules":
            body = dict(data["body"])
            ip = ctx.get(ip_key) or data.get("ip")
            if ip is None and data.get("address"):
                found = c.get("addresses", data["address"])
                ip = found.get("address") if found else None
                ctx[ip_key] = ip
            if ip is None:
                raise RuntimeError(
                    f"forwarding rule {change.name}: the Service's address is missing; plan again"
                )
            # an external IPv6 rule is given its /96 (ingress-gce: "address has to be specified
            # with /96 prefix, or API will return error")
            body["IPAddress"] = f"{ip}{data.get('ip_suffix') or ''}"
            if change.action is Action.REPLACE:
                c.delete(collection, change.name)
            c.insert(collection, body)
            ctx[ip_key] = ip
            return
        if data.get("shared"):
            self._create_shared(collection, None, change.name, body)
        else:
            c.insert(collection, body)
        if collection == "addresses":
            found = c.get("addresses", change.name)
            ctx[ip_key] = found.get("address") if found else None
            if data.get("transient"):
                ctx.setdefault("transient", []).append(change.name)

    def _create_shared(self, collection: str, zone: str | None, name: str, body: Json) -> bool:
        """Create a cluster-shared resource once; False if it already existed (and is ours)."""
        key = (collection, zone, name)
        with self._shared_lock:
            if key in self._shared_known:
                return False
            try:
                self.compute.insert(collection, body, zone=zone)
                created = True
            except gexc.Conflict:
                # Another controller created it between our plan and apply: fine if it is ours.
                found = self.compute.get(collection, name, zone=zone)
                if found is None or not N.owned_as_shared(found.get("description"), self.cluster):
                    raise
                created = False
            self._shared_known.add(key)
            return created

    def _apply_group(self, change: Change, ctx: dict[str, Any]) -> None:
        data = change.data
        zone, name = data["zone"], data["name"]
        if change.action is Action.DELETE:
            # k8s-ig--* groups are shared with upstream and ingress-gce: never deleted.
            raise ValueError(f"instance group {zone}/{name}: lbprov never deletes an instance group")
        with self._group_lock(zone, name):
            if change.action is Action.CREATE:
                # Creating and filling the shared group is one step, so that concurrent reconciles
                # that all planned to create it add each instance once.
                with self._shared_lock:
                    wrote = self._fill_group(change, zone, name)
            else:
                wrote = self._fill_group(change, zone, name)
        if not wrote:
            ctx["no_write"] = True

    def _group_lock(self, zone: str, name: str) -> threading.Lock:
        with self._shared_lock:
            return self._group_locks.setdefault((zone, name), threading.Lock())

    def _fill_group(self, change: Change, zone: str, name: str) -> bool:
        """Bring the group's members to the plan's; False if no write was needed after all.

        Called under the group's lock. A plan whose membership was read before this process's
        last write to the group (another worker's apply of the same node change) is corrected by
        what that write left: only what is still missing is added, only what is still there is
        removed. A plan read after that write is applied as planned, so a change made by someone
        else since is repaired.
        """
        c = self.compute
        data = change.data
        key = (zone, name)
        add, remove = list(data["add"]), list(data["remove"])
        base = set(change.before["instances"]) if change.before else set()
        last = self._group_written.get(key)
        read_at = data.get("read_at")
        if last is not None and read_at is not None and read_at < last[0]:
            base = set(last[1])
            add = [i for i in add if i not in base]
            remove = [i for i in remove if i in base]
            if not add and not remove:
                log.debug("instance group %s/%s: already as planned by an earlier apply", zone, name)
                return False
        if change.action is Action.CREATE and not self._create_shared(
            "instanceGroups", zone, name, dict(data["body"])
        ):
            # someone else created it since we planned: add only what is still missing
            base = set(c.group_members(zone, name))
            add = sorted(set(add) - base)
        try:
            if add:
                c.change_members("addInstances", zone, name, add)
            if remove:
                c.change_members("removeInstances", zone, name, remove)
            after = (base | set(add)) - set(remove)
        except gexc.BadRequest as exc:
            # Another controller changed the shared group since we planned: converge on fresh data.
            if not (
                {"memberAlreadyExists", "memberNotFound"}
                & {str(e.get("reason")) for e in (exc.errors or []) if isinstance(e, dict)}
            ):
                raise
            current = set(c.group_members(zone, name))
            wanted = set(change.after["instances"]) if change.after else set()
            if wanted - current:
                c.change_members("addInstances", zone, name, sorted(wanted - current))
            if current - wanted:
                c.change_members("removeInstances", zone, name, sorted(current - wanted))
            after = wanted
        self._group_written[key] = (time.monotonic(), frozenset(after))
        return True
