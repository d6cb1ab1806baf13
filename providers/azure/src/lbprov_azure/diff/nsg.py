"""NSG rules of one Service: desired vs the cluster NSG, priorities, ownership by description.

Mixed into :class:`~lbprov_azure.diff.Planner`. Rules are named ``lbprov-<base>-<PROTO>`` and marked
by their description (``lbprov <cluster> <uid> <identity mark> <ns/name>``), since NSG rules carry
no tags; a priority is the lowest free one in 500-4096, reserved for a while so that concurrent
plans do not pick the same one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from lbprov.model import Action, Change, OwnershipConflict, ServiceRef
from lbprov_azure import names, placement
from lbprov_azure.desired import (
    MAX_NSG_ADDRESSES,
    destination_count,
    destination_set,
    destinations,
    fill_frontend,
    placeholder,
    rule_family,
    view_nsg_rule,
    waits_for_frontend,
    with_destinations,
)
from lbprov_azure.observe import Observer, items
from lbprov_azure.settings import AzureSettings

JSON = dict[str, Any]
NSG_PRIORITY_MIN = 500
NSG_PRIORITY_MAX = 4096
_RESERVATION_SECONDS = 120.0


def _with_frontend(rule: JSON, address: str | None) -> tuple[JSON, bool]:
    """``rule`` with the frontend placeholder filled in; True when it must wait for apply."""
    props = rule.get("properties") or {}
    if not waits_for_frontend(props):
        return rule, False
    if address is None:
        return rule, True
    return {**rule, "properties": fill_frontend(props, address)}, False


class Priorities:
    """NSG rule priorities: the lowest free one in 500-4096, skipping ones this process just took.

    Plans of concurrent Services read the same NSG; a reservation (for two minutes) keeps them from
    picking the same free priority before either rule is written.
    """

    def __init__(self, nsg_name: str | None) -> None:
        self.nsg_name = nsg_name
        self._lock = threading.Lock()
        self._reserved: dict[int, tuple[str, float]] = {}  # priority -> (rule name, when)

    @staticmethod
    def used(nsg: JSON) -> set[int]:
        return {
            int((r.get("properties") or {}).get("priority") or 0)
            for r in items(nsg, "securityRules")
            if (r.get("properties") or {}).get("direction", "Inbound") == "Inbound"
        }

    def allocate(self, used: set[int], rule: str, *, from_end: bool = False) -> int:
        """``from_end``: the highest free number (deny rules go below every allow rule, as upstream)."""
        now = time.monotonic()
        span = range(NSG_PRIORITY_MIN, NSG_PRIORITY_MAX + 1)
        with self._lock:
            self._reserved = {p: v for p, v in self._reserved.items() if now - v[1] < _RESERVATION_SECONDS}
            for p in reversed(span) if from_end else span:
                holder = self._reserved.get(p)
                if p in used or (holder is not None and holder[0] != rule):
                    continue
                self._reserved[p] = (rule, now)
                return p
        raise RuntimeError(
            f"network security group {self.nsg_name!r} has no free priority in "
            f"{NSG_PRIORITY_MIN}-{NSG_PRIORITY_MAX}"
        )


def _keep_rule_identity(body: JSON, existing: JSON, cluster: str) -> JSON:
    """``body`` with the identity mark of ``existing`` (for runs that do not know the identity)."""
    old = names.parse_rule_description(
        str((existing.get("properties") or {}).get("description") or ""), cluster
    )
    new = names.parse_rule_description(str((body.get("properties") or {}).get("description") or ""), cluster)
    if old is None or old[1] is None or new is None:
        return body
    desc = f"lbprov {names.cluster_mark(cluster)} {new[0]} {old[1]} {new[2]}"[:140]
    return {**body, "properties": {**body["properties"], "description": desc}}


class NsgChanges:
    """The NSG part of the planner (see the module doc)."""

    settings: AzureSettings
    seen: Observer
    priorities: Priorities

    def _owned_nsg_rules(self, nsg: JSON, base: str, *, strict: bool = True) -> dict[str, JSON]:
        """The Service's rules; ``strict`` (ensure): one of another identity is a conflict."""
        out = {}
        for r in items(nsg, "securityRules"):
            n = str(r.get("name", ""))
            if n.startswith(names.nsg_rule_prefix(base)):
                desc = str((r.get("properties") or {}).get("description") or "")
                if not desc.startswith(f"lbprov {names.cluster_mark(self.settings.cluster_name)} "):
                    raise OwnershipConflict(
                        f"NSG rule {n!r} is named like this Service's but its description {desc!r} does not "
                        f"mark it as cluster {self.settings.cluster_name!r}'s; lbprov never adopts it"
                    )
                parsed = names.parse_rule_description(desc, self.settings.cluster_name)
                cid = self.settings.cluster_id
                if strict and parsed and parsed[1] and cid and parsed[1] != names.rule_identity(cid):
                    raise OwnershipConflict(
                        f"NSG rule {n!r} carries another cluster's identity ({parsed[1]}); lbprov never touches it"
                    )
                out[n] = r
        return out

    def _nsg_changes(
        self,
        desired: dict[str, JSON],
        base: str,
        ref: ServiceRef,
        lbn: str,
        fronts: Mapping[str, tuple[str, str | None]],
        nsg: JSON | None,
    ) -> list[Change]:
        """``fronts``: family -> (frontend name, its address or None when apply learns it)."""
        if nsg is None:
            return []
        ours = self._owned_nsg_rules(nsg, base)
        used = self.priorities.used(nsg)
        new = [n for n in desired if n not in ours]
        total = len(items(nsg, "securityRules")) + len(new)
        if new and total > placement.MAX_NSG_RULES:
            raise placement.CapacityExceeded(
                f"network security group {nsg.get('name')!r} holds {total - len(new)} rules; {len(new)} more "
                f"for Service {ref.key} would exceed Azure's limit of {placement.MAX_NSG_RULES} rules per NSG"
            )
        out: list[Change] = []
        for name, wanted in desired.items():
            existing = ours.get(name)
            family = rule_family(wanted.get("properties") or {}) or "IPv4"
            fe_name, frontend_addr = fronts.get(family, (base, None))
            body, resolve = _with_frontend(wanted, frontend_addr)
            if existing is not None and not self.settings.cluster_id:  # keep the identity it has
                body = _keep_rule_identity(body, existing, self.settings.cluster_name)
            after = view_nsg_rule(body)
            extra = {"resolve_frontend": {"lb": lbn, "base": fe_name, "family": family}} if resolve else {}
            if existing is None:
                deny = (body.get("properties") or {}).get("access") == "Deny"
                priority = self.priorities.allocate(used, name, from_end=deny)
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

    # -- delete plan ------------------------------------------------------------------------------

    # -- rules shared by destination --------------------------------------------------------------

    def _shared_rules(self, nsg: JSON) -> dict[str, JSON]:
        """The cluster's shared allow rules (description ``lbprov <cluster> shared ...``), by name."""
        mark = f"lbprov {names.cluster_mark(self.settings.cluster_name)} shared "
        return {
            str(r.get("name")): r
            for r in items(nsg, "securityRules")
            if str((r.get("properties") or {}).get("description") or "").startswith(mark)
        }

    def _shared_nsg_changes(
        self,
        wanted: dict[str, JSON],
        ref: ServiceRef,
        lbn: str,
        base: str,
        address: str | None,
        stale: set[str],
        nsg: JSON | None,
        *,
        family: str = "IPv4",
    ) -> list[Change]:
        """Join the shared rules ``wanted`` with ``address`` (the ``family`` frontend's, named
        ``base``; None: known only after the LB write) and leave every other shared rule, and take
        ``stale`` addresses (the Service's previous frontend) out of all of them. Each change is a membership delta that apply
        re-applies to the rule as it is then (see :meth:`Applier._apply_shared_rule`)."""
        if nsg is None:
            return []
        shared = self._shared_rules(nsg)
        used = self.priorities.used(nsg)
        out: list[Change] = []
        new = [n for n in wanted if n not in shared]
        total = len(items(nsg, "securityRules")) + len(new)
        if new and total > placement.MAX_NSG_RULES:
            raise placement.CapacityExceeded(
                f"network security group {nsg.get('name')!r} holds {total - len(new)} rules; {len(new)} more "
                f"for Service {ref.key} would exceed Azure's limit of {placement.MAX_NSG_RULES} rules per NSG"
            )
        addresses = sum(destination_count(r.get("properties") or {}) for r in items(nsg, "securityRules"))
        joining = [
            n
            for n in wanted
            if address is None or address not in destination_set(shared.get(n, {}).get("properties") or {})
        ]
        if joining and addresses + len(joining) > MAX_NSG_ADDRESSES:
            raise placement.CapacityExceeded(
                f"network security group {nsg.get('name')!r} names {addresses} destination addresses; Service "
                f"{ref.key} would exceed Azure's limit of {MAX_NSG_ADDRESSES} per NSG"
            )
        extra = {"resolve_frontend": {"lb": lbn, "base": base, "family": family}} if address is None else {}
        cid = self.settings.cluster_id
        for name, body in sorted(wanted.items()):
            existing = shared.get(name)
            props = (existing or {}).get("properties") or {}
            current = destination_set(props)
            mark = names.parse_rule_description(
                str(props.get("description") or ""), self.settings.cluster_name
            )
            theirs = mark[1] if mark else None
            if existing is not None and cid and theirs and theirs != names.rule_identity(cid):
                raise OwnershipConflict(
                    f"NSG rule {name!r} is named like this cluster's shared rule but carries another cluster's "
                    f"identity ({theirs}); lbprov never touches it"
                )
            identity = bool(
                existing is not None and cid and theirs is None
            )  # a rule that predates identities
            joined = existing is not None and address is not None and address in current
            if joined and not current & stale and not identity:
                continue
            # in the rule's own order (sorted, as lbprov writes it), so that sorting them again costs
            # a pass, not a sort of up to one address per Service (with_destinations)
            kept = destinations(props) if not stale else [d for d in destinations(props) if d not in stale]
            after_dest = [*kept, address or placeholder(family)]
            after_props = body["properties"] if existing is None or identity else props
            view_after = view_nsg_rule({"properties": with_destinations(after_props, after_dest)})
            data = {
                "name": name,
                "body": body,
                "shared": True,
                "add": address,
                "remove": sorted(stale),
                "identity": identity,
                "snapshot": existing,  # the rule as this plan saw it: apply starts from it (ETag-checked)
                **extra,
            }
            if existing is None:
                priority = self.priorities.allocate(used, name)
                used.add(priority)
                out.append(
                    Change(
                        Action.CREATE,
                        "nsg-rule",
                        f"{nsg['name']}/{name}",
                        after={**view_after, "priority": priority},
                        reason=f"shared by destination: Service {ref.key} joins",
                        data={**data, "priority": priority},
                    )
                )
            else:
                priority = int(props.get("priority") or 0)
                out.append(
                    Change(
                        Action.UPDATE,
                        "nsg-rule",
                        f"{nsg['name']}/{name}",
                        before={**view_nsg_rule(existing), "priority": priority},
                        after={**view_after, "priority": priority},
                        cloud_id=str(existing.get("id")),
                        reason=f"shared by destination: Service {ref.key} joins",
                        data={**data, "priority": priority},
                    )
                )
        mine = ({address} if address else set()) | stale
        for name, existing in sorted(shared.items()):
            if name in wanted:
                continue
            props = existing.get("properties") or {}
            current = destination_set(props)
            if not current & mine:
                continue
            out.append(self._shared_leave(nsg, name, existing, set(current & mine), ref))
        return out

    def _shared_leave(self, nsg: JSON, name: str, existing: JSON, gone: set[str], ref: ServiceRef) -> Change:
        """Take ``gone`` out of a shared rule (the rule goes with its last destination)."""
        props = existing.get("properties") or {}
        left = set(destinations(props)) - gone
        before = {**view_nsg_rule(existing), "priority": props.get("priority")}
        data = {
            "name": name,
            "shared": True,
            "add": None,
            "remove": sorted(gone),
            "body": existing,
            "snapshot": existing,
        }
        if not left:
            return Change(
                Action.DELETE,
                "nsg-rule",
                f"{nsg['name']}/{name}",
                before=before,
                cloud_id=str(existing.get("id")),
                reason=f"shared by destination: Service {ref.key}, its last destination, leaves",
                data=data,
            )
        after = {
            **view_nsg_rule({"properties": with_destinations(props, left)}),
            "priority": props.get("priority"),
        }
        return Change(
            Action.UPDATE,
            "nsg-rule",
            f"{nsg['name']}/{name}",
            before=before,
            after=after,
            cloud_id=str(existing.get("id")),
            reason=f"shared by destination: Service {ref.key} leaves",
            data={**data, "priority": props.get("priority")},
        )

    def _shared_nsg_removal(self, ref: ServiceRef, addresses: set[str], nsg: JSON | None) -> list[Change]:
        """A deleted Service's frontend addresses out of every shared rule."""
        if nsg is None or not addresses:
            return []
        out = []
        for name, existing in sorted(self._shared_rules(nsg).items()):
            gone = set(destinations(existing.get("properties") or {})) & addresses
            if gone:
                out.append(self._shared_leave(nsg, name, existing, gone, ref))
        return out
