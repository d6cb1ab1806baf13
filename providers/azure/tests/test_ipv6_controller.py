"""The real controller with a dual-stack Service on the sandbox Kubernetes API: the status lists one
ingress IP per family, primary first, and deleting the Service leaves nothing of either family."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.sandbox import ArmState
from lbprov_azure.testing import controller_for, lb_of, node_object

from lbprov.controller.service import ingress_of
from lbprov.kube.client import KubeClient
from lbprov.kube.facts import cluster_identity
from lbprov.provider import SandboxCloud
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import wait_for

NS = "v6"


@pytest.fixture
def kube() -> Iterator[KubeClient]:
    with KubeAPIServer() as api:
        client = KubeClient.for_url(api.url)
        client.create_namespace(NS)
        yield client


def test_controller_writes_an_ingress_ip_per_family_primary_first_and_deletes_both(
    sandbox: SandboxCloud, state: ArmState, cluster: str, kube: KubeClient
) -> None:
    for i in range(2):
        kube.create_node(node_object(sandbox.add_node(f"{cluster}-v6n{i}")))
    settings = {
        **sandbox.settings,
        "cluster_name": cluster,
        "cluster_id": cluster_identity(kube),
        "coalesce_window_seconds": 0.01,
    }
    controller = controller_for(kube, AzureProvider.from_settings(settings), cluster, workers=2)
    controller.start()
    try:
        for name, families in (("dual", ["IPv4", "IPv6"]), ("dual6", ["IPv6", "IPv4"])):
            kube.create_service(
                NS,
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": NS},
                    "spec": {
                        "type": "LoadBalancer",
                        "ipFamilies": families,
                        "ipFamilyPolicy": "RequireDualStack",
                        "ports": [{"name": "p80", "protocol": "TCP", "port": 80}],
                    },
                },
            )
        for name, versions in (("dual", [4, 6]), ("dual6", [6, 4])):
            ingress = wait_for(
                lambda n=name: len(got := ingress_of(kube.get_service(NS, n) or {})) == 2 and got,
                60,
                f"two ingress IPs on {name}",
            )
            assert [ipaddress.ip_address(i["ip"]).version for i in ingress] == versions, ingress
        for name in ("dual", "dual6"):
            kube.delete_service(NS, name)
        wait_for(
            lambda: kube.get_service(NS, "dual") is None and kube.get_service(NS, "dual6") is None,
            60,
            "deletes",
        )
        assert lb_of(state, cluster) is None
        assert not [p for p in state.resources["publicIPAddresses"].values() if cluster in p["name"]]
    finally:
        controller.stop()
