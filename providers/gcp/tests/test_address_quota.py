"""The emulator's external addresses: a pool wide enough for a 1,000-Service benchmark, and finite,
with GCE's regional ``IN_USE_ADDRESSES`` quota refusing one more external IP with GCE's error."""

from __future__ import annotations

import pytest
from gcp_helpers import converge, intent_for, make_service
from google.api_core import exceptions as gexc
from lbprov_gcp.sandbox import ipam


def _reserve(emulator, project, region, name):
    return emulator.handle(
        "POST", f"/compute/v1/projects/{project}/regions/{region}/addresses", {}, {"name": name}
    )


def test_more_than_a_thousand_external_addresses_fit(sandbox, server):
    emu = server.emulator
    project, region = sandbox.settings["project"], sandbox.settings["region"]
    for i in range(1100):
        status, body = _reserve(emu, project, region, f"a{i}")
        assert status == 200, body
    ips = {a["address"] for a in emu.all_of("addresses")}
    assert len(ips) == 1100
    assert all(ipam.in_external_pool(ip) for ip in ips)


def test_the_in_use_addresses_quota_refuses_one_more_external_ip_with_gces_error(sandbox, server):
    emu = server.emulator
    emu.in_use_addresses_quota = 2
    project, region = sandbox.settings["project"], sandbox.settings["region"]
    assert _reserve(emu, project, region, "a0")[0] == 200
    assert _reserve(emu, project, region, "a1")[0] == 200
    status, body = _reserve(emu, project, region, "a2")
    assert status == 403
    assert body["error"]["errors"][0]["reason"] == "quotaExceeded"
    assert body["error"]["message"] == f"Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 2.0 in region {region}."


def test_a_service_over_the_quota_gets_the_quota_error_through_the_sdk_and_no_retry(
    provider, sandbox, server
):
    server.emulator.in_use_addresses_quota = 1
    first = intent_for(provider, make_service("one"), sandbox.nodes)
    converge(provider, first)  # one IP: the quota is full
    second = intent_for(
        provider, make_service("two", uid="22222222-2222-4222-8222-222222222222"), sandbox.nodes
    )
    with pytest.raises(gexc.Forbidden, match="IN_USE_ADDRESSES"):
        converge(provider, second)
    assert sum(provider.calls.stats.retries.values()) == 0
    server.emulator.in_use_addresses_quota = 2
    converge(provider, second)
    assert provider.plan(second).empty
