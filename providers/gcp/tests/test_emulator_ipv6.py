"""The emulator's IPv6 rules (sandbox/ipv6.py), each checked through google-cloud-compute: IPv6
forwarding rules and addresses come from a dual-stack subnetwork of the matching access type."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import compute_v1 as c
from test_emulator import Api, P, R, reason

SUBNET = "lbprov-subnet"  # the sandbox's dual-stack subnetwork, external IPv6 access
NET = "lbprov-net"


@pytest.fixture
def api(sandbox: Any) -> Api:
    api = Api(sandbox.endpoint)
    api.health_check()
    api.backend()
    return api


def test_an_external_ipv6_rule_takes_a_96_of_the_dual_stack_subnetwork(api):
    rule = api.rule("v6", ip_version="IPV6", subnetwork=f"regions/{R}/subnetworks/{SUBNET}", ports=["80"])
    assert rule.ip_version == "IPV6" and rule.I_p_address.startswith("2001:db8:0:1:")
    # a second one, given its /96 as ingress-gce gives it
    taken = rule.I_p_address
    second = api.rule(
        "v6b",
        ip_version="IPV6",
        subnetwork=f"regions/{R}/subnetworks/{SUBNET}",
        ports=["81"],
        I_p_address="2001:db8:0:1:0:9::/96",
    )
    assert second.I_p_address == "2001:db8:0:1:0:9::" != taken


def test_an_external_ipv6_rule_without_a_subnetwork_is_refused(api):
    with pytest.raises(gexc.BadRequest, match="needs a subnetwork") as err:
        api.rule("v6", ip_version="IPV6", ports=["80"])
    assert reason(err.value) == "invalid"


def test_an_ipv6_rule_on_an_ipv4_only_subnetwork_is_refused(sandbox, api):
    sandbox.extra["emulator"].seed_network(NET, "v4-only", "10.140.0.0/20")
    with pytest.raises(gexc.BadRequest, match="stackType IPV4_ONLY"):
        api.rule("v6", ip_version="IPV6", subnetwork=f"regions/{R}/subnetworks/v4-only", ports=["80"])


def test_an_internal_ipv6_rule_on_an_external_access_subnetwork_is_refused(api):
    api.backend("ibs", scheme="INTERNAL")
    with pytest.raises(gexc.BadRequest, match="ipv6AccessType EXTERNAL"):
        api.rule(
            "v6",
            ip_version="IPV6",
            load_balancing_scheme="INTERNAL",
            backend_service=f"regions/{R}/backendServices/ibs",
            subnetwork=f"regions/{R}/subnetworks/{SUBNET}",
            ports=["80"],
        )


def test_an_external_ipv6_rule_given_a_bare_address_is_refused(api):
    with pytest.raises(gexc.BadRequest, match="/96"):
        api.rule(
            "v6",
            ip_version="IPV6",
            subnetwork=f"regions/{R}/subnetworks/{SUBNET}",
            ports=["80"],
            I_p_address="2001:db8:0:1:0:9::",
        )


def test_a_standard_tier_ipv6_rule_is_refused(api):
    with pytest.raises(gexc.BadRequest, match="PREMIUM"):
        api.rule(
            "v6",
            ip_version="IPV6",
            subnetwork=f"regions/{R}/subnetworks/{SUBNET}",
            ports=["80"],
            network_tier="STANDARD",
        )


def test_ipv6_addresses_need_a_dual_stack_subnetwork_and_an_endpoint_type(sandbox, api):
    def reserve(name: str, **fields: Any) -> c.Address:
        api.addr.insert(project=P, region=R, address_resource=c.Address(name=name, **fields)).result()
        return api.addr.get(project=P, region=R, address=name)

    got = reserve(
        "ok", ip_version="IPV6", ipv6_endpoint_type="NETLB", subnetwork=f"regions/{R}/subnetworks/{SUBNET}"
    )
    assert got.address.startswith("2001:db8:0:1:") and got.prefix_length == 96
    with pytest.raises(gexc.BadRequest, match="NETLB or VM"):
        reserve("no-endpoint", ip_version="IPV6", subnetwork=f"regions/{R}/subnetworks/{SUBNET}")
    sandbox.extra["emulator"].seed_network(NET, "v4-only", "10.140.0.0/20")
    with pytest.raises(gexc.BadRequest, match="IPV4_ONLY"):
        reserve(
            "v4", ip_version="IPV6", ipv6_endpoint_type="NETLB", subnetwork=f"regions/{R}/subnetworks/v4-only"
        )
    # IPv6 addresses do not count against the IPv4 IN_USE_ADDRESSES quota
    sandbox.extra["emulator"].in_use_addresses_quota = 0
    reserve(
        "more", ip_version="IPV6", ipv6_endpoint_type="NETLB", subnetwork=f"regions/{R}/subnetworks/{SUBNET}"
    )
