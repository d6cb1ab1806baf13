"""Issue 11, migration in place: a Service whose load balancer cloud-provider-gcp made (target pool,
legacy HTTP health check, firewalls) keeps its IP when lbprov takes it over, and nothing of
upstream's for that Service is left; look-alikes of another Service or cluster stay conflicts.

Upstream's load balancer is made by :func:`lbprov_gcp.testing_predecessor.make_upstream_lb`, as
upstream makes it; the results are read back through google-cloud-compute (and REST for the legacy
``httpHealthChecks``, which it has no client for).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from gcp_helpers import GCE_CLUSTER_ID, converge, intent_for, make_service, provider_for
from lbprov_gcp.testing import sdk
from lbprov_gcp.testing_predecessor import make_upstream_lb

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Action, OwnershipConflict
from lbprov.render import render_plan
from lbprov.testing import wait_for


def target_pools(sandbox: Any) -> list[str]:
    s = sandbox.settings
    return [p.name for p in sdk(sandbox, "TargetPoolsClient").list(project=s["project"], region=s["region"])]


def http_health_checks(sandbox: Any) -> list[str]:
    s = sandbox.settings
    url = f"{sandbox.endpoint}/compute/v1/projects/{s['project']}/global/httpHealthChecks"
    return sorted(h["name"] for h in requests.get(url, timeout=10).json().get("items", []))


def rules(sandbox: Any) -> dict[str, str]:
    s = sandbox.settings
    found = sdk(sandbox, "ForwardingRulesClient").list(project=s["project"], region=s["region"])
    return {r.name: r.I_p_address for r in found}


def firewalls(sandbox: Any) -> dict[str, Any]:
    return {f.name: f for f in sdk(sandbox, "FirewallsClient").list(project=sandbox.settings["project"])}


def addresses(sandbox: Any) -> list[str]:
    s = sandbox.settings
    return [a.name for a in sdk(sandbox, "AddressesClient").list(project=s["project"], region=s["region"])]


def summary(plan: Any) -> list[tuple[str, str, str]]:
    return [(str(c.action), c.kind, c.name) for c in plan.changes]


def test_the_helper_makes_upstreams_shapes(sandbox):
    svc = make_service()
    up = make_upstream_lb(sandbox, svc, sandbox.nodes, GCE_CLUSTER_ID)
    lb = up.forwarding_rule
    s = sandbox.settings
    rule = sdk(sandbox, "ForwardingRulesClient").get(
        project=s["project"], region=s["region"], forwarding_rule=lb
    )
    assert rule.target.endswith(f"/targetPools/{lb}") and rule.port_range == "80-80"
    assert json.loads(rule.description) == {"kubernetes.io/service-name": "default/web"}
    assert addresses(sandbox) == []  # released after the rule holds the IP, as upstream
    fws = firewalls(sandbox)
    assert json.loads(fws[f"k8s-fw-{lb}"].description) == {
        "kubernetes.io/service-name": "default/web",
        "kubernetes.io/service-ip": up.ip,
    }
    assert json.loads(fws[f"k8s-{GCE_CLUSTER_ID}-node-http-hc"].description) == {
        "kubernetes.io/cluster-id": GCE_CLUSTER_ID
    }
    assert http_health_checks(sandbox) == [f"k8s-{GCE_CLUSTER_ID}-node"]


@pytest.mark.parametrize(
    ("local", "protocol"), [(False, "TCP"), (True, "TCP"), (False, "UDP")], ids=["cluster", "local", "udp"]
)
def test_an_upstream_load_balancer_is_taken_over_on_its_ip(provider, sandbox, server, local, protocol):
    svc = make_service(local=local, hc_port=31500, ports=[(protocol, 53, 30053), (protocol, 80, 30080)])
    up = make_upstream_lb(sandbox, svc, sandbox.nodes, GCE_CLUSTER_ID)
    lb = up.forwarding_rule
    intent = intent_for(provider, svc, sandbox.nodes)

    plan = provider.plan(intent)
    changes = summary(plan)
    adopt_ip = next(c for c in plan.changes if c.kind == "address")
    assert adopt_ip.action is Action.ADOPT and adopt_ip.after["address"] == up.ip
    assert ("delete", "forwarding-rule", lb) in changes
    assert ("delete", "target-pool", lb) in changes
    assert ("delete", "http-health-check", up.health_check) in changes
    assert ("adopt", "firewall-rule", f"k8s-fw-{lb}") in changes
    if local:
        assert ("adopt", "firewall-rule", f"k8s-{lb}-http-hc") in changes
    else:
        assert ("delete", "firewall-rule", f"k8s-{GCE_CLUSTER_ID}-node-http-hc") in changes
    # the IP is promoted before upstream's rule goes, and lbprov's rule comes after it
    order = [(c.action, c.kind, c.name) for c in plan.changes]
    assert order.index((Action.ADOPT, "address", lb)) < order.index((Action.DELETE, "forwarding-rule", lb))
    ours = f"{lb}-{protocol.lower()}"
    assert order.index((Action.DELETE, "forwarding-rule", lb)) < order.index(
        (Action.CREATE, "forwarding-rule", ours)
    )
    assert plan.ingress[0].ip == up.ip

    ingress = provider.apply(plan)
    assert ingress[0].ip == up.ip
    assert rules(sandbox) == {ours: up.ip}
    assert target_pools(sandbox) == []
    assert http_health_checks(sandbox) == []
    assert addresses(sandbox) == []  # the transient reservation is released, as upstream would
    fws = firewalls(sandbox)
    assert f"k8s-{GCE_CLUSTER_ID}-node-http-hc" not in fws
    assert "lbprov.io/cluster-id" in fws[f"k8s-fw-{lb}"].description
    assert list(fws[f"k8s-fw-{lb}"].destination_ranges) == [f"{up.ip}/32"]
    second = provider.plan(intent)
    assert second.empty, summary(second)


def test_the_nodes_check_stays_while_another_target_pool_uses_it(provider, sandbox):
    web, other = make_service("web"), make_service("other")
    up = make_upstream_lb(sandbox, web, sandbox.nodes, GCE_CLUSTER_ID)
    kept = make_upstream_lb(sandbox, other, sandbox.nodes, GCE_CLUSTER_ID)
    converge(provider, intent_for(provider, web, sandbox.nodes))
    assert target_pools(sandbox) == [kept.target_pool]
    assert http_health_checks(sandbox) == [f"k8s-{GCE_CLUSTER_ID}-node"]
    assert f"k8s-{GCE_CLUSTER_ID}-node-http-hc" in firewalls(sandbox)
    assert rules(sandbox)[kept.forwarding_rule] == kept.ip
    assert rules(sandbox)[f"{up.forwarding_rule}-tcp"] == up.ip
    # the second Service's takeover then takes the check with it
    converge(provider, intent_for(provider, other, sandbox.nodes))
    assert target_pools(sandbox) == [] and http_health_checks(sandbox) == []
    assert f"k8s-{GCE_CLUSTER_ID}-node-http-hc" not in firewalls(sandbox)


def test_an_interrupted_takeover_is_finished_by_the_next_plan(provider, sandbox, monkeypatch):
    svc = make_service()
    up = make_upstream_lb(sandbox, svc, sandbox.nodes, GCE_CLUSTER_ID)
    intent = intent_for(provider, svc, sandbox.nodes)
    plan = provider.plan(intent)
    # the apply fails when it comes to upstream's target pool, after upstream's rule is gone
    delete = provider.compute.delete

    def failing(kind: str, name: str, zone: str | None = None) -> None:
        if kind == "targetPools":
            raise RuntimeError("interrupted")
        delete(kind, name, zone)

    monkeypatch.setattr(provider.compute, "delete", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        provider.apply(plan)
    monkeypatch.undo()
    assert up.forwarding_rule not in rules(sandbox) and target_pools(sandbox) == [up.target_pool]
    ingress = converge(provider, intent)
    assert ingress[0].ip == up.ip
    assert target_pools(sandbox) == [] and http_health_checks(sandbox) == []
    assert provider.plan(intent).empty


def test_a_service_without_an_upstream_load_balancer_reads_no_legacy_kind(provider, sandbox):
    """The takeover's extra reads happen only when something of upstream's shows."""
    intent = intent_for(provider, make_service(), sandbox.nodes)
    converge(provider, intent)
    provider.plan(intent)
    reads = provider.calls.stats.operations("read")
    assert "forwardingRules.list" in reads
    assert not {"targetPools.list", "httpHealthChecks.list"} & set(reads)


def test_a_dry_run_of_the_takeover_writes_nothing_and_shows_what_it_replaces(sandbox, server):
    svc = make_service()
    up = make_upstream_lb(sandbox, svc, sandbox.nodes, GCE_CLUSTER_ID)
    reader = provider_for(sandbox, read_only=True)
    server.clear_log()
    plan = reader.plan(intent_for(reader, svc, sandbox.nodes))
    assert ("adopt", "address", up.forwarding_rule) in summary(plan)
    assert server.mutating_requests() == []
    # what `lbprov plan` prints: the IP adopted, upstream's resources replaced
    text = render_plan(plan)
    assert f"<= address '{up.forwarding_rule}'" in text and f'"{up.ip}"' in text
    for line in (
        f"- forwarding-rule '{up.forwarding_rule}'",
        f"- target-pool '{up.target_pool}'",
        f"- http-health-check '{up.health_check}'",
        f"<= firewall-rule 'k8s-fw-{up.forwarding_rule}'",
    ):
        assert line in text, line


def test_a_service_deleted_before_the_takeover_takes_upstreams_load_balancer_with_it(provider, sandbox):
    """The delete plan (the empty desired state) deletes upstream's load balancer of the Service:
    its rule, pool, checks and firewalls; another Service's pool keeps the nodes check."""
    web, other = make_service("web"), make_service("other")
    up = make_upstream_lb(sandbox, web, sandbox.nodes, GCE_CLUSTER_ID)
    kept = make_upstream_lb(sandbox, other, sandbox.nodes, GCE_CLUSTER_ID)
    ref = intent_for(provider, web, sandbox.nodes).ref
    plan = provider.plan_delete(ref)
    assert {(str(c.action), c.kind, c.name) for c in plan.changes} == {
        ("delete", "forwarding-rule", up.forwarding_rule),
        ("delete", "target-pool", up.target_pool),
        ("delete", "firewall-rule", f"k8s-fw-{up.forwarding_rule}"),
    }
    provider.apply(plan)
    assert target_pools(sandbox) == [kept.target_pool]
    assert set(rules(sandbox)) == {kept.forwarding_rule}
    assert http_health_checks(sandbox) == [f"k8s-{GCE_CLUSTER_ID}-node"]
    assert provider.plan_delete(ref).empty
    # the last one takes the nodes check and its firewall with it
    provider.apply(provider.plan_delete(intent_for(provider, other, sandbox.nodes).ref))
    assert target_pools(sandbox) == [] and http_health_checks(sandbox) == [] and rules(sandbox) == {}
    assert not [f for f in firewalls(sandbox) if f.startswith("k8s-fw-") or GCE_CLUSTER_ID in f]


