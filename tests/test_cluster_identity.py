"""The core side of cluster identity, predecessor adoption and provider-declared facts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from lbprov import naming
from lbprov.intent import IntentSettings, build_intent
from lbprov.kube.client import KubeClient
from lbprov.kube.facts import ClusterFactError, cluster_identity, fill_settings
from lbprov.model import Action, Change, Plan, ServiceRef
from lbprov.provider import ConfigMapFact, cluster_facts, needs_node_ports
from lbprov.render import plan_to_json, render_plan
from lbprov.sandbox.kube_api import KubeAPIServer

REF = ServiceRef("shop", "web", "5f2b2c3e-1111-2222-3333-444455556666")


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeClient]:
    with KubeAPIServer() as api:
        client = KubeClient.for_url(api.url)
        yield client
        client.close()


# -- identity tags ------------------------------------------------------------------------------


def test_ownership_tags_carry_the_cluster_identity_when_known() -> None:
    assert naming.ownership_tags("prod", REF, "uid-1")[naming.CLUSTER_ID_TAG] == "uid-1"
    assert naming.cluster_tags("prod", "uid-1")[naming.CLUSTER_ID_TAG] == "uid-1"
    assert naming.CLUSTER_ID_TAG not in naming.ownership_tags("prod", REF)


@pytest.mark.parametrize(
    ("tags", "cluster_id", "expected"),
    [
        ({naming.CLUSTER_ID_TAG: "uid-1"}, "uid-1", True),
        ({naming.CLUSTER_ID_TAG: "uid-2"}, "uid-1", False),
        ({}, "uid-1", False),  # a resource without an identity is never enough to delete
        ({naming.CLUSTER_ID_TAG: "uid-1"}, None, False),  # nor an unknown identity of our own
        ({naming.CLUSTER_ID_TAG: ""}, "", False),
    ],
)
def test_identity_matches_only_the_same_known_identity(
    tags: dict[str, str], cluster_id: str | None, expected: bool
) -> None:
    assert naming.identity_matches(tags, cluster_id) is expected


@pytest.mark.parametrize(
    ("cluster", "max_len"),
    [("prod", 63), ("Prod_EU", 63), ("x" * 100, 63), ("A" * 100, 32), ("a_" * 50, 40)],
)
def test_safe_name_is_valid_short_and_distinct(cluster: str, max_len: int) -> None:
    name = naming.safe_name("k8s-elb-", cluster, max_len)
    assert len(name) <= max_len
    assert name == name.lower()
    assert all(c.isalnum() or c == "-" for c in name)
    assert not name.endswith("-")
    # Two long names that share the part that fits still differ.
    assert naming.safe_name("k8s-elb-", cluster + "z", max_len) != name or len("k8s-elb-" + cluster) < max_len


# -- adopt --------------------------------------------------------------------------------------


def test_adopt_renders_and_counts() -> None:
    change = Change(
        Action.ADOPT,
        "load-balancer",
        "a5f2b2c3e",
        before={"tags": {}},
        after={"tags": {"x": "y"}},
        reason="made by cloud-provider-aws for this Service",
    )
    plan = Plan("aws", REF, (change,), operation="ensure")
    assert plan.counts()["adopt"] == 1
    assert plan.summary().startswith("1 to adopt")
    text = render_plan(plan)
    assert "<= load-balancer 'a5f2b2c3e'" in text
    assert plan_to_json(plan)["changes"][0]["action"] == "adopt"


# -- facts read from the cluster ----------------------------------------------------------------


def test_cluster_identity_is_the_kube_system_namespace_uid(kube: KubeClient) -> None:
    ns = kube.get_namespace("kube-system")
    assert ns is not None
    assert cluster_identity(kube) == ns["metadata"]["uid"]


class _Provider:
    cluster_facts: ClassVar[dict[str, ConfigMapFact]] = {
        "upstream_uid": ConfigMapFact("kube-system", "ingress-uid", ("provider-uid", "uid"), "uid")
    }
    needs_node_ports: ClassVar[bool] = False


def test_fill_settings_keeps_what_the_user_set(kube: KubeClient) -> None:
    out = fill_settings(kube, _Provider, {"cluster_id": "mine", "upstream_uid": "set"}, read_only=False)
    assert out == {"cluster_id": "mine", "upstream_uid": "set"}


def test_a_read_only_run_never_creates_the_config_map(kube: KubeClient) -> None:
    out = fill_settings(kube, _Provider, {}, read_only=True)
    assert out["upstream_uid"] is None
    assert kube.get_config_map("kube-system", "ingress-uid") is None


def test_a_missing_config_map_is_created_once_and_then_read(kube: KubeClient) -> None:
    first = fill_settings(kube, _Provider, {}, read_only=False)
    assert first["upstream_uid"] and len(first["upstream_uid"]) == 16
    again = fill_settings(kube, _Provider, {}, read_only=False)
    assert again["upstream_uid"] == first["upstream_uid"]


def test_provider_uid_wins_over_uid(kube: KubeClient) -> None:
    kube.create_config_map(
        "kube-system",
        {"metadata": {"name": "other-uid"}, "data": {"uid": "u", "provider-uid": "p"}},
    )

    class P:
        cluster_facts: ClassVar[dict[str, ConfigMapFact]] = {
            "v": ConfigMapFact("kube-system", "other-uid", ("provider-uid", "uid"))
        }

    assert fill_settings(kube, P, {"cluster_id": "x"}, read_only=True)["v"] == "p"


def test_identity_error_names_the_namespace() -> None:
    class NoNamespace:
        host = "https://example.invalid"

        def get_namespace(self, name: str) -> Any:
            return None

    with pytest.raises(ClusterFactError, match="kube-system"):
        cluster_identity(NoNamespace())  # type: ignore[arg-type]


# -- NodePorts are needed only where the provider says so ---------------------------------------


def _svc_without_node_ports() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "uid": REF.uid},
        "spec": {
            "type": "LoadBalancer",
            "allocateLoadBalancerNodePorts": False,
            "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
        },
    }


NODE = {
    "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "a"}},
    "spec": {"providerID": "gce://p/a/n1"},
    "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]},
}


def test_providers_default_to_needing_node_ports() -> None:
    assert needs_node_ports(object()) is True
    assert needs_node_ports(_Provider) is False
    assert cluster_facts(object()) == {}


def test_no_node_ports_is_accepted_for_a_provider_that_needs_none() -> None:
    class Passthrough:
        needs_node_ports = False

        def resolve(self, intent: Any, annotations: Any) -> Any:
            return intent

    intent = build_intent(_svc_without_node_ports(), [NODE], IntentSettings("c"), Passthrough())  # type: ignore[arg-type]
    assert intent.ports[0].node_port is None


def test_no_node_ports_is_refused_for_a_provider_that_needs_them() -> None:
    from lbprov.model import InvalidService

    with pytest.raises(InvalidService, match="allocateLoadBalancerNodePorts"):
        build_intent(_svc_without_node_ports(), [NODE], IntentSettings("c"))
