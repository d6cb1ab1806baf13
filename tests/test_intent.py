"""build_intent: the NodePort mapping, node eligibility and validation of core fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lbprov.intent import (
    EXCLUDE_LABEL,
    IntentSettings,
    NodeTargetsMemo,
    build_intent,
    eligible_nodes,
    no_nodes_reason,
    node_exclusion_reason,
    node_targets,
    parse_bool,
)
from lbprov.model import HealthCheck, InvalidService, Port
from lbprov.naming import SERVICE_NAME_TAG, SERVICE_UID_TAG, cluster_tag_key

SETTINGS = IntentSettings(cluster="test")
UID = "5f2b2c3e-1111-2222-3333-444455556666"


def service(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "uid": UID, "annotations": {}},
        "spec": {
            "type": "LoadBalancer",
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
                {"name": "https", "protocol": "TCP", "port": 443, "targetPort": 8443, "nodePort": 30443},
            ],
        },
    }
    base["spec"].update(spec)
    return base


def node(
    name: str, *, provider_id: str | None = None, labels: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "zone-a", **(labels or {})}},
        "spec": {"providerID": provider_id if provider_id is not None else f"aws:///zone-a/i-{name}"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "Hostname", "address": name},
            ]
        },
    }
    obj["spec"].update(extra.get("spec", {}))
    obj["metadata"].update(extra.get("metadata", {}))
    return obj


NODES = [node("n2"), node("n1")]


def test_ports_map_service_port_to_node_port_in_order() -> None:
    intent = build_intent(service(), NODES, SETTINGS)
    assert intent.ports == (Port("http", "TCP", 80, 30080), Port("https", "TCP", 443, 30443))
    assert intent.lb_name == "a5f2b2c3e11112222333344445555666"
    assert len(intent.lb_name) == 32
    assert intent.ref.key == "shop/web"


def test_targets_are_sorted_and_carry_provider_id_ip_and_zone() -> None:
    intent = build_intent(service(), NODES, SETTINGS)
    assert [t.node_name for t in intent.targets] == ["n1", "n2"]
    t = intent.targets[0]
    assert (t.provider_id, t.internal_ip, t.zone) == ("aws:///zone-a/i-n1", "10.0.0.1", "zone-a")


def test_build_intent_is_pure_same_inputs_same_intent() -> None:
    svc = service()
    before = copy.deepcopy(svc)
    assert build_intent(svc, NODES, SETTINGS) == build_intent(svc, list(reversed(NODES)), SETTINGS)
    assert svc == before


def test_ownership_tags_name_cluster_service_and_uid() -> None:
    tags = build_intent(service(), NODES, SETTINGS).tag_map
    assert tags[cluster_tag_key("test")] == "owned"
    assert tags[SERVICE_NAME_TAG] == "shop/web"
    assert tags[SERVICE_UID_TAG] == UID


def test_local_traffic_policy_gives_http_healthz_on_health_check_node_port() -> None:
    intent = build_intent(service(externalTrafficPolicy="Local", healthCheckNodePort=32000), NODES, SETTINGS)
    assert intent.health_check == HealthCheck(protocol="HTTP", port=32000, path="/healthz")
    assert build_intent(service(), NODES, SETTINGS).health_check is None


def test_client_ip_affinity_with_default_and_explicit_timeout() -> None:
    assert (
        build_intent(service(sessionAffinity="ClientIP"), NODES, SETTINGS).affinity_timeout_seconds == 10800
    )
    explicit = service(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    intent = build_intent(explicit, NODES, SETTINGS)
    assert intent.session_affinity and intent.affinity_timeout_seconds == 60


def test_source_ranges_spec_wins_over_annotation_and_are_normalised() -> None:
    svc = service(loadBalancerSourceRanges=["10.1.2.3/8", "192.168.0.0/16"])
    svc["metadata"]["annotations"]["service.beta.kubernetes.io/load-balancer-source-ranges"] = "1.2.3.0/24"
    assert build_intent(svc, NODES, SETTINGS).source_ranges == ("10.0.0.0/8", "192.168.0.0/16")
    del svc["spec"]["loadBalancerSourceRanges"]
    assert build_intent(svc, NODES, SETTINGS).source_ranges == ("1.2.3.0/24",)
    assert build_intent(service(), NODES, SETTINGS).source_ranges == ("0.0.0.0/0",)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, None),
        ({EXCLUDE_LABEL: "false"}, None),
        ({EXCLUDE_LABEL: "true"}, "labelled"),
        ({EXCLUDE_LABEL: ""}, "labelled"),
        ({EXCLUDE_LABEL: "bogus"}, "labelled"),
    ],
)
def test_exclude_label_follows_upstream_parse_bool(labels: dict[str, str], expected: str | None) -> None:
    reason = node_exclusion_reason(node("n", labels=labels))
    assert (reason is None) if expected is None else (reason is not None and expected in reason)


def test_nodes_tainted_deleted_or_without_provider_id_are_ineligible() -> None:
    tainted = node("t", spec={"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]})
    deleting = node("d", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"})
    bare = node("b", provider_id="")
    assert eligible_nodes([tainted, deleting, bare, node("ok")]) == [node("ok")]


def test_not_ready_nodes_stay_eligible_as_upstream() -> None:
    n = node("n")
    n["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert node_exclusion_reason(n) is None


def test_parse_bool_matches_go() -> None:
    assert parse_bool("T") is True and parse_bool("0") is False and parse_bool("yes") is None


BAD = [
    ({"ports": [{"protocol": "SCTP", "port": 80, "nodePort": 30000}]}, "spec.ports[0].protocol", "TCP, UDP"),
    ({"ports": [{"protocol": "TCP", "port": 0, "nodePort": 30000}]}, "spec.ports[0].port", "1-65535"),
    ({"ports": []}, "spec.ports", "at least one"),
    (
        {"ports": [{"protocol": "TCP", "port": 80}], "allocateLoadBalancerNodePorts": False},
        "spec.allocateLoadBalancerNodePorts",
        "accepted values",
    ),
    ({"ports": [{"protocol": "TCP", "port": 80}]}, "spec.ports[0].nodePort", "no NodePort"),
    ({"loadBalancerSourceRanges": ["10.0.0.0/33"]}, "spec.loadBalancerSourceRanges[0]", "not a CIDR"),
    ({"externalTrafficPolicy": "Local"}, "spec.healthCheckNodePort", "healthCheckNodePort"),
    ({"externalTrafficPolicy": "Everywhere"}, "spec.externalTrafficPolicy", "Cluster, Local"),
    ({"sessionAffinity": "Cookie"}, "spec.sessionAffinity", "None, ClientIP"),
    ({"loadBalancerIP": "300.1.1.1"}, "spec.loadBalancerIP", "not an IP"),
    ({"type": "ClusterIP"}, "spec.type", "does not ask"),
    (
        {
            "ports": [
                {"protocol": "TCP", "port": 80, "nodePort": 30000},
                {"protocol": "TCP", "port": 80, "nodePort": 30001},
            ]
        },
        "spec.ports[1].port",
        "twice",
    ),
]


@pytest.mark.parametrize(("spec", "field", "words"), BAD)
def test_bad_input_raises_invalid_service_naming_the_field(
    spec: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidService) as info:
        build_intent(service(**spec), NODES, SETTINGS)
    assert info.value.field == field
    assert words in str(info.value)


def test_bad_source_range_annotation_names_the_annotation() -> None:
    svc = service()
    svc["metadata"]["annotations"]["service.beta.kubernetes.io/load-balancer-source-ranges"] = (
        "10.0.0.0/8, nope"
    )
    with pytest.raises(InvalidService, match=r"load-balancer-source-ranges\]\[1\]"):
        build_intent(svc, NODES, SETTINGS)


def test_no_eligible_node_keeps_the_load_balancer_with_no_targets_and_says_why() -> None:
    # Issue 13: as upstream, no eligible node means an empty backend set, not an invalid Service.
    bare = [node("a", provider_id=""), node("b", provider_id="")]
    assert build_intent(service(), bare, SETTINGS).targets == ()
    assert no_nodes_reason(bare) == "every node is excluded (has no spec.providerID)"
    assert no_nodes_reason([]) == "the cluster has no nodes"
    assert no_nodes_reason([node("ok")]) is None


def test_missing_uid_is_rejected() -> None:
    svc = service()
    del svc["metadata"]["uid"]
    with pytest.raises(InvalidService, match=r"metadata.uid"):
        build_intent(svc, NODES, SETTINGS)


def test_the_node_targets_memo_computes_once_per_set_of_node_objects() -> None:
    memo = NodeTargetsMemo()
    nodes = [node("n2"), node("n1", metadata={"deletionTimestamp": "2026-11-30T00:00:00Z"}), node("n3")]
    first = memo(nodes)
    assert first == node_targets(nodes) == build_intent(service(), nodes, SETTINGS).targets
    assert [t.node_name for t in first] == ["n2", "n3"]
    assert memo(list(nodes)) is first, "the same objects (a new list): not computed again"
    # the informer replaces a changed node's object: a new object is a new computation
    relabelled = copy.deepcopy(nodes)
    relabelled[2]["metadata"]["labels"]["pool"] = "b"
    again = memo(relabelled)
    assert again is not first and ("pool", "b") in again[1].labels
    assert memo(nodes[:2]) == node_targets(nodes[:2]), "a node gone"
    intent = build_intent(service(), relabelled, SETTINGS, targets=memo(relabelled))
    assert intent == build_intent(service(), relabelled, SETTINGS)