def test_a_delete_leaves_a_look_alike_of_another_service_alone(provider, sandbox, server):
    svc = make_service()
    other = make_service("other", uid=svc["metadata"]["uid"])
    make_upstream_lb(sandbox, other, sandbox.nodes, GCE_CLUSTER_ID)
    plan = provider.plan_delete(intent_for(provider, svc, sandbox.nodes).ref)
    assert plan.empty, summary(plan)


# -- look-alikes stay conflicts ----------------------------------------------------------------------


def test_an_upstream_firewall_of_another_service_stays_a_conflict(provider, sandbox, server):
    """A firewall named for this Service whose description names another Service: nothing is written."""
    svc = make_service()
    intent = intent_for(provider, svc, sandbox.nodes)
    server.emulator.put_raw(
        "firewalls",
        "global",
        {
            "name": f"k8s-fw-{intent.lb_name}",
            "description": '{"kubernetes.io/service-name":"default/other", "kubernetes.io/service-ip":"203.0.113.9"}',
            "network": f"global/networks/{sandbox.settings['network']}",
            "sourceRanges": ["0.0.0.0/0"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["80"]}],
        },
    )
    server.clear_log()
    with pytest.raises(OwnershipConflict, match=rf"firewall-rule 'k8s-fw-{intent.lb_name}'"):
        provider.plan(intent)
    assert server.mutating_requests() == []


