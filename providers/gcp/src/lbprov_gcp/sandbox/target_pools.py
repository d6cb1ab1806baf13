"""Regional target pools (``targetPools``): the backend of cloud-provider-gcp's external load balancers.

lbprov never creates one; the emulator holds them so that a predecessor load balancer can be made
exactly as upstream makes it (``createTargetPoolAndHealthCheck``), and its migration tested.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lbprov_gcp.sandbox.errors import invalid

if TYPE_CHECKING:
    from lbprov_gcp.sandbox.emulator import ComputeEmulator
    from lbprov_gcp.sandbox.routes import Route

Json = dict[str, Any]

_AFFINITIES = {"NONE", "CLIENT_IP", "CLIENT_IP_PROTO"}


def validate(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    affinity = body.setdefault("sessionAffinity", "NONE")
    # compute.v1.json, TargetPool.sessionAffinity: "must be one of the following values: NONE ...
    # CLIENT_IP ... CLIENT_IP_PROTO" (the other enum values are for backend services)
    if affinity not in _AFFINITIES:
        raise invalid(
            "resource.sessionAffinity", f"'{affinity}' is not one of {', '.join(sorted(_AFFINITIES))}"
        )
    checks = list(body.get("healthChecks") or [])
    # TargetPool.healthChecks: "Only legacy HttpHealthChecks are supported. Only one health check may
    # be specified."
    if len(checks) > 1:
        raise invalid("resource.healthChecks", "only one health check may be specified")
    hc_rels = []
    for i, link in enumerate(checks):
        hc = emu._require_ref(
            link,
            field=f"resource.healthChecks[{i}]",
            project=route.project,
            scope="global",
            collection="httpHealthChecks",
        )
        body["healthChecks"][i] = hc["selfLink"]
        hc_rels.append(emu.rel_of(hc))
    body["_healthChecks"] = hc_rels
    region = route.scope.split("/", 1)[1]
    links = []
    for i, link in enumerate(body.get("instances") or []):
        # upstream sends "/zones/<zone>/instances/<name>" (makeComparableHostPath)
        ref = str(link).split("/compute/v1/")[-1].lstrip("/")
        if ref.startswith("zones/"):
            ref = f"projects/{route.project}/{ref}"
        parts = ref.split("/")
        # TargetPool.instances: "They must live in zones contained in the same region as this pool."
        if len(parts) != 6 or parts[2] != "zones" or parts[4] != "instances":
            raise invalid(f"resource.instances[{i}]", f"'{link}' is not an instance reference")
        if not parts[3].startswith(region + "-"):
            raise invalid(f"resource.instances[{i}]", f"instance zone {parts[3]} is not in region {region}")
        found = emu.lookup(ref)
        if found is None:
            raise invalid(f"resource.instances[{i}]", f"The resource '{ref}' was not found")
        links.append(found["selfLink"])
    body["instances"] = links
    return body
