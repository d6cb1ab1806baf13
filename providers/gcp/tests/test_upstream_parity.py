"""What cloud-provider-gcp does on a real project and lbprov now does too (issue 11, items 1, 3, 5).

Each test drives the provider through google-cloud-compute against the emulator and reads the
result back through the SDK.
"""

from __future__ import annotations

from typing import Any

import pytest
from gcp_helpers import converge, intent_for, make_service, provider_for
from lbprov_gcp.testing import sdk

from lbprov.model import Action

PROBERS = ["130.211.0.0/22", "209.85.152.0/22", "209.85.204.0/22", "35.191.0.0/16"]


def firewall(sandbox: Any, name: str) -> Any:
    return sdk(sandbox, "FirewallsClient").get(project=sandbox.settings["project"], firewall=name)


def addresses(sandbox: Any) -> list[Any]:
    s = sandbox.settings
    return list(sdk(sandbox, "AddressesClient").list(project=s["project"], region=s["region"]))


def forwarding_rules(sandbox: Any) -> list[Any]:
    s = sandbox.settings
    return list(sdk(sandbox, "ForwardingRulesClient").list(project=s["project"], region=s["region"]))


def assert_converged(provider: Any, intent: Any) -> None:
    plan = provider.plan(intent)
    assert plan.empty, [f"{c.action} {c.kind} {c.name} {c.diff()}" for c in plan.changes]


# -- item 1: Google's four prober ranges -------------------------------------------------------------


def test_health_check_firewalls_open_all_four_prober_ranges(provider, sandbox):
    cluster = intent_for(provider, make_service("cluster"), sandbox.nodes)
    local = intent_for(provider, make_service("local", local=True, hc_port=31000), sandbox.nodes)
    converge(provider, cluster)
    converge(provider, local)
    assert sorted(firewall(sandbox, "k8s-test-node-http-hc").source_ranges) == PROBERS
    assert sorted(firewall(sandbox, f"k8s-{local.lb_name}-http-hc").source_ranges) == PROBERS


def test_a_setting_changes_the_prober_ranges(sandbox):
    provider = provider_for(sandbox, health_check_source_ranges=["35.191.0.0/16"])
    converge(provider, intent_for(provider, make_service(), sandbox.nodes))
    assert list(firewall(sandbox, "k8s-test-node-http-hc").source_ranges) == ["35.191.0.0/16"]


# -- item 3: the traffic firewall's destination is the load balancer's IP ------------------------------


def test_the_traffic_firewall_is_restricted_to_the_load_balancer_ip(provider, sandbox):
    intent = intent_for(provider, make_service(), sandbox.nodes)
    (ingress,) = converge(provider, intent)
    fw = firewall(sandbox, f"k8s-fw-{intent.lb_name}")
    assert list(fw.destination_ranges) == [f"{ingress.ip}/32"]
    assert not list(firewall(sandbox, "k8s-test-node-http-hc").destination_ranges)
    assert_converged(provider, intent)


def test_the_traffic_firewall_follows_a_new_ip(provider, sandbox):
    svc = make_service(ip="203.0.113.40")
    intent = intent_for(provider, svc, sandbox.nodes)
    converge(provider, intent)
    moved = intent_for(provider, make_service(uid=intent.ref.uid, ip="203.0.113.41"), sandbox.nodes)
    converge(provider, moved)
    assert list(firewall(sandbox, f"k8s-fw-{intent.lb_name}").destination_ranges) == ["203.0.113.41/32"]
    assert_converged(provider, moved)


def test_the_internal_traffic_firewall_targets_the_internal_ip(provider, sandbox):
    svc = make_service(annotations={"networking.gke.io/load-balancer-type": "Internal"})
    intent = intent_for(provider, svc, sandbox.nodes)
    (ingress,) = converge(provider, intent)
    assert ingress.ip.startswith("10.128.")
    assert list(firewall(sandbox, f"k8s-fw-{intent.lb_name}").destination_ranges) == [f"{ingress.ip}/32"]
    assert_converged(provider, intent)


# -- item 5: reserve, firewall, rule, release ------------------------------------------------------------


def test_a_new_service_reserves_then_writes_the_firewall_then_the_rule_then_releases(provider, sandbox):
    intent = intent_for(provider, make_service(), sandbox.nodes)
    plan = provider.plan(intent)
    steps = [(c.action, c.kind) for c in plan.changes]
    reserve = steps.index((Action.CREATE, "address"))
    fw = next(i for i, c in enumerate(plan.changes) if c.name == f"k8s-fw-{intent.lb_name}")
    rule = steps.index((Action.CREATE, "forwarding-rule"))
    assert reserve < fw < rule
    assert plan.changes[reserve].data["transient"] is True  # released by apply once the rule holds it
    assert {c.action for c in plan.changes} == {Action.CREATE}  # a new Service's plan only creates
    (ingress,) = provider.apply(plan)
    assert addresses(sandbox) == []  # no static-address quota held
    assert [r.I_p_address for r in forwarding_rules(sandbox)] == [ingress.ip]
    assert_converged(provider, intent)
    provider.calls.reset()
    assert provider.apply(provider.plan(intent)) == (ingress,)
    assert provider.calls.stats.writes == 0


