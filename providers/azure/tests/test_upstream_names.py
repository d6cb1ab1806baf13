"""cloud-provider-azure's ownership marks, as lbprov reads them (pure: lbprov_azure.upstream)."""

from __future__ import annotations

import pytest
from lbprov_azure import upstream

from lbprov.model import ServiceRef

REF = ServiceRef("shop", "web", "8c908460-11b0-41d8-a959-92e74754b982")
BASE = "a8c90846011b041d8a95992e74754b98"


@pytest.mark.parametrize(
    ("tags", "ours"),
    [
        ({"k8s-azure-service": "shop/web", "k8s-azure-cluster-name": "kubernetes"}, True),
        ({"service": "shop/web", "kubernetes-cluster-name": "kubernetes"}, True),  # before 1.0
        (
            {"K8s-Azure-Service": "shop/web", "k8s-azure-cluster-name": "kubernetes"},
            True,
        ),  # ARM keys: any case
        ({"k8s-azure-service": "shop/web,shop/api", "k8s-azure-cluster-name": "kubernetes"}, False),  # shared
        ({"k8s-azure-service": "shop/api", "k8s-azure-cluster-name": "kubernetes"}, False),
        ({"k8s-azure-service": "shop/web", "k8s-azure-cluster-name": "other"}, False),
        ({"k8s-azure-service": "shop/web"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_a_public_ip_is_the_predecessor_only_for_its_cluster_and_service_alone(tags, ours):
    assert upstream.is_predecessor_pip(tags, "kubernetes", REF) is ours


def test_adopted_tags_drop_upstreams_marks_and_keep_the_rest():
    tags = {
        "k8s-azure-service": "shop/web",
        "k8s-azure-cluster-name": "k",
        "k8s-azure-dns-label-service": "x",
        "team": "a",
    }
    assert upstream.without_upstream_tags(tags) == {"team": "a"}


@pytest.mark.parametrize(
    ("name", "legacy", "shared"),
    [
        (f"{BASE}-TCP-80-Internet", True, False),
        (f"{BASE}-UDP-53-10.0.0.0_8", True, False),
        (f"lbprov-{BASE}-TCP", False, False),
        (f"{BASE}x-TCP-80-Internet", False, False),
        ("k8s-azure-lb_allow_IPv4_0123abcd", False, True),
        ("k8s-azure-lb_deny-all_IPv4", False, True),
        ("AllowVnetInBound", False, False),
    ],
)
def test_upstream_nsg_rules_are_recognised_by_name(name, legacy, shared):
    assert upstream.is_legacy_nsg_rule(name, BASE) is legacy
    assert upstream.is_shared_nsg_rule(name) is shared
