"""Cluster names as EKS allows them (issue 10, item 4): up to 100 characters, letters (upper case
kept), digits, ``-`` and ``_``. The ``kubernetes.io/cluster/<name>`` tag uses the name verbatim;
names derived from it stay within AWS's limits and character sets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.names import target_group_name
from lbprov_aws.sandbox import MotoSandbox
from lbprov_aws.testing import ANN, AwsView, Svc, delete_all, fast_settings, node_objects

from lbprov import naming
from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Port, ServiceRef
from lbprov.render import render_plan

EKS_NAME = "Prod_EKS-" + "x" * 89 + "_Z"  # 100 characters


@pytest.fixture
def eks(moto_server: MotoSandbox) -> Iterator[tuple[AWSProvider, AwsView, list[dict[str, object]]]]:
    moto_server.reset()
    cloud = moto_server.seed(["n1", "n2"], cluster=EKS_NAME)
    provider = AWSProvider.from_settings(fast_settings(cloud))
    yield provider, AwsView(cloud), node_objects(cloud)


@pytest.mark.parametrize("kind", ["nlb", "classic"])
def test_a_100_character_mixed_case_cluster_name_works_end_to_end(
    eks: tuple[AWSProvider, AwsView, list[dict[str, object]]], kind: str
) -> None:
    provider, view, nodes = eks
    assert len(EKS_NAME) == 100
    svc = Svc(annotations={ANN + "type": kind})
    intent = build_intent(svc.to_k8s(), nodes, IntentSettings(cluster=EKS_NAME), provider)
    provider.apply(provider.plan(intent))
    again = provider.plan(intent)
    assert again.empty, render_plan(again)
    key = naming.cluster_tag_key(EKS_NAME)
    lbs = view.nlbs(svc.uid) if kind == "nlb" else view.classics(svc.uid)
    assert len(lbs) == 1 and lbs[0]["Tags"][key] == "owned"  # verbatim, upper case kept
    for tg in view.tgs(svc.uid):
        assert tg["Tags"][key] == "owned" and len(tg["TargetGroupName"]) <= 32
    delete_all(provider, svc)
    view_lbs = view.nlbs(svc.uid) if kind == "nlb" else view.classics(svc.uid)
    assert view_lbs == []


def test_target_group_names_never_hold_a_double_hyphen_nor_end_with_one() -> None:
    ref = ServiceRef("ns--x", "web--api", "0f4e2b6a-0000-4000-8000-000000000001")
    name = target_group_name(EKS_NAME, ref, Port("p", "TCP", 80, 30080))
    assert "--" not in name and not name.endswith("-") and len(name) <= 32
    ref = ServiceRef("a-", "-b-", "0f4e2b6a-0000-4000-8000-000000000002")
    name = target_group_name(EKS_NAME, ref, Port("p", "TCP", 80, 30080))
    assert "--" not in name and len(name) <= 32
