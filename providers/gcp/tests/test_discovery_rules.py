"""The emulator's strictness from Google's discovery document (issue 11): methods, types and
formats, output-only fields and patterns, plus the cross-field rules the descriptions state. Each
request below is one GCE rejects (or, for the address name, accepts)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import compute_v1 as c
from lbprov_gcp.sandbox.discovery import document
from test_emulator import Api, P, R, reason  # noqa: F401 - the emulator tests' SDK helpers


@pytest.fixture
def api(sandbox: Any) -> Api:
    return Api(sandbox.endpoint)


def post(sandbox: Any, path: str, body: dict[str, Any], method: str = "POST") -> requests.Response:
    return requests.request(
        method, f"{sandbox.endpoint}/compute/v1/projects/{P}/{path}", json=body, timeout=5
    )


def test_the_document_is_googles(sandbox):
    doc = document()
    assert doc["name"] == "compute" and doc["version"] == "v1"
    assert "update" not in doc["resources"]["forwardingRules"]["methods"]


def test_a_method_the_api_does_not_have_is_404(sandbox, api):
    zone = sandbox.nodes[0].zone
    api.health_check()
    api.group(zone)
    api.backend(groups=(f"zones/{zone}/instanceGroups/ig",))
    api.rule("fr", ports=["80"])
    r = post(sandbox, f"regions/{R}/forwardingRules/fr", {"name": "fr"}, method="PUT")
    assert r.status_code == 404 and "forwardingRules.update" in r.json()["error"]["message"]


@pytest.mark.parametrize("value", [True, 8.5, "eight"])
def test_an_int32_field_takes_only_integers(sandbox, value):
    body = {"name": "hc", "type": "HTTP", "httpHealthCheck": {"port": 80}, "checkIntervalSec": value}
    r = post(sandbox, f"regions/{R}/healthChecks", body)
    assert r.status_code == 400 and "resource.checkIntervalSec" in r.json()["error"]["message"]


def test_a_boolean_field_takes_only_booleans(sandbox):
    body = {
        "name": "fw",
        "network": "global/networks/lbprov-net",
        "sourceRanges": ["0.0.0.0/0"],
        "allowed": [{"IPProtocol": "tcp"}],
        "disabled": "no",
    }
    r = post(sandbox, "global/firewalls", body)
    assert r.status_code == 400 and "resource.disabled" in r.json()["error"]["message"]


@pytest.mark.parametrize("field", ["id", "selfLink", "creationTimestamp"])
def test_output_only_fields_are_refused_and_never_stored(sandbox, field):
    body = {"name": "hc", "type": "HTTP", "httpHealthCheck": {"port": 80}, field: "1234"}
    r = post(sandbox, f"regions/{R}/healthChecks", body)
    assert r.status_code == 400 and f"resource.{field}" in r.json()["error"]["message"]
    assert (
        requests.get(
            f"{sandbox.endpoint}/compute/v1/projects/{P}/regions/{R}/healthChecks/hc", timeout=5
        ).status_code
        == 404
    )


def test_patterns_come_from_the_document(sandbox):
    r = post(
        sandbox,
        f"regions/{R}/healthChecks",
        {"name": "Bad_Name", "type": "HTTP", "httpHealthCheck": {"port": 80}},
    )
    assert r.status_code == 400 and "[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?" in r.json()["error"]["message"]


def test_an_internal_rule_in_a_custom_mode_network_needs_a_subnetwork(sandbox, api):
    # "If the network specified is in auto subnet mode, this field is optional. However, a
    # subnetwork must be specified if the network is in custom subnet mode ..."
    zone = sandbox.nodes[0].zone
    api.health_check()
    api.group(zone)
    body = c.BackendService(
        name="bs",
        protocol="TCP",
        load_balancing_scheme="INTERNAL",
        network="global/networks/lbprov-net",
        health_checks=[f"regions/{R}/healthChecks/hc"],
    )
    api.bs.insert(project=P, region=R, backend_service_resource=body).result()
    with pytest.raises(gexc.BadRequest, match="custom subnet mode"):
        api.rule("fr", load_balancing_scheme="INTERNAL", network="global/networks/lbprov-net", ports=["80"])


def test_an_external_backend_service_with_a_network_is_refused(sandbox, api):
    # "This field can only be specified when the load balancing scheme is set to INTERNAL, or when
    # the load balancing scheme is set to EXTERNAL and haPolicy fastIpMove is enabled."
    api.health_check()
    body = c.BackendService(
        name="bs",
        protocol="TCP",
        load_balancing_scheme="EXTERNAL",
        network="global/networks/lbprov-net",
        health_checks=[f"regions/{R}/healthChecks/hc"],
    )
    with pytest.raises(gexc.BadRequest, match=r"resource\.network"):
        api.bs.insert(project=P, region=R, backend_service_resource=body).result()


def test_an_ip_address_given_as_an_address_name_is_accepted(sandbox, api):
    # "Use one of the following formats ... Partial URL or by name, as in: ... address-name"
    zone = sandbox.nodes[0].zone
    api.health_check()
    api.group(zone)
    api.backend(groups=(f"zones/{zone}/instanceGroups/ig",))
    api.addr.insert(project=P, region=R, address_resource=c.Address(name="my-ip")).result()
    ip = api.addr.get(project=P, region=R, address="my-ip").address
    fr = api.rule("fr", I_p_address="my-ip", ports=["80"])
    assert fr.I_p_address == ip  # "When reading an IPAddress, the API always returns the IP address number."
