"""Azure names from EKS-style cluster names: upper case, ``_``, up to 100 characters."""

from __future__ import annotations

import re

import pytest
from lbprov_azure import AzureProvider, names
from lbprov_azure.testing import SANDBOX_RG, converge

from lbprov.intent import IntentSettings, build_intent

AZURE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")


@pytest.mark.parametrize(
    "cluster",
    ["kubernetes", "Prod_Cluster", "a" * 71, "B" * 100, "eks_" + "Team-" * 19, "x" * 98 + "-z"],
)
def test_every_derived_name_is_a_valid_azure_name(cluster):
    base = "a" + "0" * 31
    for name in (
        names.lb_name(cluster, "external"),
        names.lb_name(cluster, "internal"),
        names.pool_name(cluster),
        names.pip_name(cluster, base),
    ):
        assert AZURE_NAME.match(name), name
    assert names.lb_name(cluster, "external") != names.lb_name(cluster, "internal")
    assert len(f"lbprov {names.cluster_mark(cluster)} {'u' * 36} ") <= 140


def test_a_valid_cluster_name_is_kept_verbatim_as_upstream_names_the_lb():
    assert names.lb_name("Prod_Cluster", "external") == "Prod_Cluster"
    assert names.lb_name("Prod_Cluster", "internal") == "Prod_Cluster-internal"


def test_long_names_sharing_a_prefix_stay_distinct():
    a, b = "c" * 90 + "-one", "c" * 90 + "-two"
    assert names.lb_name(a, "external") != names.lb_name(b, "external")
    assert names.lb_name(a, "internal") != names.lb_name(b, "internal")


def test_a_100_character_cluster_converges_on_the_emulator(sandbox, nodes, make_service, state):
    cluster = "EKS_" + "Long-Cluster-Name_" * 5 + "x" * 6
    assert len(cluster) == 100
    provider = AzureProvider.from_settings({**sandbox.settings, "cluster_name": cluster})
    svc = make_service("long")
    intent = build_intent(svc, nodes, IntentSettings(cluster=cluster), provider)
    (ingress,) = converge(provider, intent)
    assert ingress.ip
    lb = state.get("loadBalancers", SANDBOX_RG, names.lb_name(cluster, "external"))
    assert lb is not None and len(lb["name"]) <= 80
    provider.apply(provider.plan_delete(intent.ref))
    assert state.get("loadBalancers", SANDBOX_RG, names.lb_name(cluster, "external")) is None
