"""Adoption in place of what cloud-provider-azure made for a Service (its *predecessor*).

Mixed into :class:`~lbprov_azure.diff.Planner`. Upstream's names are lbprov's for the shared load
balancer (``<cluster>``), the backend pool, the frontend, the rules, the probes and the public IP
(:mod:`lbprov_azure.upstream`), so a Service that upstream reconciled is found where lbprov looks;
what marks it as upstream's is that lbprov's ownership marks are missing (the LB's cluster tag and
Service map, the public IP's tags). The plan then shows ``adopt`` (``<=``) for each part that lbprov
takes over as it is, and ``update`` only for what differs; apply writes lbprov's ownership marks
into the same resources, so the Service keeps its frontend and its address, and nothing is
recreated:

* the load balancer, if lbprov does not own it yet: lbprov's cluster tags and identity are added
  (its other Services' parts, AKS's outbound rules and pools stay as they are);
* the frontend, probes and rules named by the Service's UID: recorded in the LB's Service map;
* the public IP: only if upstream's tags name this cluster and this Service alone; it gets lbprov's
  tags instead of upstream's (same resource, same address);
* NSG rules: lbprov's own rules are created first, then upstream's rules for the Service go
  (pre-v1.28 ``<base>-<PROTO>-<port>-<source>`` are deleted; the shared ``k8s-azure-lb_*`` rules lose
  the Service's frontend address, and are deleted when it was their last).

A look-alike (a frontend named like the Service's whose public IP upstream tagged for another
cluster or Service, a public IP of another cluster's name) stays an ownership conflict.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from lbprov.model import Action, Change, OwnershipConflict, ServiceRef
from lbprov_azure import names, parts, upstream
from lbprov_azure.desired import LB_FIELDS, VIEWS, Desired, ref_id, view_nsg_rule, view_pip
from lbprov_azure.observe import Observer, find, items
from lbprov_azure.settings import AzureSettings

JSON = dict[str, Any]
ADOPTED = "made by cloud-provider-azure for this Service: taken over in place"
#: Fields of a public IP body that ARM computes (never sent back in a PUT).
_PIP_READONLY = {"ipAddress", "ipConfiguration", "provisioningState", "resourceGuid", "natGateway"}
#: Fields of a security rule that ARM computes.
_RULE_READONLY = {"provisioningState", "etag", "id", "name", "type"}


def adopted_pip_body(found: JSON, desired: JSON) -> JSON:
    """Upstream's public IP as lbprov keeps it: the same resource (SKU, zones, properties), with
    lbprov's tags instead of upstream's and the DNS label lbprov manages."""
    props = {
        k: copy.deepcopy(v) for k, v in (found.get("properties") or {}).items() if k not in _PIP_READONLY
    }
    label = ((desired.get("properties") or {}).get("dnsSettings") or {}).get("domainNameLabel")
    if label:
        props["dnsSettings"] = {"domainNameLabel": label}
    else:
        props.pop("dnsSettings", None)
    body: JSON = {k: copy.deepcopy(found[k]) for k in ("location", "sku", "zones") if found.get(k)}
    body["tags"] = dict(desired.get("tags") or {})
    body["properties"] = props
    return body


def keep_unmanaged(kind: str, item: JSON, existing: JSON | None) -> JSON:
    """``item`` (a rule lbprov writes) with the fields lbprov does not manage kept as they are.

    ``disableOutboundSnat``: AKS turns it on for the rules of a load balancer whose nodes get their
    outbound connectivity from its outbound rules (an adopted LB keeps what it has).
    """
    if kind != "load-balancing-rule" or existing is None:
        return item
    snat = (existing.get("properties") or {}).get("disableOutboundSnat")
    if snat is None:
        return item
    return {**item, "properties": {**item["properties"], "disableOutboundSnat": bool(snat)}}


def has_parts(lb: JSON | None, base: str) -> bool:
    """Whether ``lb`` holds a frontend, probe or rule named by the Service's UID."""
    return any(parts.own(lb, fld, base) for fld in parts.FIELDS)


