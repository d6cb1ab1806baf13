"""Malformed Services and annotations: InvalidService naming the field, and not one cloud call.

The provider here points at an address where nothing listens: a cloud call would fail loudly with
a connection error instead of InvalidService, and the CloudCalls counters must stay at zero.
"""

from __future__ import annotations

from typing import Any

import pytest
from lbprov_aws import AWSOptions, AWSProvider
from lbprov_aws.testing import ANN, CLUSTER, Svc

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import InvalidService

NOWHERE = {
    "cluster_name": CLUSTER,
    "endpoint_url": "http://127.0.0.1:9",
    "access_key_id": "x",
    "secret_access_key": "x",
    "max_attempts": 1,
}


def _nodes(provider_id: str | None = "aws:///us-east-1a/i-0123456789abcdef0") -> list[dict[str, Any]]:
    spec = {"providerID": provider_id} if provider_id else {}
    return [{"metadata": {"name": f"n{i}", "labels": {}}, "spec": spec} for i in range(2)]


def _svc(**kw: Any) -> Svc:
    svc = Svc()
    for key, value in kw.items():
        if key == "annotations":
            svc.annotations.update(value)
        elif key == "spec":
            svc.spec.update(value)
        else:
            setattr(svc, key, value)
    return svc


BAD: list[tuple[str, Svc, list[dict[str, Any]], str]] = [
    (
        "bad-cidr",
        _svc(spec={"loadBalancerSourceRanges": ["10.0.0.0/33"]}),
        _nodes(),
        "spec.loadBalancerSourceRanges[0]",
    ),
    (
        "bad-cidr-annotation",
        _svc(annotations={"service.beta.kubernetes.io/load-balancer-source-ranges": "nope"}),
        _nodes(),
        "load-balancer-source-ranges",
    ),
    ("sctp", _svc(ports=[(80, "SCTP", 30080)]), _nodes(), "spec.ports[0].protocol"),
    (
        "hc-interval-out-of-range",
        _svc(annotations={ANN + "healthcheck-interval": "1"}),
        _nodes(),
        ANN + "healthcheck-interval",
    ),
    (
        "hc-timeout-not-integer",
        _svc(annotations={ANN + "healthcheck-timeout": "ten"}),
        _nodes(),
        ANN + "healthcheck-timeout",
    ),
    (
        "hc-threshold-out-of-range",
        _svc(annotations={ANN + "healthcheck-unhealthy-threshold": "11"}),
        _nodes(),
        ANN + "healthcheck-unhealthy-threshold",
    ),
    (
        "hc-protocol-unknown",
        _svc(annotations={ANN + "healthcheck-protocol": "UDP"}),
        _nodes(),
        ANN + "healthcheck-protocol",
    ),
    (
        "hc-path-relative",
        _svc(annotations={ANN + "healthcheck-path": "healthz"}),
        _nodes(),
        ANN + "healthcheck-path",
    ),
    (
        "hc-port-out-of-range",
        _svc(annotations={ANN + "healthcheck-port": "70000"}),
        _nodes(),
        ANN + "healthcheck-port",
    ),
    ("unknown-lb-type", _svc(annotations={ANN + "type": "alb"}), _nodes(), ANN + "type"),
    ("lb-type-for-lbc", _svc(annotations={ANN + "type": "external"}), _nodes(), ANN + "type"),
    (
        "malformed-tags",
        _svc(annotations={ANN + "additional-resource-tags": "team=web,oops"}),
        _nodes(),
        ANN + "additional-resource-tags",
    ),
    (
        "reserved-tag",
        _svc(annotations={ANN + "additional-resource-tags": "kubernetes.io/cluster/x=owned"}),
        _nodes(),
        ANN + "additional-resource-tags",
    ),
    ("foreign-provider-id", _svc(), _nodes("gce://p/z/n"), "nodes[].spec.providerID"),
    ("bad-scheme", _svc(annotations={ANN + "scheme": "public"}), _nodes(), ANN + "scheme"),
    (
        "scheme-contradicts-internal",
        _svc(annotations={ANN + "internal": "true", ANN + "scheme": "internet-facing"}),
        _nodes(),
        ANN + "scheme",
    ),
    (
        "proxy-protocol-value",
        _svc(annotations={ANN + "proxy-protocol": "true"}),
        _nodes(),
        ANN + "proxy-protocol",
    ),
    (
        "cross-zone-value",
        _svc(annotations={ANN + "cross-zone-load-balancing-enabled": "sure"}),
        _nodes(),
        ANN + "cross-zone-load-balancing-enabled",
    ),
    ("ssl-cert-not-arn", _svc(annotations={ANN + "ssl-cert": "my-cert"}), _nodes(), ANN + "ssl-cert"),
    ("ssl-ports-without-cert", _svc(annotations={ANN + "ssl-ports": "443"}), _nodes(), ANN + "ssl-ports"),
    (
        "classic-udp",
        _svc(ports=[(53, "UDP", 30053)], annotations={ANN + "type": "classic"}),
        _nodes(),
        "spec.ports[0].protocol",
    ),
    (
        "classic-client-ip",
        _svc(spec={"sessionAffinity": "ClientIP"}, annotations={ANN + "type": "classic"}),
        _nodes(),
        "spec.sessionAffinity",
    ),
    (
        "classic-timeout-not-below-interval",
        _svc(
            annotations={
                ANN + "type": "classic",
                ANN + "healthcheck-interval": "10",
                ANN + "healthcheck-timeout": "10",
            }
        ),
        _nodes(),
        ANN + "healthcheck-timeout",
    ),
    ("load-balancer-ip", _svc(spec={"loadBalancerIP": "203.0.113.10"}), _nodes(), "spec.loadBalancerIP"),
    (
        "unsupported-eip-allocations",
        _svc(annotations={ANN + "eip-allocations": "eipalloc-1"}),
        _nodes(),
        ANN + "eip-allocations",
    ),
    ("target-type-ip", _svc(annotations={ANN + "nlb-target-type": "ip"}), _nodes(), ANN + "nlb-target-type"),
    (
        "target-node-labels-match-nothing",
        _svc(annotations={ANN + "target-node-labels": "pool=none"}),
        _nodes(),
        ANN + "target-node-labels",
    ),
    (
        "target-node-labels-malformed",
        _svc(annotations={ANN + "target-node-labels": "pool"}),
        _nodes(),
        ANN + "target-node-labels",
    ),
    (
        "tcp-udp-same-port-different-node-ports",
        _svc(ports=[(53, "TCP", 30053), (53, "UDP", 30054)]),
        _nodes(),
        "spec.ports[1].nodePort",
    ),
    (
        "local-without-hc-node-port",
        _svc(spec={"externalTrafficPolicy": "Local"}),
        _nodes(),
        "spec.healthCheckNodePort",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_invalid_service_naming_the_field_with_no_cloud_call(case: tuple[Any, ...]) -> None:
    _, svc, nodes, field = case
    provider = AWSProvider.from_settings(NOWHERE)
    with pytest.raises(InvalidService) as err:
        build_intent(svc.to_k8s(), nodes, IntentSettings(cluster=CLUSTER), provider)
    assert field in err.value.field, (err.value.field, str(err.value))
    assert err.value.reason  # says why / what is accepted
    assert provider.calls.stats.reads == 0 and provider.calls.stats.writes == 0


def test_nodes_without_provider_id_leave_no_target_and_say_why() -> None:
    # Not invalid input since issue 13: with no eligible node the load balancer is kept with an
    # empty target set, and the reconciler's UnAvailableLoadBalancer event gives this reason.
    from lbprov.intent import no_nodes_reason

    provider = AWSProvider.from_settings(NOWHERE)
    intent = build_intent(_svc().to_k8s(), _nodes(None), IntentSettings(cluster=CLUSTER), provider)
    assert intent.targets == ()
    assert "providerID" in (no_nodes_reason(_nodes(None)) or "")
    assert provider.calls.stats.reads == 0 and provider.calls.stats.writes == 0


def test_unknown_type_lists_accepted_values() -> None:
    provider = AWSProvider.from_settings(NOWHERE)
    with pytest.raises(InvalidService, match="accepted values: nlb, classic, clb, elb"):
        build_intent(
            _svc(annotations={ANN + "type": "alb"}).to_k8s(),
            _nodes(),
            IntentSettings(cluster=CLUSTER),
            provider,
        )
    with pytest.raises(InvalidService, match="aws-load-balancer-controller"):
        build_intent(
            _svc(annotations={ANN + "type": "nlb-ip"}).to_k8s(),
            _nodes(),
            IntentSettings(cluster=CLUSTER),
            provider,
        )


def test_good_annotations_resolve_to_frozen_options() -> None:
    provider = AWSProvider.from_settings(NOWHERE)
    svc = _svc(
        annotations={
            ANN + "scheme": "internal",
            ANN + "additional-resource-tags": "b=2, a=1",
            ANN + "healthcheck-port": "traffic-port",
            ANN + "healthcheck-interval": "300",
            ANN + "ssl-cert": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            ANN + "ssl-ports": "https,443",
            ANN + "target-node-labels": "pool=edge",
        }
    )
    nodes = _nodes()
    nodes[0]["metadata"]["labels"] = {"pool": "edge"}
    intent = build_intent(svc.to_k8s(), nodes, IntentSettings(cluster=CLUSTER), provider)
    opts = intent.options
    assert isinstance(opts, AWSOptions)
    assert intent.scheme == "internal" and opts.kind == "nlb"
    assert opts.additional_tags == (("a", "1"), ("b", "2"))
    assert opts.health.port == "traffic-port" and opts.health.interval == 300
    assert opts.uses_tls(443, "x") and opts.uses_tls(8443, "https") and not opts.uses_tls(80, "http")
    assert [t.node_name for t in intent.targets] == ["n0"]
    with pytest.raises(Exception, match="frozen"):
        opts.kind = "classic"  # type: ignore[misc]
    assert provider.calls.stats.reads == 0
