"""Regional backend services (passthrough): validation of ``regionBackendServices`` writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lbprov_gcp.sandbox import instance_groups
from lbprov_gcp.sandbox.errors import invalid
from lbprov_gcp.sandbox.fields import PASSTHROUGH_SCHEMES, fingerprint

if TYPE_CHECKING:
    from lbprov_gcp.sandbox.emulator import ComputeEmulator
    from lbprov_gcp.sandbox.routes import Route

Json = dict[str, Any]


_PASSTHROUGH_AFFINITIES = {
    "NONE",
    "CLIENT_IP",
    "CLIENT_IP_PROTO",
    "CLIENT_IP_PORT_PROTO",
    "CLIENT_IP_NO_DESTINATION",
}


def validate(emu: ComputeEmulator, route: Route, body: Json, old: Json | None) -> Json:
    scheme = body.setdefault("loadBalancingScheme", "EXTERNAL")
    if old is not None and old.get("loadBalancingScheme") != scheme:
        raise invalid("resource.loadBalancingScheme", "cannot be changed; recreate the backend service")
    if scheme not in PASSTHROUGH_SCHEMES:
        raise invalid(
            "resource.loadBalancingScheme",
            f"'{scheme}' is not supported for regional backend services by the emulator (EXTERNAL, INTERNAL)",
        )
    protocol = body.setdefault("protocol", "HTTP")
    if protocol not in ("TCP", "UDP", "UNSPECIFIED"):
        raise invalid(
            "resource.protocol",
            f"'{protocol}': a passthrough ({scheme}) backend service takes TCP, UDP or UNSPECIFIED",
        )
    affinity = body.setdefault("sessionAffinity", "NONE")
    if affinity not in _PASSTHROUGH_AFFINITIES or (
        affinity == "CLIENT_IP_NO_DESTINATION" and scheme != "INTERNAL"
    ):
        raise invalid(
            "resource.sessionAffinity",
            f"'{affinity}' is not valid for a {scheme} passthrough backend service",
        )
    for key in ("portName", "port", "affinityCookieTtlSec", "enableCDN", "securityPolicy"):
        if key in body and scheme in PASSTHROUGH_SCHEMES and key != "affinityCookieTtlSec":
            raise invalid(f"resource.{key}", f"must not be set for a {scheme} passthrough backend service")
    hcs = body.get("healthChecks") or []
    if len(hcs) != 1:
        raise invalid(
            "resource.healthChecks",
            f"a {scheme} passthrough backend service needs exactly one health check, got {len(hcs)}",
        )
    hc_rels = []
    for i, ref in enumerate(hcs):
        field = f"resource.healthChecks[{i}]"
        hc = emu._require_ref(
            ref, field=field, project=route.project, scope=route.scope, collection="healthChecks"
        )
        hc_rels.append(emu.rel_of(hc))
        body["healthChecks"][i] = hc["selfLink"]
    if (
        body.get("network")
        and scheme == "EXTERNAL"
        and (body.get("haPolicy") or {}).get("fastIPMove", "DISABLED") == "DISABLED"
    ):
        # compute.v1.json, BackendService.network: "This field can only be specified when the load
        # balancing scheme is set to INTERNAL, or when the load balancing scheme is set to EXTERNAL and
        # haPolicy fastIpMove is enabled."
        raise invalid("resource.network", "can only be specified for an INTERNAL backend service")
    if body.get("network"):
        net = emu._require_ref(
            body["network"],
            field="resource.network",
            project=route.project,
            scope="global",
            collection="networks",
        )
        body["network"] = net["selfLink"]
    groups: list[str] = []
    for i, backend in enumerate(body.get("backends") or []):
        field = f"resource.backends[{i}]"
        ig = emu._require_ref(
            backend.get("group", ""),
            field=f"{field}.group",
            project=route.project,
            scope=route.scope,
            collection="instanceGroups",
        )
        rel = emu.rel_of(ig)
        if rel in groups:
            raise invalid(f"{field}.group", f"instance group '{rel}' is listed twice")
        if not rel.split("/")[3].startswith(emu.region + "-"):
            raise invalid(f"{field}.group", f"instance group '{rel}' is not in region {emu.region}")
        groups.append(rel)
        backend["group"] = ig["selfLink"]
        mode = backend.setdefault("balancingMode", "UTILIZATION")
        if mode != "CONNECTION":
            raise invalid(
                f"{field}.balancingMode",
                f"'{mode}': {scheme} passthrough backend services support only CONNECTION",
            )
        if (
            scheme == "INTERNAL"
            and ig.get("network")
            and body.get("network")
            and ig["network"] != body["network"]
        ):
            raise invalid(
                f"{field}.group", "instance group is in a different network than the backend service"
            )
    if old is not None and old.get("network") and body.get("network", old["network"]) != old["network"]:
        raise invalid("resource.network", "cannot be changed")
    body["fingerprint"] = fingerprint()
    body["_healthChecks"] = hc_rels
    instance_groups.check_one_load_balanced_group(
        emu,
        groups,
        instance_groups.load_balanced_groups(
            emu, except_backend_service=emu.rel_of(old) if old is not None else None
        ),
    )
    body["_groups"] = groups
    return body


def get_health(emu: ComputeEmulator, route: Route, body: Any) -> Json:
    """``regionBackendServices.getHealth`` for one of the backend service's groups.

    The emulator runs no probes: every member instance of the group reports HEALTHY (an instance
    exists and is RUNNING in the emulator), so that ``gcloud compute backend-services get-health``
    works against it. A group the backend service does not use is a 400, as on GCE.
    """
    bs = emu._get(route)
    group_ref = (body or {}).get("group") or ""
    rel = emu.resolve(
        group_ref,
        field="resource.group",
        project=route.project,
        scope=route.scope,
        collection="instanceGroups",
    )
    if rel not in bs.get("_groups", []):
        raise invalid("resource.group", f"'{rel}' is not a backend of backend service {bs['name']}")
    group = emu.lookup(rel) or {}
    status = []
    for member in group.get("_members", []):
        inst = emu.lookup(member) or {}
        status.append(
            {
                "instance": emu.link(member),
                "ipAddress": inst.get("networkInterfaces", [{}])[0].get("networkIP"),
                "healthState": "HEALTHY",
            }
        )
    out: Json = {"kind": "compute#backendServiceGroupHealth"}
    if status:
        out["healthStatus"] = status
    return out