class AdoptChanges:
    """The adoption part of the planner (see the module doc)."""

    settings: AzureSettings
    seen: Observer

    # -- the public IP --------------------------------------------------------------------------

    def _adopt_pip(self, found: JSON, ref: ServiceRef, rg: str, name: str, desired: JSON) -> Change:
        """The ADOPT change of upstream's public IP, or the ownership conflict of a look-alike."""
        cluster = self.settings.cluster_name
        tags = found.get("tags")
        if not upstream.is_predecessor_pip(tags, cluster, ref):
            why = _why(tags)
            raise OwnershipConflict(
                f"public IP {name!r} in resource group {rg!r} exists but is not owned by Service {ref.key} of "
                f"cluster {cluster!r} ({why}); lbprov adopts only cloud-provider-azure's public IP of this "
                "Service and cluster, and never one shared by several Services"
            )
        if (found.get("sku") or {}).get("name") != "Standard":
            raise OwnershipConflict(
                f"public IP {name!r} is cloud-provider-azure's for Service {ref.key} but has SKU "
                f"{(found.get('sku') or {}).get('name')!r}: a SKU cannot be changed and the shared Standard load "
                "balancer needs a Standard public IP; it cannot be adopted (upgrade it to Standard first)"
            )
        body = adopted_pip_body(found, desired)
        return Change(
            Action.ADOPT,
            "public-ip",
            f"{rg}/{name}",
            before=view_pip(found),
            after=view_pip(body),
            cloud_id=str(found.get("id")),
            reason=ADOPTED,
            data={"rg": rg, "name": name, "body": body, "etag": found.get("etag")},
        )

    # -- the load balancer ------------------------------------------------------------------------

    def _prove_predecessor(self, lb: JSON, lbn: str, base: str, ref: ServiceRef) -> None:
        """Refuse parts named like the Service's that upstream did not make for it.

        The parts carry no tags; an external frontend names its public IP, which must be the
        Service's (upstream's tags for this cluster and Service, or lbprov's once adopted). An
        internal frontend is the Service's by its UID-derived name on this cluster's load balancer.
        """
        fe = find(items(lb, "frontendIPConfigurations"), base)
        pip_id = ref_id(((fe or {}).get("properties") or {}).get("publicIPAddress"))
        if not pip_id:
            return
        seg = pip_id.split("/")
        pip = self.seen.pip(seg[4], seg[-1]) if len(seg) >= 9 else None
        tags = (pip or {}).get("tags")
        cluster = self.settings.cluster_name
        if pip is not None and (
            upstream.is_predecessor_pip(tags, cluster, ref) or names.is_service_owned(tags, cluster, ref.uid)
        ):
            return
        why = _why(tags) if pip is not None else "it does not exist"
        raise OwnershipConflict(
            f"load balancer {lbn!r} has frontend {base!r}, named like this Service's, but its public IP "
            f"{pip_id.rsplit('/', 1)[-1]!r} is not this Service's ({why}); lbprov never adopts it"
        )

    def _adopt_lb_changes(
        self,
        lb: JSON,
        lbn: str,
        base: str,
        token: str,
        desired: Desired,
        group: list[Change],
        *,
        adopt_lb: bool,
    ) -> list[Change]:
        """``group`` (the Service's changes on its LB) with the adoptions of its predecessor parts.

        Parts lbprov keeps as they are get an ADOPT change (apply records them in the Service map);
        parts that differ keep their UPDATE, parts lbprov does not want their DELETE. An LB that
        lbprov does not own yet is adopted with lbprov's cluster tags and identity.
        """
        common = {"lb": lbn, "service": token, "base": base, "adopt": True}
        out: list[Change] = []
        if adopt_lb:
            tags = names.lb_tags(self.settings.cluster_name, self.settings.cluster_id)
            out.append(
                Change(
                    Action.ADOPT,
                    "load-balancer",
                    lbn,
                    before={"tags": {k: v for k, v in sorted((lb.get("tags") or {}).items()) if k in tags}},
                    after={"tags": dict(sorted(tags.items()))},
                    cloud_id=str(lb.get("id")),
                    reason="cloud-provider-azure's shared load balancer of this cluster: lbprov's tags are added",
                    data={**common, "tags": tags},
                )
            )
        changed = {(c.kind, c.name.lower()) for c in group if c.kind in LB_FIELDS}
        wanted: list[tuple[str, JSON]] = [("frontend-ip-configuration", desired.frontend)]
        wanted += [("probe", p) for p in desired.probes.values()]
        wanted += [("load-balancing-rule", r) for r in desired.rules.values()]
        for kind, item in wanted:
            existing = find(items(lb, LB_FIELDS[kind]), item["name"])
            name = f"{lbn}/{item['name']}"
            if existing is None or (kind, name.lower()) in changed:
                continue
            view = VIEWS[kind](existing)
            out.append(
                Change(
                    Action.ADOPT,
                    kind,
                    name,
                    before=view,
                    after=view,
                    cloud_id=str(existing.get("id")),
                    data=common,
                )
            )
        rest = [
            c
            for c in group
            # the identity goes with the adoption of the LB
            if not (adopt_lb and c.kind == "load-balancer" and c.action == Action.UPDATE and "tags" in c.data)
        ]
        return [*out, *[_with_adopt(c) for c in rest]]

    def _unadopted_keeps_its_nodes(self, lb: JSON, lbn: str, ips: set[str]) -> None:
        """Refuse to move nodes out of upstream's load balancer before it is adopted (its pool is
        upstream's until then, and a node cannot be load-balanced by two public or internal ones)."""
        pool = find(items(lb, "backendAddressPools"), names.pool_name(self.settings.cluster_name))
        have = set(VIEWS["backend-pool"](pool)["addresses"]) if pool else set()
        if have - ips:
            raise OwnershipConflict(
                f"load balancer {lbn!r} is cloud-provider-azure's, not yet adopted by lbprov, and its nodes "
                f"{', '.join(sorted(have - ips))} would move to another load balancer of the cluster: a Service "
                "placed on it adopts it first (check azure-load-balancer-configurations)"
            )

    # -- NSG rules --------------------------------------------------------------------------------

    def _upstream_nsg_changes(self, nsg: JSON | None, base: str, addresses: set[str]) -> list[Change]:
        """Upstream's NSG rules of the Service in the cluster ``nsg``: deleted, or the Service's
        addresses taken out of them."""
        if nsg is None:
            return []
        out: list[Change] = []
        for rule in items(nsg, "securityRules"):
            name = str(rule.get("name", ""))
            props = rule.get("properties") or {}
            if upstream.is_legacy_nsg_rule(name, base):
                out.append(_rule_delete(nsg, rule, "cloud-provider-azure's rule for this Service"))
                continue
            if not upstream.is_shared_nsg_rule(name) or not addresses:
                continue
            dests = list(props.get("destinationAddressPrefixes") or [])
            if props.get("destinationAddressPrefix"):
                dests.append(str(props["destinationAddressPrefix"]))
            keep = [d for d in dests if d not in addresses]
            if len(keep) == len(dests):
                continue
            if not keep:
                out.append(_rule_delete(nsg, rule, "cloud-provider-azure's rule served only this Service"))
                continue
            body_props = {k: copy.deepcopy(v) for k, v in props.items() if k not in _RULE_READONLY}
            body_props.pop("destinationAddressPrefix", None)
            body_props["destinationAddressPrefixes"] = keep
            after = view_nsg_rule({"properties": body_props})
            priority = int(props.get("priority") or 0)
            out.append(
                Change(
                    Action.UPDATE,
                    "nsg-rule",
                    f"{nsg['name']}/{name}",
                    before={**view_nsg_rule(rule), "priority": priority},
                    after={**after, "priority": priority},
                    cloud_id=str(rule.get("id")),
                    reason="cloud-provider-azure's shared rule: this Service's frontend address leaves it",
                    data={"name": name, "body": {"properties": body_props}, "priority": priority},
                )
            )
        return out


def _why(tags: Any) -> str:
    return upstream.describe(tags) if upstream.is_upstream(tags) else "it carries no ownership tags"


def _with_adopt(change: Change) -> Change:
    """A change of the Service's LB group that may touch predecessor parts (the writer allows it)."""
    if "lb" not in change.data or change.data.get("adopt"):
        return change
    return replace(change, data={**change.data, "adopt": True})


def _rule_delete(nsg: JSON, rule: JSON, reason: str) -> Change:
    name = str(rule.get("name", ""))
    return Change(
        Action.DELETE,
        "nsg-rule",
        f"{nsg['name']}/{name}",
        before=view_nsg_rule(rule),
        cloud_id=str(rule.get("id")),
        reason=reason,
        data={"name": name},
    )
