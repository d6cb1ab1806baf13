"""Unmanaged zonal instance groups: validation of ``instanceGroups`` inserts, and their members."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lbprov_gcp.sandbox.errors import ApiError, invalid
from lbprov_gcp.sandbox.fields import fingerprint
from lbprov_gcp.sandbox.filters import parse_filter
from lbprov_gcp.sandbox.schema import RESOURCE_TYPES, check_fields

if TYPE_CHECKING:
    from lbprov_gcp.sandbox.emulator import ComputeEmulator
    from lbprov_gcp.sandbox.routes import Route

Json = dict[str, Any]


def validate(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    if body.get("network"):
        net = emu._require_ref(
            body["network"],
            field="resource.network",
            project=route.project,
            scope="global",
            collection="networks",
        )
        body["network"] = net["selfLink"]
    if "size" in body:
        body.pop("size")
    for i, named in enumerate(body.get("namedPorts") or []):
        if not 1 <= int(named.get("port", 0)) <= 65535:
            raise invalid(f"resource.namedPorts[{i}].port", "is not in [1, 65535]")
    body["fingerprint"] = fingerprint()
    body["_members"] = []
    return body


def load_balanced_groups(emu: ComputeEmulator, *, except_backend_service: str | None = None) -> set[str]:
    """Relative paths of the instance groups some backend service uses (the "load-balanced" ones)."""
    return {
        rel
        for bs in emu.all_of("backendServices")
        if emu.rel_of(bs) != except_backend_service
        for rel in bs.get("_groups", [])
    }


def check_one_load_balanced_group(emu: ComputeEmulator, groups: list[str], load_balanced: set[str]) -> None:
    """GCE: an instance may be in at most one load-balanced instance group.

    Real GCE refuses a backend service, or an addInstances, that would put an instance in a second
    load-balanced group, with HTTP 400 and reason ``instanceInMultipleLoadBalancedIgs``:
    "Validation failed for instance 'projects/P/zones/Z/instances/N': instance may belong to at most
    one load-balanced instance group." (quoted in kubernetes/kubernetes#58500,
    GoogleCloudPlatform/continuous-deployment-on-kubernetes#49 and
    terraform-google-modules/terraform-google-lb-http#322).
    """
    balanced = load_balanced | set(groups)
    for rel in groups:
        group = emu.lookup(rel)
        for member in (group or {}).get("_members", []):
            for other in sorted(balanced - {rel}):
                if member in ((emu.lookup(other) or {}).get("_members") or []):
                    raise ApiError(
                        400,
                        "instanceInMultipleLoadBalancedIgs",
                        f"Validation failed for instance '{member}': instance may belong to at most one "
                        "load-balanced instance group.",
                    )


def member_verb(emu: ComputeEmulator, route: Route, body: Any, query: dict[str, str]) -> Json:
    """``listInstances`` / ``addInstances`` / ``removeInstances`` on a zonal instance group."""
    ig = emu._get(route)
    members: list[str] = ig.setdefault("_members", [])
    desc = RESOURCE_TYPES[f"instanceGroups{route.verb[0].upper()}{route.verb[1:]}Request"]
    check_fields(body if body is not None else {}, desc, "resource")
    if route.verb == "listInstances":
        state = (body or {}).get("instanceState", "ALL")
        if state not in ("ALL", "RUNNING"):
            raise invalid("resource.instanceState", f"'{state}' is not one of ALL, RUNNING")
        items = [{"instance": emu.link(m), "status": "RUNNING"} for m in members]
        items = [i for i in _filter_sort_members(items, query)]
        start, size = emu._page(query)
        out: Json = {
            "kind": "compute#instanceGroupsListInstances",
            "id": emu.rel_of(ig),
            "selfLink": ig["selfLink"] + "/listInstances",
        }
        if items[start : start + size]:
            out["items"] = items[start : start + size]
        if start + size < len(items):
            out["nextPageToken"] = str(start + size)
        return out
    refs = (body or {}).get("instances") or []
    if not refs:
        raise invalid("resource.instances", "at least one instance is required")
    rels: list[str] = []
    zone = route.scope.split("/")[1]
    for i, ref in enumerate(refs):
        field = f"resource.instances[{i}].instance"
        rel = emu.resolve(
            ref.get("instance", ""),
            field=field,
            project=route.project,
            scope=route.scope,
            collection="instances",
        )
        inst = emu.lookup(rel)
        if inst is None:
            raise invalid(field, f"The resource '{rel}' was not found")
        if rel.split("/")[3] != zone:
            raise invalid(field, f"instance '{rel}' is not in zone {zone} of the instance group")
        if rel in rels:
            raise invalid(field, f"instance '{rel}' is listed twice")
        rels.append(rel)
        network = inst["networkInterfaces"][0]["network"]
        if route.verb == "addInstances":
            if rel in members:
                raise ApiError(
                    400,
                    "memberAlreadyExists",
                    f"Resource '{rel}' is already a member of '{emu.rel_of(ig)}'",
                )
            if ig.get("network") and ig["network"] != network:
                raise invalid(
                    field, f"instance '{rel}' is not in the instance group's network {ig['network']}"
                )
        elif rel not in members:
            raise ApiError(400, "memberNotFound", f"Resource '{rel}' is not a member of '{emu.rel_of(ig)}'")
    if route.verb == "addInstances":
        group_rel = emu.rel_of(ig)
        balanced = load_balanced_groups(emu)
        if group_rel in balanced:
            ig["_members"] = members + rels  # checked as it would be, then restored
            try:
                check_one_load_balanced_group(emu, [group_rel], balanced)
            finally:
                ig["_members"] = members
        for rel in rels:
            members.append(rel)
            if not ig.get("network"):
                ig["network"] = emu.lookup(rel)["networkInterfaces"][0]["network"]  # type: ignore[index]
                ig["subnetwork"] = emu.lookup(rel)["networkInterfaces"][0]["subnetwork"]  # type: ignore[index]
    else:
        for rel in rels:
            members.remove(rel)
    return emu._operation(route, route.verb, ig)


def _filter_sort_members(items: list[Json], query: dict[str, str]) -> list[Json]:
    pred = parse_filter(query.get("filter"))
    return sorted((i for i in items if pred(i)), key=lambda i: i["instance"])