def test_an_upstream_rule_of_another_service_stays_a_conflict(provider, sandbox, server):
    """Upstream's load balancer made for a Service of the same UID-derived name but another name."""
    svc = make_service()
    other = make_service("other", uid=svc["metadata"]["uid"])
    make_upstream_lb(sandbox, other, sandbox.nodes, GCE_CLUSTER_ID)
    intent = intent_for(provider, svc, sandbox.nodes)
    server.clear_log()
    with pytest.raises(OwnershipConflict, match=rf"forwarding-rule '{intent.lb_name}'"):
        provider.plan(intent)
    assert server.mutating_requests() == []


def test_an_upstream_load_balancer_of_another_cluster_stays_a_conflict(provider, sandbox, server):
    """Its target pool uses another cluster ID's nodes check: not this cluster's to delete."""
    svc = make_service()
    make_upstream_lb(sandbox, svc, sandbox.nodes, "0123456789abcdef")
    intent = intent_for(provider, svc, sandbox.nodes)
    server.clear_log()
    with pytest.raises(OwnershipConflict, match=r"target-pool .*k8s-0123456789abcdef-node"):
        provider.plan(intent)
    assert server.mutating_requests() == []


def test_an_upstream_internal_load_balancer_is_refused_by_name(provider, sandbox, server):
    """Upstream's ILB (backend service and rule <lb>) is not taken over: a conflict saying so."""
    svc = make_service()
    intent = intent_for(provider, svc, sandbox.nodes)
    lb, emu, s = intent.lb_name, server.emulator, sandbox.settings
    desc = '{"kubernetes.io/service-name":"default/web"}'
    region = f"regions/{s['region']}"
    emu.put_raw(
        "healthChecks",
        region,
        {"name": "k8s-ilb-hc", "type": "HTTP", "httpHealthCheck": {"port": 10256, "requestPath": "/healthz"}},
    )
    emu.put_raw(
        "backendServices",
        region,
        {
            "name": lb,
            "description": desc,
            "loadBalancingScheme": "INTERNAL",
            "protocol": "TCP",
            "healthChecks": [f"{region}/healthChecks/k8s-ilb-hc"],
            "network": f"global/networks/{s['network']}",
        },
    )
    emu.put_raw(
        "forwardingRules",
        region,
        {
            "name": lb,
            "description": desc,
            "loadBalancingScheme": "INTERNAL",
            "IPProtocol": "TCP",
            "ports": ["80"],
            "backendService": f"{region}/backendServices/{lb}",
            "subnetwork": f"{region}/subnetworks/{s['subnetwork']}",
        },
    )
    server.clear_log()
    with pytest.raises(OwnershipConflict, match=r"forwarding-rule .*an internal one is not migrated"):
        provider.plan(intent)
    assert server.mutating_requests() == []


