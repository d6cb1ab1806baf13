"""End-to-end fixtures: the sandbox Kubernetes API server, the AWS provider on a moto server, and the
real controller, all talking over HTTP.

One moto server per module (it is the slow part to start), reset and re-seeded with a fresh cluster
VPC for every test; one sandbox API server per test (an in-process thread, started in milliseconds),
so tests never see each other's Nodes or Services. Waiting is always polling with a deadline.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.sandbox import MotoSandbox

from lbprov import naming
from lbprov.controller.manager import Controller, ControllerConfig
from lbprov.controller.service import ingress_of
from lbprov.kube.client import KubeClient
from lbprov.observability import Metrics
from lbprov.provider import SandboxCloud
from lbprov.sandbox.demo import node_object
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import wait_for

NAMESPACE = "e2e"


@pytest.fixture(scope="module")
def moto_box() -> Iterator[MotoSandbox]:
    box = MotoSandbox()
    yield box
    box.stop()


@dataclass
class Env:
    api: KubeAPIServer
    kube: KubeClient
    box: MotoSandbox
    cloud: SandboxCloud
    cluster: str
    controllers: list[Controller] = field(default_factory=list)

    # -- controller -------------------------------------------------------------------------------

    def provider(self) -> AWSProvider:
        return AWSProvider.from_settings(self.cloud.settings)  # type: ignore[return-value]

    def controller(self, *, start: bool = True, **overrides: Any) -> Controller:
        cfg: dict[str, Any] = {
            "cluster": self.cluster,
            "default_provider": "aws",
            "workers": 4,
            "node_debounce": 0.2,
            "backoff_base": 0.2,
            "backoff_max": 2.0,
            "cache_sync_timeout": 60,
        }
        cfg.update(overrides)
        c = Controller(self.kube, {"aws": self.provider()}, ControllerConfig(**cfg), metrics=Metrics())
        self.controllers.append(c)
        if start:
            c.start()
        return c

    # -- Kubernetes objects ----------------------------------------------------------------------

    def create_service(
        self,
        name: str,
        ports: list[tuple[int, str]] | None = None,
        *,
        namespace: str = NAMESPACE,
        annotations: dict[str, str] | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": name},
                "ports": [
                    {"name": f"p{port}", "protocol": proto, "port": port, "targetPort": port}
                    for port, proto in (ports or [(80, "TCP")])
                ],
                **spec,
            },
        }
        return self.kube.create_service(namespace, body)

    def svc(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        return self.kube.get_service(namespace, name)

    def wait_ingress(
        self, name: str, namespace: str = NAMESPACE, timeout: float = 120
    ) -> list[dict[str, str]]:
        return wait_for(
            lambda: ingress_of(self.svc(name, namespace) or {}), timeout, f"ingress of {namespace}/{name}"
        )

    def events(self, name: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        return [e for e in self.kube.list_events(namespace) if e["involvedObject"].get("name") == name]

    def reasons(self, name: str, namespace: str = NAMESPACE) -> list[str]:
        return [e["reason"] for e in self.events(name, namespace)]

    # -- the cloud, read directly with boto3 (not through the provider under test) -----------------

    def elbv2(self) -> Any:
        return self.box.client("elbv2")

    def load_balancers(self, uid: str) -> list[dict[str, Any]]:
        """Every NLB named for the Service (moto allows duplicates, so a duplicate would show)."""
        name = naming.lb_name(uid)
        return [
            lb
            for lb in self.elbv2().describe_load_balancers()["LoadBalancers"]
            if lb["LoadBalancerName"] == name
        ]

    def listener_ports(self, uid: str) -> list[tuple[int, str]]:
        (lb,) = self.load_balancers(uid)
        listeners = self.elbv2().describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        return sorted((x["Port"], x["Protocol"]) for x in listeners)

    def target_groups(self, uid: str) -> list[dict[str, Any]]:
        """Target groups tagged with the Service UID (found by tags, like the provider's cleanup)."""
        client = self.elbv2()
        tgs = client.describe_target_groups()["TargetGroups"]
        out = []
        for i in range(0, len(tgs), 20):
            batch = tgs[i : i + 20]
            descs = client.describe_tags(ResourceArns=[t["TargetGroupArn"] for t in batch])["TagDescriptions"]
            owned = {
                d["ResourceArn"]
                for d in descs
                if {t["Key"]: t["Value"] for t in d["Tags"]}.get(naming.SERVICE_UID_TAG) == uid
            }
            out.extend(t for t in batch if t["TargetGroupArn"] in owned)
        return out

    def registered_instances(self, uid: str) -> set[str]:
        """Instance IDs registered in every target group of the Service (they all agree)."""
        client = self.elbv2()
        sets = []
        for tg in self.target_groups(uid):
            health = client.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])[
                "TargetHealthDescriptions"
            ]
            sets.append({h["Target"]["Id"] for h in health})
        assert sets, f"no target group for {uid}"
        assert all(s == sets[0] for s in sets), f"target groups disagree: {sets}"
        return sets[0]

    def instance_id(self, node_name: str) -> str:
        node = next(n for n in self.cloud.nodes if n.name == node_name)
        return node.provider_id.rsplit("/", 1)[-1]

    def all_instance_ids(self) -> set[str]:
        return {n.provider_id.rsplit("/", 1)[-1] for n in self.cloud.nodes}

    def writes(self) -> list[str]:
        return list(self.cloud.mutating_requests())


@pytest.fixture
def env(moto_box: MotoSandbox) -> Iterator[Env]:
    moto_box.reset()
    cluster = f"e2e-{uuid.uuid4().hex[:8]}"
    cloud = moto_box.seed(["node-1", "node-2", "node-3"], cluster=cluster)
    with KubeAPIServer() as api:
        kube = KubeClient.for_url(api.url)
        kube.create_namespace(NAMESPACE)
        for node in cloud.nodes:
            kube.create_node(node_object(node))
        e = Env(api, kube, moto_box, cloud, cluster)
        try:
            yield e
        finally:
            for c in e.controllers:
                c.stop()
