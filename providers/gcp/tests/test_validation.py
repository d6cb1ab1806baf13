"""Bad input: malformed GCP annotations and settings give clear errors and make no cloud call."""

from __future__ import annotations

import pytest
from gcp_helpers import intent_for, make_service, provider_for
from lbprov_gcp import GCPProvider, GCPSettings
from lbprov_gcp.operations import OPERATIONS, is_write, operation_for
from pydantic import ValidationError

from lbprov.model import InvalidService
from lbprov.provider import load_provider
from lbprov.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("annotations", "field", "message"),
    [
        (
            {"networking.gke.io/load-balancer-type": "Interna1"},
            "networking.gke.io/load-balancer-type",
            "Internal",
        ),
        (
            {"networking.gke.io/load-balancer-type": "External"},
            "networking.gke.io/load-balancer-type",
            "Internal",
        ),
        (
            {"cloud.google.com/load-balancer-type": "private"},
            "cloud.google.com/load-balancer-type",
            "Internal",
        ),
        ({"cloud.google.com/network-tier": "Gold"}, "cloud.google.com/network-tier", "Premium, Standard"),
        (
            {"networking.gke.io/load-balancer-type": "Internal", "cloud.google.com/network-tier": "Standard"},
            "cloud.google.com/network-tier",
            "Premium",
        ),
    ],
)
def test_bad_annotations_name_the_field_and_accepted_values_without_a_call(
    provider, sandbox, server, annotations, field, message
):
    server.clear_log()
    with pytest.raises(InvalidService, match="accepted values") as err:
        intent_for(provider, make_service(annotations=annotations), sandbox.nodes)
    assert field in err.value.field and message in str(err.value)
    assert provider.calls.stats.reads == provider.calls.stats.writes == 0
    assert server.requests == []


def test_ipv6_source_ranges_are_refused(provider, sandbox, server):
    with pytest.raises(InvalidService, match=r"spec\.loadBalancerSourceRanges\[0\].*IPv4"):
        intent_for(provider, make_service(source_ranges=["2001:db8::/32"]), sandbox.nodes)
    assert server.requests == []


def test_internal_without_a_subnetwork_setting_is_refused(sandbox, server):
    provider = provider_for(sandbox, subnetwork=None)
    svc = make_service(annotations={"networking.gke.io/load-balancer-type": "Internal"})
    with pytest.raises(InvalidService, match="subnetwork"):
        intent_for(provider, svc, sandbox.nodes)
    assert server.requests == []


def test_nodes_of_another_project_are_refused_when_none_is_left(provider, sandbox, server):
    foreign = [
        type(n)(n.name, n.provider_id.replace("lbprov-sandbox", "other-project"), n.internal_ip, n.zone)
        for n in sandbox.nodes
    ]
    with pytest.raises(InvalidService, match="providerID gce://lbprov-sandbox/"):
        intent_for(provider, make_service(), foreign)
    assert server.requests == []


def test_a_node_of_another_region_is_left_out(provider, sandbox, server):
    odd = type(sandbox.nodes[0])(
        "far", "gce://lbprov-sandbox/europe-west1-b/far", "10.0.0.9", "europe-west1-b"
    )
    intent = intent_for(provider, make_service(), [*sandbox.nodes, odd])
    groups = provider.plan(intent).changes[:2]
    assert all("far" not in c.after["instances"] for c in groups)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"project": "Bad_Project"}, "project"),
        ({"region": "us-central1-a"}, "region"),
        ({"network": "Net!"}, "network"),
        ({"node_tags": ["UPPER"]}, "node_tags"),
        ({"api_endpoint": "127.0.0.1:8080"}, "api_endpoint"),
        ({"firewall_priority": 70000}, "firewall_priority"),
        ({"unknown_setting": 1}, "unknown_setting"),
    ],
)
def test_bad_settings_name_the_field(sandbox, override, field):
    with pytest.raises(ValidationError) as err:
        GCPProvider.from_settings({**sandbox.settings, **override})
    assert field in str(err.value)


def test_missing_settings_are_reported_through_the_settings_loader(monkeypatch):
    for var in ("LBPROV_GCP_PROJECT", "LBPROV_GCP_REGION"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(
        SettingsError, match=r"gcp settings: required but not given: --gcp-project \(LBPROV_GCP_PROJECT"
    ):
        load_settings(GCPSettings, "gcp", overrides={"network": "n", "node_tags": ["t"]})


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("LBPROV_GCP_PROJECT", "my-project")
    monkeypatch.setenv("LBPROV_GCP_REGION", "europe-west1")
    monkeypatch.setenv("LBPROV_GCP_NETWORK", "vpc")
    monkeypatch.setenv("LBPROV_GCP_NODE_TAGS", '["gke-node"]')
    settings = load_settings(GCPSettings, "gcp")
    assert (settings.project, settings.region, settings.node_tags) == (
        "my-project",
        "europe-west1",
        ("gke-node",),
    )
    assert not settings.uses_emulator


def test_constructing_a_provider_needs_no_credentials_and_makes_no_call():
    provider = GCPProvider.from_settings(
        {"project": "my-project", "region": "us-east1", "network": "vpc", "node_tags": ["n"]}
    )
    intent = intent_for(provider, make_service(), [])
    assert intent.scheme == "external"
    assert provider._compute is None


def test_the_provider_is_registered_as_an_entry_point():
    assert load_provider("gcp") is GCPProvider


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("POST", "/compute/v1/projects/p/regions/r/backendServices", "regionBackendServices.insert"),
        ("PATCH", "/compute/v1/projects/p/regions/r/backendServices/x", "regionBackendServices.patch"),
        ("GET", "/compute/v1/projects/p/regions/r/forwardingRules/x", "forwardingRules.get"),
        ("GET", "/compute/v1/projects/p/regions/r/healthChecks", "regionHealthChecks.list"),
        ("POST", "/compute/v1/projects/p/zones/z/operations/op-1/wait", "zoneOperations.wait"),
        (
            "POST",
            "/compute/v1/projects/p/zones/z/instanceGroups/g/listInstances",
            "instanceGroups.listInstances",
        ),
        ("GET", "/compute/v1/projects/p/aggregated/instanceGroups", "instanceGroups.aggregatedList"),
        ("DELETE", "/compute/v1/projects/p/global/firewalls/f", "firewalls.delete"),
    ],
)
def test_http_requests_map_to_api_method_ids(method, path, operation):
    assert operation_for(method, f"http://127.0.0.1:1{path}?$alt=json") == operation
    assert operation in OPERATIONS


def test_reads_and_writes_are_classified_and_unknown_requests_fail_closed():
    assert not is_write("instanceGroups.listInstances") and not is_write("regionOperations.wait")
    assert is_write("instanceGroups.addInstances") and is_write("forwardingRules.insert")
    assert is_write(operation_for("POST", "http://x/somewhere/else")) and is_write("networks.addPeering")
    assert all(
        op.permissions and all(p.startswith("compute.") for p in op.permissions) for op in OPERATIONS.values()
    )