# -- end to end: the controller takes a Service over from upstream ----------------------------------


def test_the_controller_takes_an_upstream_service_over_on_its_ip(sandbox):
    """The real controller (informers, queue, reconciler) against the sandbox Kubernetes API: a
    Service that cloud-provider-gcp served (its load balancer, status and finalizer as upstream
    leaves them) keeps its ingress IP, and nothing of upstream's is left for it."""
    from lbprov.controller.manager import Controller, ControllerConfig
    from lbprov.kube.client import KubeClient
    from lbprov.observability import Metrics
    from lbprov.sandbox.demo import node_object
    from lbprov.sandbox.kube_api import KubeAPIServer

    with KubeAPIServer() as api:
        kube = KubeClient.for_url(api.url)
        for node in sandbox.nodes:
            kube.create_node(node_object(node))
        svc = kube.create_service(
            "default",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
            },
        )
        up = make_upstream_lb(sandbox, svc, sandbox.nodes, GCE_CLUSTER_ID)
        # what upstream's service controller left on the Service
        kube.patch_service(
            "default", "web", {"metadata": {"finalizers": ["service.kubernetes.io/load-balancer-cleanup"]}}
        )
        kube.patch_service_status(
            "default", "web", {"status": {"loadBalancer": {"ingress": [{"ip": up.ip}]}}}
        )

        provider = provider_for(sandbox)
        config = ControllerConfig(
            cluster="test",
            default_provider="gcp",
            workers=2,
            node_debounce=0.2,
            backoff_base=0.2,
            backoff_max=2.0,
            cache_sync_timeout=10,
        )
        controller = Controller(kube, {"gcp": provider}, config, metrics=Metrics())
        controller.start()
        try:
            wait_for(lambda: not target_pools(sandbox), 30, "upstream's target pool to go")
            wait_for(lambda: done(kube), 30, "the event of the takeover")
        finally:
            controller.stop()
        got = kube.get_service("default", "web")
        assert [i["ip"] for i in got["status"]["loadBalancer"]["ingress"]] == [up.ip]
        assert rules(sandbox) == {f"{up.forwarding_rule}-tcp": up.ip}
        assert target_pools(sandbox) == [] and http_health_checks(sandbox) == [] and addresses(sandbox) == []
        fws = firewalls(sandbox)
        assert all(
            "lbprov.io/cluster-id" in fws[name].description for name in fws if up.forwarding_rule in name
        )
        assert f"k8s-{GCE_CLUSTER_ID}-node-http-hc" not in fws
        assert "adopted 1 address" in done(kube)
        intent = build_intent(got, kube.list_nodes()[0], IntentSettings(provider.cluster), provider)
        assert provider.plan(intent).empty


