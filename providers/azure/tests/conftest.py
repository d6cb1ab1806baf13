"""Fixtures for the Azure provider tests: one ARM emulator per test module, real SDK, real HTTPS.

The helpers live in :mod:`lbprov_azure.testing`; here they are also fixtures (pytest runs with
``--import-mode=importlib``, so test modules cannot import conftest): ``make_service``, ``nodes`` the
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
from lbprov_azure.testing import converge, lb_of, make_service, node_object, part_names

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Intent
from lbprov.provider import SandboxCloud

#: The cluster identity the tests' providers run with (the controller reads it from kube-system).
CLUSTER_ID = "0e5f8a3c-1d2b-4c6e-9f70-123456789abc"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxCloud]:
    with azure_sandbox(["node-a", "node-b", "node-c"]) as sb:
        sb.settings["cluster_id"] = CLUSTER_ID
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
def nodes(sandbox: SandboxCloud, cluster: str) -> list[dict[str, Any]]:
    """Three nodes of the test's own cluster. Clusters never share nodes (and ARM would refuse it: a
    NIC IP configuration is in the load-balancing pools of at most one public and one internal load
    balancer), so each test's cluster gets nodes of its own in the module's emulator."""
    return [node_object(sandbox.add_node(f"{cluster}-n{i}")) for i in range(3)]


@pytest.fixture(name="make_service")
def make_service_fixture() -> Callable[..., dict[str, Any]]:
    return make_service


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


@pytest.fixture
def ensure(provider: AzureProvider) -> Callable[..., tuple[Any, ...]]:
    def run(intent: Intent, prov: AzureProvider | None = None) -> tuple[Any, ...]:
        return converge(prov or provider, intent)

    return run


@pytest.fixture
def h() -> SimpleNamespace:
    """Plain helpers (test modules cannot import conftest under importlib mode)."""
    return SimpleNamespace(lb_of=lb_of, part_names=part_names, node_object=node_object, converge=converge)
