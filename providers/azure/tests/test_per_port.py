"""Per-port annotations (``service.beta.kubernetes.io/port_<port>_*``) as upstream reads them,
through azure-mgmt-network against the emulator."""

from __future__ import annotations

import pytest
from lbprov_azure.testing import SANDBOX_RG, allow_rule

from lbprov.model import InvalidService

PORT = "service.beta.kubernetes.io/port_{}_"


def _lb(state, cluster):
    lb = state.get("loadBalancers", SANDBOX_RG, cluster)
    props = lb["properties"]
    return (
        {r["name"]: r["properties"] for r in props["loadBalancingRules"]},
        {p["name"]: p["properties"] for p in props["probes"]},
    )


def _nsg_ports(state, name):
    nsg = state.get("networkSecurityGroups", SANDBOX_RG, "lbprov-nsg")
    rule = next(r["properties"] for r in nsg["properties"]["securityRules"] if r["name"] == name)
    return rule.get("destinationPortRanges") or [rule["destinationPortRange"]]


def test_no_lb_rule_leaves_the_port_without_rule_probe_or_nsg_port(
    cluster, intent_for, make_service, ensure, state
):
    svc = make_service(
        ports=[("TCP", 80), ("TCP", 443)], annotations={PORT.format(443) + "no_lb_rule": "true"}
    )
    intent = intent_for(svc)
    (ingress,) = ensure(intent)
    rules, probes = _lb(state, cluster)
    base = intent.lb_name
    assert set(rules) == set(probes) == {f"{base}-TCP-80"}
    rule = allow_rule(state, base, ingress.ip)
    assert (rule.get("destinationPortRanges") or [rule["destinationPortRange"]]) == ["80"]


def test_no_probe_rule_gives_a_rule_without_a_probe(cluster, intent_for, make_service, ensure, state):
    svc = make_service(
        ports=[("TCP", 80), ("TCP", 443)], annotations={PORT.format(80) + "no_probe_rule": "true"}
    )
    intent = intent_for(svc)
    ensure(intent)
    rules, probes = _lb(state, cluster)
    base = intent.lb_name
    assert set(rules) == {f"{base}-TCP-80", f"{base}-TCP-443"}
    assert set(probes) == {f"{base}-TCP-443"}
    assert "probe" not in rules[f"{base}-TCP-80"]


def test_per_port_probe_settings_override_the_service_level_ones(
    cluster, intent_for, make_service, ensure, state
):
    p80 = PORT.format(80)
    svc = make_service(
        ports=[("TCP", 80), ("TCP", 443)],
        annotations={
            "service.beta.kubernetes.io/azure-load-balancer-health-probe-interval": "10",
            p80 + "health-probe_protocol": "Http",
            p80 + "health-probe_port": "tcp-443",  # a Service port by name: its NodePort
            p80 + "health-probe_request-path": "/live",
            p80 + "health-probe_interval": "7",
            p80 + "health-probe_num-of-probe": "4",
        },
    )
    intent = intent_for(svc)
    ensure(intent)
    _, probes = _lb(state, cluster)
    base = intent.lb_name
    node_port_443 = next(p.node_port for p in intent.ports if p.port == 443)
    p = probes[f"{base}-TCP-80"]
    assert (p["protocol"], p["port"], p["requestPath"], p["intervalInSeconds"], p["probeThreshold"]) == (
        "Http",
        node_port_443,
        "/live",
        7,
        4,
    )
    other = probes[f"{base}-TCP-443"]
    assert (other["protocol"], other["port"], other["intervalInSeconds"]) == ("Tcp", node_port_443, 10)


@pytest.mark.parametrize(
    ("annotations", "field", "message"),
    [
        ({PORT.format(81) + "no_lb_rule": "true"}, "port_81_no_lb_rule", "not a port of this Service"),
        ({PORT.format(80) + "no_lb_rule": "yes"}, "port_80_no_lb_rule", "true, false"),
        (
            {PORT.format(80) + "no_lb_rule": "true", PORT.format(80) + "health-probe_interval": "7"},
            "port_80_health-probe_interval",
            "no load-balancing rule",
        ),
        (
            {PORT.format(80) + "no_probe_rule": "true", PORT.format(80) + "health-probe_protocol": "Tcp"},
            "port_80_health-probe_protocol",
            "has no probe",
        ),
        ({PORT.format(80) + "health-probe_num-of-probe": "1"}, "port_80_health-probe_num-of-probe", "2-24"),
        (
            {
                PORT.format(80) + "health-probe_interval": "30",
                PORT.format(80) + "health-probe_num-of-probe": "4",
            },
            "port_80_health-probe_num-of-probe",
            "below 120 s",
        ),
        ({PORT.format(80) + "health-probe_port": "70000"}, "port_80_health-probe_port", "1-65535"),
        ({PORT.format(80) + "health-probe_protocol": "Icmp"}, "port_80_health-probe_protocol", "Tcp, Http"),
    ],
)
def test_bad_per_port_annotations_are_clear_errors(intent_for, make_service, annotations, field, message):
    with pytest.raises(InvalidService) as info:
        intent_for(make_service(ports=[("TCP", 80), ("TCP", 443)], annotations=annotations))
    assert field in info.value.field and message in str(info.value)


def test_per_port_probe_protocol_is_refused_for_local_policy(intent_for, make_service):
    svc = make_service(policy="Local", annotations={PORT.format(80) + "health-probe_protocol": "Tcp"})
    with pytest.raises(InvalidService, match="externalTrafficPolicy: Local"):
        intent_for(svc)
