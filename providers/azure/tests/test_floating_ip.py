"""Floating IP as upstream: on by default (NSG rules target the frontend IP), off by annotation
(backend port = NodePort, NSG rules target the backend nodes' IPs, never ``VirtualNetwork``)."""

from __future__ import annotations

from lbprov_azure.testing import SANDBOX_RG, allow_rule

DISABLE = "service.beta.kubernetes.io/azure-disable-load-balancer-floating-ip"


def _rule(state, cluster, name):
    lb = state.get("loadBalancers", SANDBOX_RG, cluster)
    return next(r["properties"] for r in lb["properties"]["loadBalancingRules"] if r["name"] == name)


def _nsg_rule(state, name):
    nsg = state.get("networkSecurityGroups", SANDBOX_RG, "lbprov-nsg")
    return next(r["properties"] for r in nsg["properties"]["securityRules"] if r["name"] == name)


def test_floating_ip_is_on_by_default_and_the_nsg_targets_the_frontend_ip(
    provider, cluster, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service(ports=[("TCP", 8080)]))
    (ingress,) = ensure(intent)
    rule = _rule(state, cluster, f"{intent.lb_name}-TCP-8080")
    assert (rule["enableFloatingIP"], rule["backendPort"]) == (True, 8080)
    nsg = allow_rule(state, intent.lb_name, ingress.ip)
    assert (nsg["destinationAddressPrefix"], nsg["destinationPortRange"]) == (ingress.ip, "8080")


def test_disabled_floating_ip_targets_node_ports_on_the_node_ips(
    provider, cluster, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service(ports=[("TCP", 8080)], annotations={DISABLE: "true"}))
    ensure(intent)
    (port,) = intent.ports
    rule = _rule(state, cluster, f"{intent.lb_name}-TCP-8080")
    assert (rule["enableFloatingIP"], rule["backendPort"]) == (False, port.node_port)
    nsg = _nsg_rule(state, f"lbprov-{intent.lb_name}-TCP")
    assert "destinationAddressPrefix" not in nsg
    assert sorted(nsg["destinationAddressPrefixes"]) == sorted(t.internal_ip for t in intent.targets)
    assert nsg["destinationPortRange"] == str(port.node_port)


def test_turning_floating_ip_off_moves_the_nsg_rule_to_the_nodes(
    provider, cluster, intent_for, make_service, ensure, state
):
    svc = make_service(ports=[("TCP", 8080)])
    ensure(intent_for(svc))
    svc["metadata"]["annotations"][DISABLE] = "true"
    off = intent_for(svc)
    kinds = sorted((c.action.value, c.kind) for c in provider.plan(off).changes)
    # the Service leaves the rule shared by destination (its last destination: the rule goes) for a
    # rule of its own to the node IPs (NodePorts are the Service's own: nothing to share)
    assert kinds == [("create", "nsg-rule"), ("delete", "nsg-rule"), ("update", "load-balancing-rule")]
    ensure(off)