def done(kube: Any) -> str:
    """The message of the event that reports the applied plan ("" until there is one)."""
    events = kube.list_events("default")
    return next(
        (e["message"] for e in events if e["reason"] in ("EnsuredLoadBalancer", "UpdatedLoadBalancer")), ""
    )


def test_without_a_cluster_id_a_pool_on_a_nodes_check_stays_a_conflict(sandbox, server):
    """No gce_cluster_id: the nodes check cannot be told from another cluster's, so nothing moves."""
    svc = make_service()
    make_upstream_lb(sandbox, svc, sandbox.nodes, GCE_CLUSTER_ID)
    provider = provider_for(sandbox, gce_cluster_id=None)
    server.clear_log()
    with pytest.raises(OwnershipConflict, match=rf"target-pool .*k8s-{GCE_CLUSTER_ID}-node"):
        provider.plan(intent_for(provider, svc, sandbox.nodes))
    assert server.mutating_requests() == []


def test_upstreams_own_reservation_left_by_an_interrupted_ensure_is_taken_over_too(provider, sandbox):
    """Upstream reserves <lb> during each ensure; one left behind is released and the IP reserved
    again as lbprov's (the rule keeps it meanwhile): the Service still keeps its IP."""
    from google.cloud import compute_v1 as c

    svc = make_service()
    up = make_upstream_lb(sandbox, svc, sandbox.nodes, GCE_CLUSTER_ID)
    s = sandbox.settings
    sdk(sandbox, "AddressesClient").insert(
        project=s["project"],
        region=s["region"],
        address_resource=c.Address(
            name=up.forwarding_rule, address=up.ip, description='{"kubernetes.io/service-name":"default/web"}'
        ),
    ).result()
    intent = intent_for(provider, svc, sandbox.nodes)
    plan = provider.plan(intent)
    addresses_changes = [(str(c.action), c.name) for c in plan.changes if c.kind == "address"]
    assert addresses_changes == [("delete", up.forwarding_rule), ("adopt", up.forwarding_rule)]
    assert provider.apply(plan)[0].ip == up.ip
    assert rules(sandbox) == {f"{up.forwarding_rule}-tcp": up.ip} and addresses(sandbox) == []
    assert provider.plan(intent).empty


def test_a_local_service_made_cluster_during_the_cut_over_drops_upstreams_check_firewall(provider, sandbox):
    """Upstream served the Service as Local; it is Cluster now: upstream's per-Service check and its
    firewall k8s-<lb>-http-hc are deleted, not adopted."""
    local = make_service(local=True, hc_port=31500)
    up = make_upstream_lb(sandbox, local, sandbox.nodes, GCE_CLUSTER_ID)
    now = make_service(uid=local["metadata"]["uid"])
    plan = provider.plan(intent_for(provider, now, sandbox.nodes))
    assert ("delete", "firewall-rule", f"k8s-{up.forwarding_rule}-http-hc") in summary(plan)
    assert ("delete", "http-health-check", up.forwarding_rule) in summary(plan)
    provider.apply(plan)
    assert f"k8s-{up.forwarding_rule}-http-hc" not in firewalls(sandbox)
    assert http_health_checks(sandbox) == [] and target_pools(sandbox) == []
    assert rules(sandbox) == {f"{up.forwarding_rule}-tcp": up.ip}
