"""Fixtures for the Azure provider tests: one ARM emulator per test module, real SDK, real HTTPS.

Helpers are fixtures (pytest runs with ``--import-mode=importlib``, so test modules cannot import
each other): ``make_service`` builds a Service in the Kubernetes API's JSON shape, ``nodes`` the
Node objects for the sandbox's instances, and ``intent_for`` runs the real ``build_intent`` with the
provider's ``resolve``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.sandbox import ArmState, azure_sandbox

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Intent, SandboxNode
from lbprov.provider import SandboxCloud

_node_ports = itertools.count(30000)


def node_object(n: SandboxNode, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": n.name, "labels": {"topology.kubernetes.io/zone": n.zone, **labels}},
        "spec": {"providerID": n.provider_id},
        "status": {"addresses": [{"type": "InternalIP", "address": n.internal_ip}]},
    }


def _make_service(
    name: str = "web",
    *,
    namespace: str = "default",
    uid: str | None = None,
    ports: list[tuple[str, int]] | None = None,
    annotations: dict[str, str] | None = None,
    policy: str = "Cluster",
    affinity: str = "None",
    source_ranges: list[str] | None = None,
    lb_ip: str | None = None,
    node_ports: dict[tuple[str, int], int] | None = None,
) -> dict[str, Any]:
    """A Service as the API server returns it; NodePorts are unique across the test session."""
    node_ports = node_ports if node_ports is not None else {}
    spec_ports = []
    for proto, port in ports or [("TCP", 80)]:
        np = node_ports.setdefault((proto, port), next(_node_ports))
        spec_ports.append(
            {"name": f"{proto.lower()}-{port}", "protocol": proto, "port": port, "nodePort": np}
        )
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "ports": spec_ports,
        "externalTrafficPolicy": policy,
        "sessionAffinity": affinity,
    }
    if policy == "Local":
        spec["healthCheckNodePort"] = next(_node_ports)
    if source_ranges:
        spec["loadBalancerSourceRanges"] = source_ranges
    if lb_ip:
        spec["loadBalancerIP"] = lb_ip
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuid.uuid4()),
            "annotations": annotations or {},
        },
        "spec": spec,
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxCloud]:
    with azure_sandbox(["node-a", "node-b", "node-c"]) as sb:
        yield sb


@pytest.fixture
def state(sandbox: SandboxCloud) -> Iterator[ArmState]:
    st: ArmState = sandbox.extra["state"]
    st.clear_faults()
    yield st
    st.clear_faults()


_clusters = itertools.count(1)


@pytest.fixture
def cluster() -> str:
    """A cluster name of its own per test: its own shared LBs, so tests never see each other's."""
    return f"c{next(_clusters)}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def provider(sandbox: SandboxCloud, cluster: str) -> AzureProvider:
    """A fresh provider per test (fresh counters and writers), no client-side rate limit."""
    return AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": cluster, "coalesce_window_seconds": 0.01}
    )


@pytest.fixture
def nodes(sandbox: SandboxCloud) -> list[dict[str, Any]]:
    return [node_object(n) for n in sandbox.nodes]


@pytest.fixture
def make_service() -> Callable[..., dict[str, Any]]:
    return _make_service


@pytest.fixture
def intent_for(provider: AzureProvider, nodes: list[dict[str, Any]]) -> Callable[..., Intent]:
    def build(
        service: dict[str, Any],
        node_list: list[dict[str, Any]] | None = None,
        prov: AzureProvider | None = None,
    ) -> Intent:
        prov = prov or provider
        return build_intent(
            service,
            node_list if node_list is not None else nodes,
            IntentSettings(cluster=prov.settings.cluster_name),
            prov,
        )

    return build


def converge(provider: AzureProvider, intent: Intent) -> tuple[Any, ...]:
    """plan + apply, then prove convergence (empty re-plan) and idempotence (zero writes)."""
    ingress = provider.apply(provider.plan(intent))
    provider.calls.reset()
    again = provider.plan(intent)
    assert again.empty, [(c.action.value, c.kind, c.name, c.diff()) for c in again.changes]
    assert provider.apply(again) == ingress
    assert provider.calls.stats.writes == 0, provider.calls.stats.to_json()
    return ingress


@pytest.fixture
def ensure(provider: AzureProvider) -> Callable[..., tuple[Any, ...]]:
    def run(intent: Intent, prov: AzureProvider | None = None) -> tuple[Any, ...]:
        return converge(prov or provider, intent)

    return run


def lb_of(state: ArmState, name: str) -> dict[str, Any] | None:
    return state.get("loadBalancers", "lbprov-sandbox", name)


def part_names(lb: dict[str, Any] | None, field: str) -> set[str]:
    return {str(i["name"]) for i in ((lb or {}).get("properties") or {}).get(field, [])}


@pytest.fixture
def h() -> SimpleNamespace:
    """Plain helpers (test modules cannot import conftest under importlib mode)."""
    return SimpleNamespace(lb_of=lb_of, part_names=part_names, node_object=node_object, converge=converge)
