"""Plan -> SDK writes, in the plan's order (the deployer).

Shared resources (the cluster's instance groups, the shared health check and its firewall) may be
planned by several concurrent reconciles: this process creates each once (``_shared_known``, under a
lock) and, when another controller created one between plan and apply, accepts it if it is ours.
A failed apply forgets what it knew, so a resource deleted behind our back is created again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as gexc

from lbprov.model import Action, Change, Ingress, Plan
from lbprov_gcp import names as N
from lbprov_gcp.client import Compute, is_in_use
from lbprov_gcp.observe import Reader

Json = dict[str, Any]
log = logging.getLogger("lbprov.gcp")


class Applier:
    """Executes exactly a plan's changes; returns the Service's ingress."""

    def __init__(self, cluster: str, compute: Callable[[], Compute], reader: Callable[[], Reader]) -> None:
        self.cluster = cluster
        self._compute = compute
        self._reader = reader
        self._shared_lock = threading.RLock()
        self._shared_known: set[tuple[str, str | None, str]] = set()

    @property
    def compute(self) -> Compute:
        return self._compute()

    @property
    def reader(self) -> Reader:
        return self._reader()

    def run(self, plan: Plan) -> tuple[Ingress, ...]:
        ctx: dict[str, Any] = {}
        for change in plan.changes:
            try:
                self._apply_one(change, ctx)
            except gexc.BadRequest as exc:
                with self._shared_lock:
                    self._shared_known.clear()
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
                raise
            finally:
                data = change.data
                self.reader.wrote(
                    "instanceGroups" if change.kind == "instance-group" else str(data.get("collection")),
                    data.get("zone"),
                )
        for name in ctx.get("transient", []):
            # The forwarding rules hold the IP now: release the reservation (upstream does the same;
            # the IP stays with the rules as an ephemeral one).
            try:
                self.compute.delete("addresses", name)
            except gexc.NotFound:
                pass
            finally:
                self.reader.wrote("addresses")
        if plan.is_delete:
            return ()
        ip = ctx.get("ip")
        if ip is None and plan.ingress and not plan.changes:
            return plan.ingress
        if ip is None:
            ip = self._current_ip(plan)
        return (Ingress(ip=ip),) if ip else ()

    def _current_ip(self, plan: Plan) -> str | None:
        for ingress in plan.ingress:
            if ingress.ip:
                return ingress.ip
        address = plan.data.get("address")
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
        if data.get("destination_from_ip"):
            # The traffic firewall's destination is the IP reserved earlier in this apply.
            ip = ctx.get("ip")
            if not ip:
                raise RuntimeError(f"firewall {change.name}: the Service's IP is not known yet; plan again")
            body["destinationRanges"] = [f"{ip}/32"]
        if change.action is Action.UPDATE and data.get("verb") == "setLabels":
            c.set_labels(collection, change.name, body)
            return
        if change.action is Action.UPDATE or (change.action is Action.ADOPT and data.get("verb")):
            # adopt with a verb: a predecessor's resource patched into lbprov's in place
            c.modify(collection, data.get("verb", "patch"), change.name, body)
            return
        if collection == "forwardingRules":
            body = dict(data["body"])
            ip = ctx.get("ip") or data.get("ip")
            if ip is None and data.get("address"):
                found = c.get("addresses", data["address"])
                ip = found.get("address") if found else None
                ctx["ip"] = ip
            if ip is None:
                raise RuntimeError(
                    f"forwarding rule {change.name}: the Service's address is missing; plan again"
                )
            body["IPAddress"] = ip
            if change.action is Action.REPLACE:
                c.delete(collection, change.name)
            c.insert(collection, body)
            ctx["ip"] = ip
            return
        if data.get("shared"):
            self._create_shared(collection, None, change.name, body)
        else:
            c.insert(collection, body)
        if collection == "addresses":
            found = c.get("addresses", change.name)
            ctx["ip"] = found.get("address") if found else None
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
        if change.action is Action.CREATE:
            # Creating and filling the shared group is one step, so that concurrent reconciles that
            # all planned to create it add each instance once.
            with self._shared_lock:
                self._fill_group(change, zone, name)
        else:
            self._fill_group(change, zone, name)

    def _fill_group(self, change: Change, zone: str, name: str) -> None:
        c = self.compute
        data = change.data
        add, remove = list(data["add"]), list(data["remove"])
        if change.action is Action.CREATE and not self._create_shared(
            "instanceGroups", zone, name, dict(data["body"])
        ):
            # someone else created it since we planned: add only what is still missing
            current = set(c.group_members(zone, name))
            add = sorted(set(add) - current)
        try:
            if add:
                c.change_members("addInstances", zone, name, add)
            if remove:
                c.change_members("removeInstances", zone, name, remove)
        except gexc.BadRequest as exc:
            # Another Service's apply changed the shared group since we planned: converge on fresh data.
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