def test_the_setting_static_addresses_keeps_one_reservation_per_service(sandbox):
    provider = provider_for(sandbox, static_addresses=True)
    intent = intent_for(provider, make_service(), sandbox.nodes)
    (ingress,) = converge(provider, intent)
    (address,) = addresses(sandbox)
    assert address.name == intent.lb_name and address.address == ingress.ip and address.status == "IN_USE"
    assert_converged(provider, intent)
    # turning the setting off releases it on the next reconcile, and the IP stays
    default = provider_for(sandbox)
    assert converge(default, intent) == (ingress,)
    assert addresses(sandbox) == []
    assert_converged(default, intent)


def test_tcp_and_udp_on_one_ip_keep_their_reservation(provider, sandbox):
    svc = make_service(ports=[("TCP", 53, 30053), ("UDP", 53, 30054)])
    intent = intent_for(provider, svc, sandbox.nodes)
    (ingress,) = converge(provider, intent)
    assert [a.address for a in addresses(sandbox)] == [ingress.ip]
    assert_converged(provider, intent)


def test_deleting_a_service_leaves_no_reservation(provider, sandbox):
    intent = intent_for(provider, make_service(), sandbox.nodes)
    converge(provider, intent)
    provider.apply(provider.plan_delete(intent.ref))
    assert addresses(sandbox) == [] and forwarding_rules(sandbox) == []


# -- item 4: GCP needs no NodePorts -------------------------------------------------------------------


def test_allocate_load_balancer_node_ports_false_is_served(provider, sandbox):
    svc = make_service(ports=[("TCP", 80, 0), ("TCP", 443, 0)], node_ports=False)
    intent = intent_for(provider, svc, sandbox.nodes)
    assert [p.node_port for p in intent.ports] == [None, None]
    (ingress,) = converge(provider, intent)
    (rule,) = forwarding_rules(sandbox)
    assert list(rule.ports) == ["80", "443"] and rule.I_p_address == ingress.ip
    allowed = firewall(sandbox, f"k8s-fw-{intent.lb_name}").allowed
    assert [(a.I_p_protocol, list(a.ports)) for a in allowed] == [("tcp", ["80", "443"])]
    assert_converged(provider, intent)


# -- node tags found from the instances, as upstream; the setting overrides -----------------------------


def _seed_gke_like_nodes(sandbox: Any, server: Any) -> list[Any]:
    emu = server.emulator
    seeded = sandbox.extra["seeded"]
    zone = sandbox.nodes[0].zone
    nodes = []
    for name in ("gke-pool-a1", "gke-pool-a2"):
        emu.seed_instance(
            name, zone, network=seeded.network, subnet=seeded.subnetwork, tags=["gke-pool", "gke", "other"]
        )
        nodes.append(type(sandbox.nodes[0])(name, f"gce://{emu.project}/{zone}/{name}", "10.0.0.1", zone))
    return nodes


def test_node_tags_are_found_from_the_instances_as_upstream(sandbox, server):
    nodes = _seed_gke_like_nodes(sandbox, server)
    provider = provider_for(sandbox, node_tags=[])
    intent = intent_for(provider, make_service(), nodes)
    converge(provider, intent)
    # the longest tag that is a prefix of the instance name
    assert list(firewall(sandbox, f"k8s-fw-{intent.lb_name}").target_tags) == ["gke-pool"]
    assert list(firewall(sandbox, "k8s-test-node-http-hc").target_tags) == ["gke-pool"]
    provider.calls.reset()
    assert provider.plan(intent).empty
    assert "instances.list" not in provider.calls.stats.operations(
        "read"
    )  # read again only when nodes change


def test_the_node_tags_setting_overrides_discovery(sandbox, server):
    nodes = _seed_gke_like_nodes(sandbox, server)
    provider = provider_for(sandbox, node_tags=["mine"])
    intent = intent_for(provider, make_service(), nodes)
    converge(provider, intent)
    assert list(firewall(sandbox, f"k8s-fw-{intent.lb_name}").target_tags) == ["mine"]
    assert "instances.list" not in provider.calls.stats.operations("read")


def test_an_instance_without_a_prefix_tag_is_an_error_naming_it_and_the_setting(sandbox):
    provider = provider_for(sandbox, node_tags=[])  # the sandbox's instances are tagged k8s-sandbox-node
    intent = intent_for(provider, make_service(), sandbox.nodes)
    with pytest.raises(ValueError, match=rf"instance {sandbox.nodes[0].name} has no network tag.*node_tags"):
        provider.plan(intent)


def test_an_upstream_firewall_of_the_service_is_adopted_in_place(provider, sandbox, server):
    """Upstream's firewall k8s-fw-<lb> (its description as upstream writes it for this Service) no
    longer stops lbprov with an ownership conflict: it is patched into lbprov's (plan action adopt),
    never deleted and created again. (Upstream's whole load balancer: tests/test_migration.py;
    look-alikes of another Service or cluster stay conflicts there.)"""
    svc = make_service()
    intent = intent_for(provider, svc, sandbox.nodes)
    upstream = '{"kubernetes.io/service-name":"default/web", "kubernetes.io/service-ip":"203.0.113.9"}'
    server.emulator.put_raw(
        "firewalls",
        "global",
        {
            "name": f"k8s-fw-{intent.lb_name}",
            "description": upstream,
            "network": f"global/networks/{sandbox.settings['network']}",
            "sourceRanges": ["0.0.0.0/0"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["80"]}],
        },
    )
    plan = provider.plan(intent)
    fw = [c for c in plan.changes if c.name == f"k8s-fw-{intent.lb_name}"]
    assert [c.action for c in fw] == [Action.ADOPT]
    converge(provider, intent)
    assert "lbprov.io/cluster-id" in firewall(sandbox, f"k8s-fw-{intent.lb_name}").description
    assert_converged(provider, intent)
