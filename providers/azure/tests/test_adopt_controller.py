"""The cut-over from cloud-provider-azure end to end: the real controller adopts upstream's Services.

The sandbox Kubernetes API holds Services that cloud-provider-azure reconciled (its finalizer, its
ingress IP in the status) and the ARM emulator holds what upstream made for them
(:mod:`lbprov_azure.sandbox.cloud_provider_azure`). Then lbprov's controller starts: every ingress
IP stays what it was, a second plan is empty, and deleting a Service leaves nothing of upstream's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from lbprov_azure import AzureProvider, names
from lbprov_azure.sandbox import ArmState
from lbprov_azure.sandbox.cloud_provider_azure import UpstreamPort, frontend_names, reconcile_upstream
from lbprov_azure.testing import SANDBOX_RG, controller_for, lb_of, node_object

from lbprov import naming
from lbprov.controller.service import FINALIZER, ingress_of
from lbprov.intent import IntentSettings, build_intent
from lbprov.kube.client import KubeClient
from lbprov.kube.facts import cluster_identity
from lbprov.provider import SandboxCloud
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import wait_for

NS = "shop"


@pytest.fixture
def kube() -> Iterator[KubeClient]:
    with KubeAPIServer() as api:
        client = KubeClient.for_url(api.url)
        client.create_namespace(NS)
        yield client


def test_controller_adopts_upstream_services_keeps_their_ips_and_deletes_cleanly(
    sandbox: SandboxCloud, state: ArmState, cluster: str, kube: KubeClient
) -> None:
    for n in sandbox.nodes:
        kube.create_node(node_object(n))
    settings = {
        **sandbox.settings,
        "cluster_name": cluster,
        "cluster_id": cluster_identity(kube),
        "coalesce_window_seconds": 0.01,
    }
    # Services that cloud-provider-azure reconciled: created, then upstream's resources and status
    made: dict[str, str] = {}
    for name, ports, internal in (
        ("web", [80, 443], False),
        ("api", [8080], False),
        ("db", [5432], True),
    ):
        annotations = {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"} if internal else {}
        svc = kube.create_service(
            NS,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name,
                    "namespace": NS,
                    "annotations": annotations,
                    "finalizers": [FINALIZER],
                },
                "spec": {
                    "type": "LoadBalancer",
                    "selector": {"app": name},
                    "ports": [
                        {"name": f"p{p}", "protocol": "TCP", "port": p, "targetPort": p} for p in ports
                    ],
                },
            },
        )
        made[name] = reconcile_upstream(
            state,
            rg=SANDBOX_RG,
            vnet=settings["vnet_name"],
            subnet=settings["subnet_name"],
            nsg=settings["security_group_name"],
            cluster=cluster,
            namespace=NS,
            name=name,
            uid=svc["metadata"]["uid"],
            ports=[UpstreamPort("TCP", p["port"], p["nodePort"]) for p in svc["spec"]["ports"]],
            nodes=[(n.name, n.internal_ip) for n in sandbox.nodes],
            internal=internal,
        )
        kube.patch_service_status(NS, name, {"status": {"loadBalancer": {"ingress": [{"ip": made[name]}]}}})
    public_ips = {p["name"] for p in state.resources["publicIPAddresses"].values()}

    provider = AzureProvider.from_settings(settings)
    controller = controller_for(kube, provider, cluster, workers=4)
    controller.start()
    try:
        uids = {name: str((kube.get_service(NS, name) or {})["metadata"]["uid"]) for name in made}
        base = {name: naming.lb_name(uid) for name, uid in uids.items()}

        def adopted() -> bool:
            """Every Service recorded on its LB, and no upstream NSG rule (``a<uid>-...``) left."""
            recorded = set()
            for lb in (lb_of(state, cluster), lb_of(state, f"{cluster}-internal")):
                recorded |= names.services_of((lb or {}).get("tags"))
            left = [r for r in rules(state, settings) if r.startswith(tuple(base.values()))]
            return {names.uid_token(u) for u in uids.values()} <= recorded and not left

        wait_for(adopted, 30, "every Service adopted")
        for name, ip in made.items():
            assert ingress_of(kube.get_service(NS, name) or {}) == [{"ip": ip}], name
        # no public IP was created (the adopted ones kept their resource and address)
        assert {p["name"] for p in state.resources["publicIPAddresses"].values()} == public_ips
        assert not [
            r
            for r in state.log
            if r.method == "PUT" and r.status == 201 and "publicipaddresses" in r.path.lower()
        ]

        # a second plan of every Service is empty
        fresh = AzureProvider.from_settings(settings)
        node_objs = kube.list_nodes()[0]
        for name in made:
            svc = kube.get_service(NS, name)
            assert svc is not None
            intent = build_intent(svc, node_objs, IntentSettings(cluster=cluster), fresh)
            plan = fresh.plan(intent)
            assert plan.empty, (name, [(c.action.value, c.kind, c.name) for c in plan.changes])

        # deleting a Service leaves nothing of upstream's (nor lbprov's) for it
        kube.delete_service(NS, "web")
        wait_for(lambda: kube.get_service(NS, "web") is None, 30, "web deleted")
        assert state.get("publicIPAddresses", SANDBOX_RG, f"{cluster}-{base['web']}") is None
        assert not frontend_names(lb_of(state, cluster), base["web"])
        assert not [r for r in rules(state, settings) if base["web"] in r]
        assert ingress_of(kube.get_service(NS, "api") or {}) == [{"ip": made["api"]}]
    finally:
        controller.stop()


def rules(state: ArmState, settings: dict[str, Any]) -> list[str]:
    nsg = state.get("networkSecurityGroups", SANDBOX_RG, settings["security_group_name"])
    return [r["name"] for r in (nsg or {}).get("properties", {}).get("securityRules", [])]


def test_a_service_next_to_aks_public_lb_gets_an_event_naming_it(
    sandbox: SandboxCloud, state: ArmState, cluster: str, kube: KubeClient
) -> None:
    """Under a cluster name of its own, next to AKS's public load balancer that already load-balances
    to the nodes: the Service gets a SyncLoadBalancerFailed event naming that load balancer, and
    nothing is written for it."""
    nodes = [sandbox.add_node(f"{cluster}-n{i}") for i in range(2)]
    for n in nodes:
        kube.create_node(node_object(n))
    aks = f"{cluster}-aks"
    reconcile_upstream(
        state,
        rg=SANDBOX_RG,
        vnet=sandbox.settings["vnet_name"],
        subnet=sandbox.settings["subnet_name"],
        nsg=None,
        cluster=aks,
        namespace="aks",
        name="theirs",
        uid="0f0f0f0f-0000-4000-8000-000000000001",
        ports=[UpstreamPort("TCP", 80, 30080)],
        nodes=[(n.name, n.internal_ip) for n in nodes],
        aks_outbound=True,
    )
    settings = {**sandbox.settings, "cluster_name": cluster, "cluster_id": cluster_identity(kube)}
    controller = controller_for(kube, AzureProvider.from_settings(settings), cluster, workers=2)
    controller.start()
    try:
        kube.create_service(
            NS,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": NS},
                "spec": {"type": "LoadBalancer", "ports": [{"name": "p80", "protocol": "TCP", "port": 80}]},
            },
        )

        def warned() -> list[str]:
            return [
                e["message"]
                for e in kube.list_events(NS)
                if e["involvedObject"].get("name") == "web" and e["reason"] == "SyncLoadBalancerFailed"
            ]

        (message, *_) = wait_for(warned, 30, "SyncLoadBalancerFailed event")
        assert f"load balancer '{aks}'" in message and "set cluster_name to its name" in message, message
        assert lb_of(state, cluster) is None
        assert not ingress_of(kube.get_service(NS, "web") or {})
    finally:
        controller.stop()
