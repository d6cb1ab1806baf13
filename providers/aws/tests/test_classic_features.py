"""Classic ELB feature annotations (issue 10, features): `backend-protocol` with upstream's listener
mapping, `ssl-negotiation-policy`, `connection-idle-timeout`, `connection-draining-*`,
`access-log-*`; through boto3 against the strict sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, intent_of, kinds, node_objects

from lbprov.model import Action, InvalidService
from lbprov.provider import SandboxCloud

CLASSIC = {ANN + "type": "classic"}
PORTS = [(80, "TCP", 30080), (443, "TCP", 30443)]


def _listeners(view: AwsView, uid: str) -> dict[int, dict[str, Any]]:
    [lb] = view.classics(uid)
    return {d["Listener"]["LoadBalancerPort"]: d for d in lb["ListenerDescriptions"]}


def _pairs(view: AwsView, uid: str) -> dict[int, tuple[str, str]]:
    return {
        port: (d["Listener"]["Protocol"].upper(), d["Listener"]["InstanceProtocol"].upper())
        for port, d in _listeners(view, uid).items()
    }


@pytest.mark.parametrize(
    ("backend", "tls_port", "plain_port"),
    [
        # cloud-provider-aws buildListener: a TLS port follows backendProtocolMapping, SSL/TCP by
        # default; elsewhere http gives HTTP/HTTP and everything else TCP/TCP.
        (None, ("SSL", "TCP"), ("TCP", "TCP")),
        ("http", ("HTTPS", "HTTP"), ("HTTP", "HTTP")),
        ("https", ("HTTPS", "HTTPS"), ("TCP", "TCP")),
        ("ssl", ("SSL", "SSL"), ("TCP", "TCP")),
        ("tcp", ("SSL", "TCP"), ("TCP", "TCP")),
    ],
)
def test_backend_protocol_maps_listeners_as_upstream(
    provider: AWSProvider,
    cloud: SandboxCloud,
    view: AwsView,
    backend: str | None,
    tls_port: tuple[str, str],
    plain_port: tuple[str, str],
) -> None:
    cert = cloud.extra["create_certificate"]()
    annotations = {**CLASSIC, ANN + "ssl-cert": cert, ANN + "ssl-ports": "443"}
    if backend:
        annotations[ANN + "backend-protocol"] = backend
    svc = Svc(ports=PORTS, annotations=annotations)
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert _pairs(view, svc.uid) == {443: tls_port, 80: plain_port}


def test_backend_protocol_change_replaces_the_listeners(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(ports=PORTS, annotations=dict(CLASSIC))
    nodes = node_objects(cloud)
    converge(provider, intent_of(provider, svc, nodes))
    svc.annotations[ANN + "backend-protocol"] = "http"
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert kinds(plan) == [("replace", "listener"), ("replace", "listener")]
    assert _pairs(view, svc.uid) == {80: ("HTTP", "HTTP"), 443: ("HTTP", "HTTP")}


def test_classic_ssl_negotiation_policy_as_upstream(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    cert = cloud.extra["create_certificate"]()
    nodes = node_objects(cloud)
    svc = Svc(
        ports=PORTS,
        annotations={
            **CLASSIC,
            ANN + "ssl-cert": cert,
            ANN + "ssl-ports": "443",
            ANN + "ssl-negotiation-policy": "ELBSecurityPolicy-TLS-1-2-2017-01",
        },
    )
    converge(provider, intent_of(provider, svc, nodes))
    listeners = _listeners(view, svc.uid)
    assert listeners[443]["PolicyNames"] == ["k8s-SSLNegotiationPolicy-ELBSecurityPolicy-TLS-1-2-2017-01"]
    assert not listeners[80]["PolicyNames"]  # a plain TCP listener gets no TLS policy
    policies = view.elb.describe_load_balancer_policies(LoadBalancerName=svc.lb_name)["PolicyDescriptions"]
    [own] = [p for p in policies if p["PolicyName"].startswith("k8s-SSLNegotiationPolicy-")]
    assert own["PolicyTypeName"] == "SSLNegotiationPolicyType"
    assert {
        "AttributeName": "Reference-Security-Policy",
        "AttributeValue": "ELBSecurityPolicy-TLS-1-2-2017-01",
    } in own["PolicyAttributeDescriptions"]

    # Another policy: set on the listener in place (no listener replacement).
    svc.annotations[ANN + "ssl-negotiation-policy"] = "ELBSecurityPolicy-2016-08"
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert [(c.action, c.kind) for c in plan.changes] == [(Action.UPDATE, "listener")]
    assert _listeners(view, svc.uid)[443]["PolicyNames"] == [
        "k8s-SSLNegotiationPolicy-ELBSecurityPolicy-2016-08"
    ]


def test_classic_attributes_set_repaired_and_reset_to_upstream_defaults(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    cloud.extra["sandbox"].client("s3").create_bucket(Bucket="elb-logs")
    nodes = node_objects(cloud)
    svc = Svc(
        annotations={
            **CLASSIC,
            ANN + "connection-idle-timeout": "300",
            ANN + "connection-draining-enabled": "true",
            ANN + "connection-draining-timeout": "60",
            ANN + "access-log-enabled": "true",
            ANN + "access-log-emit-interval": "5",
            ANN + "access-log-s3-bucket-name": "elb-logs",
            ANN + "access-log-s3-bucket-prefix": "web",
        }
    )
    converge(provider, intent_of(provider, svc, nodes))

    def attrs() -> dict[str, Any]:
        got: dict[str, Any] = view.elb.describe_load_balancer_attributes(LoadBalancerName=svc.lb_name)[
            "LoadBalancerAttributes"
        ]
        return got

    got = attrs()
    assert got["ConnectionSettings"]["IdleTimeout"] == 300
    assert got["ConnectionDraining"] == {"Enabled": True, "Timeout": 60}
    assert got["AccessLog"]["Enabled"] is True
    assert (got["AccessLog"]["S3BucketName"], got["AccessLog"]["EmitInterval"]) == ("elb-logs", 5)
    assert got["AccessLog"]["S3BucketPrefix"] == "web"

    # Drift repaired.
    view.elb.modify_load_balancer_attributes(
        LoadBalancerName=svc.lb_name, LoadBalancerAttributes={"ConnectionSettings": {"IdleTimeout": 30}}
    )
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert kinds(plan) == [("update", "load-balancer")]
    assert attrs()["ConnectionSettings"]["IdleTimeout"] == 300

    # The annotations removed: cloud-provider-aws's defaults (idle 60, draining and logs off).
    svc.annotations = dict(CLASSIC)
    converge(provider, intent_of(provider, svc, nodes))
    got = attrs()
    assert got["ConnectionSettings"]["IdleTimeout"] == 60
    assert got["ConnectionDraining"]["Enabled"] is False and got["AccessLog"]["Enabled"] is False


@pytest.mark.parametrize(
    ("annotations", "key", "says"),
    [
        ({ANN + "backend-protocol": "grpc", **CLASSIC}, "backend-protocol", "http, https, ssl, tcp"),
        ({ANN + "backend-protocol": "http"}, "backend-protocol", "classic"),
        ({ANN + "connection-idle-timeout": "60"}, "connection-idle-timeout", "classic"),
        ({ANN + "connection-idle-timeout": "5000", **CLASSIC}, "connection-idle-timeout", "1-4000"),
        (
            {ANN + "connection-draining-enabled": "maybe", **CLASSIC},
            "connection-draining-enabled",
            "true, false",
        ),
        ({ANN + "access-log-enabled": "true", **CLASSIC}, "access-log-enabled", "access-log-s3-bucket-name"),
        ({ANN + "access-log-emit-interval": "10", **CLASSIC}, "access-log-emit-interval", "5, 60"),
        (
            {ANN + "access-log-s3-bucket-name": "Bad_Bucket", **CLASSIC},
            "access-log-s3-bucket-name",
            "S3 bucket",
        ),
        (
            {ANN + "ssl-negotiation-policy": "ELBSecurityPolicy-2016-08", **CLASSIC},
            "ssl-negotiation-policy",
            "ssl-cert",
        ),
        (
            {
                ANN + "ssl-negotiation-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                ANN + "ssl-cert": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
                **CLASSIC,
            },
            "ssl-negotiation-policy",
            "classic ELB policy",
        ),
    ],
)
def test_bad_classic_input_is_refused_naming_the_annotation(
    provider: AWSProvider, cloud: SandboxCloud, annotations: dict[str, str], key: str, says: str
) -> None:
    with pytest.raises(InvalidService) as err:
        # Without the type annotation a classic-only key is refused by the plan (the Service might
        # keep a classic ELB it has), with it by resolve.
        provider.plan(intent_of(provider, Svc(annotations=annotations), node_objects(cloud)))
    assert ANN + key in str(err.value) and says in str(err.value)
    assert cloud.mutating_requests() == []
