"""Issue 11, item 6 and the internal features: no annotation in GCP's namespaces is silently
ignored; global access, subnet and named reserved addresses work through the SDK on the emulator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from gcp_helpers import converge, intent_for, make_service
from lbprov_gcp.options import ANNOTATIONS, parse_options
from lbprov_gcp.testing import sdk

from lbprov.model import Action, InvalidService

INTERNAL = {"networking.gke.io/load-balancer-type": "Internal"}
#: A valid value for each implemented key, on a Service the key applies to.
SAMPLES = {
    "networking.gke.io/load-balancer-type": {"networking.gke.io/load-balancer-type": "Internal"},
    "cloud.google.com/load-balancer-type": {"cloud.google.com/load-balancer-type": "internal"},
    "cloud.google.com/network-tier": {"cloud.google.com/network-tier": "Standard"},
    "networking.gke.io/internal-load-balancer-allow-global-access": {
        **INTERNAL,
        "networking.gke.io/internal-load-balancer-allow-global-access": "true",
    },
    "networking.gke.io/internal-load-balancer-subnet": {
        **INTERNAL,
        "networking.gke.io/internal-load-balancer-subnet": "other-subnet",
    },
    "networking.gke.io/load-balancer-ip-addresses": {"networking.gke.io/load-balancer-ip-addresses": "my-ip"},
}


def rule(sandbox: Any, name: str) -> Any:
    s = sandbox.settings
    return sdk(sandbox, "ForwardingRulesClient").get(
        project=s["project"], region=s["region"], forwarding_rule=name
    )


def test_every_key_of_the_table_is_implemented_refused_or_knowingly_ignored():
    assert set(SAMPLES) == {k for k, a in ANNOTATIONS.items() if a.status == "implemented"}
    for key, annotation in ANNOTATIONS.items():
        if annotation.status == "implemented":
            parse_options(SAMPLES[key])
        elif annotation.status == "refused":
            with pytest.raises(InvalidService, match=re.escape(f"metadata.annotations[{key}]")):
                parse_options({key: "true"})
        else:
            assert parse_options({key: "anything"}) == parse_options({})


@pytest.mark.parametrize(
    "key", ["networking.gke.io/made-up", "cloud.google.com/made-up", "alpha.cloud.google.com/x"]
)
def test_an_unknown_key_in_the_namespaces_is_refused_by_name(provider, sandbox, key):
    with pytest.raises(InvalidService, match=re.escape(f"metadata.annotations[{key}]")):
        intent_for(provider, make_service(annotations={key: "x"}), sandbox.nodes)


def test_the_readme_table_is_the_code_table():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z0-9.\-/]+)` \| (implemented|refused|ignored) \|", readme, re.M))
    assert rows == {k: a.status for k, a in ANNOTATIONS.items()}


def test_global_access_is_set_and_patched_in_place(provider, sandbox):
    key = "networking.gke.io/internal-load-balancer-allow-global-access"
    svc = make_service(annotations={**INTERNAL, key: "true"})
    intent = intent_for(provider, svc, sandbox.nodes)
    (ingress,) = converge(provider, intent)
    assert rule(sandbox, f"{intent.lb_name}-tcp").allow_global_access is True
    off = intent_for(
        provider, make_service(uid=intent.ref.uid, annotations={**INTERNAL, key: "false"}), sandbox.nodes
    )
    plan = provider.plan(off)
    assert [(c.action, c.kind) for c in plan.changes] == [(Action.UPDATE, "forwarding-rule")]
    provider.calls.reset()
    assert provider.apply(plan) == (ingress,)
    assert provider.calls.stats.operations("write") == {"forwardingRules.patch"}
    assert rule(sandbox, f"{intent.lb_name}-tcp").allow_global_access is False
    assert provider.plan(off).empty


def test_global_access_on_an_external_service_is_refused(provider, sandbox):
    key = "networking.gke.io/internal-load-balancer-allow-global-access"
    with pytest.raises(InvalidService, match=re.escape(f"[{key}]")):
        intent_for(provider, make_service(annotations={key: "true"}), sandbox.nodes)


def test_the_subnet_annotation_takes_the_internal_ip_from_that_subnet(provider, sandbox, server):
    server.emulator.seed_network(sandbox.settings["network"], "other-subnet", "10.200.0.0/24")
    svc = make_service(annotations=SAMPLES["networking.gke.io/internal-load-balancer-subnet"])
    intent = intent_for(provider, svc, sandbox.nodes)
    (ingress,) = converge(provider, intent)
    assert ingress.ip.startswith("10.200.0.")
    assert rule(sandbox, f"{intent.lb_name}-tcp").subnetwork.endswith("/subnetworks/other-subnet")
    assert provider.plan(intent).empty


def test_named_reserved_addresses_are_used_and_never_released(provider, sandbox, server):
    emu = server.emulator
    emu.put_raw("addresses", f"regions/{emu.region}", {"name": "my-ip", "address": "198.51.100.20"})
    svc = make_service(annotations=SAMPLES["networking.gke.io/load-balancer-ip-addresses"])
    intent = intent_for(provider, svc, sandbox.nodes)
    (ingress,) = converge(provider, intent)
    assert ingress.ip == "198.51.100.20"
    assert provider.plan(intent).empty
    provider.apply(provider.plan_delete(intent.ref))
    s = sandbox.settings
    kept = sdk(sandbox, "AddressesClient").get(project=s["project"], region=s["region"], address="my-ip")
    assert kept.address == "198.51.100.20"


def test_a_named_address_that_does_not_exist_is_refused_by_name(provider, sandbox, server):
    svc = make_service(annotations={"networking.gke.io/load-balancer-ip-addresses": "nope"})
    intent = intent_for(provider, svc, sandbox.nodes)
    server.clear_log()
    with pytest.raises(InvalidService, match=r"load-balancer-ip-addresses.*'nope'"):
        provider.plan(intent)
    assert server.mutating_requests() == []


def test_services_of_ingress_gce_l4_rbs_are_implemented_elsewhere() -> None:
    from lbprov_gcp import GCPProvider

    from lbprov.provider import implemented_elsewhere

    def svc(annotations: dict[str, str]) -> dict[str, object]:
        return {"metadata": {"name": "s", "namespace": "d", "annotations": annotations}, "spec": {}}

    assert implemented_elsewhere(GCPProvider, svc({"cloud.google.com/l4-rbs": "enabled"}))
    assert implemented_elsewhere(GCPProvider, svc({"cloud.google.com/l4-rbs": "disabled"})) is None
    assert implemented_elsewhere(GCPProvider, svc({})) is None
