"""HA ports (``azure-load-balancer-enable-high-availability-ports``, internal Standard only, as upstream
and ARM): one rule of protocol All with frontend and backend port 0, named and probed as the first port;
ARM refuses such a rule on a public frontend."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure.testing import SANDBOX_RG

P = "service.beta.kubernetes.io/azure-"
HA = {P + "load-balancer-internal": "true", P + "load-balancer-enable-high-availability-ports": "true"}


def test_ha_ports_make_one_all_protocol_rule(provider, cluster, intent_for, make_service, ensure, state):
    intent = intent_for(make_service(ports=[("TCP", 80), ("TCP", 443), ("UDP", 53)], annotations=dict(HA)))
    ensure(intent)
    lb = state.get("loadBalancers", SANDBOX_RG, f"{cluster}-internal")
    ours = [r for r in lb["properties"]["loadBalancingRules"] if r["name"].startswith(intent.lb_name)]
    assert [r["name"] for r in ours] == [f"{intent.lb_name}-TCP-80"]
    p = ours[0]["properties"]
    assert (p["protocol"], p["frontendPort"], p["backendPort"], p["enableFloatingIP"]) == ("All", 0, 0, True)
    assert p["probe"]["id"].endswith(f"/probes/{intent.lb_name}-TCP-80")
    provider.apply(provider.plan_delete(intent.ref))
    lb = state.get("loadBalancers", SANDBOX_RG, f"{cluster}-internal")
    assert lb is None or not any(
        r["name"].startswith(intent.lb_name) for r in lb["properties"]["loadBalancingRules"]
    )


def test_turning_ha_ports_on_replaces_the_port_rules(provider, intent_for, make_service, ensure):
    svc = make_service(ports=[("TCP", 80), ("TCP", 443)], annotations={P + "load-balancer-internal": "true"})
    ensure(intent_for(svc))
    svc["metadata"]["annotations"].update(HA)
    ha = intent_for(svc)
    changes = sorted((c.action.value, c.kind, c.name.split("/")[-1]) for c in provider.plan(ha).changes)
    assert changes == [
        ("delete", "load-balancing-rule", f"{ha.lb_name}-TCP-443"),
        ("delete", "probe", f"{ha.lb_name}-TCP-443"),
        ("update", "load-balancing-rule", f"{ha.lb_name}-TCP-80"),
    ]
    ensure(ha)
    provider.apply(provider.plan_delete(ha.ref))


def test_arm_refuses_an_all_protocol_rule_on_a_public_frontend(
    provider, cluster, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service())
    ensure(intent)
    lb = provider.client.load_balancers.get(SANDBOX_RG, cluster).as_dict()
    rule = lb["properties"]["loadBalancingRules"][0]["properties"]
    rule.update(protocol="All", frontendPort=0, backendPort=0)
    with pytest.raises(HttpResponseError, match="InvalidHaPortsLoadBalancingRule"):
        provider.client.load_balancers.begin_create_or_update(SANDBOX_RG, cluster, lb).result()
    provider.apply(provider.plan_delete(intent.ref))
