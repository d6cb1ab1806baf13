"""NLB TLS listeners' `ssl-negotiation-policy` (default a TLS 1.3/1.2 policy, not upstream's
ELBSecurityPolicy-2016-08), `alpn-policy`, and `healthcheck-success-codes` (HTTP/HTTPS health checks
only), through boto3 against the strict sandbox."""

from __future__ import annotations

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, intent_of, kinds, node_objects

from lbprov.model import InvalidService
from lbprov.provider import SandboxCloud

TLS_PORTS = [(80, "TCP", 30080), (443, "TCP", 30443)]


def _listeners(view: AwsView, uid: str) -> dict[int, dict[str, object]]:
    [lb] = view.nlbs(uid)
    return {li["Port"]: li for li in view.listeners(lb["LoadBalancerArn"])}


def test_tls_listener_default_policy_is_tls13_and_12_not_2016_08(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    cert = cloud.extra["create_certificate"]()
    svc = Svc(ports=TLS_PORTS, annotations={ANN + "ssl-cert": cert, ANN + "ssl-ports": "443"})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    listeners = _listeners(view, svc.uid)
    assert listeners[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert not listeners[443].get("AlpnPolicy")  # AWS's default: no ALPN
    assert "SslPolicy" not in listeners[80] or listeners[80]["Protocol"] == "TCP"


def test_ssl_negotiation_and_alpn_policies_are_set_changed_and_repaired(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    cert = cloud.extra["create_certificate"]()
    nodes = node_objects(cloud)
    svc = Svc(
        ports=TLS_PORTS,
        annotations={
            ANN + "ssl-cert": cert,
            ANN + "ssl-ports": "443",
            ANN + "ssl-negotiation-policy": "ELBSecurityPolicy-TLS13-1-3-2021-06",
            ANN + "alpn-policy": "HTTP2Preferred",
        },
    )
    converge(provider, intent_of(provider, svc, nodes))
    tls = _listeners(view, svc.uid)[443]
    assert tls["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-3-2021-06"
    assert tls["AlpnPolicy"] == ["HTTP2Preferred"]

    # Changed by hand: the next plan repairs it, modifying the listener in place.
    view.elbv2.modify_listener(ListenerArn=str(tls["ListenerArn"]), AlpnPolicy=["HTTP1Only"])
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert kinds(plan) == [("update", "listener")]
    assert plan.changes[0].before is not None and plan.changes[0].before["alpn"] == "HTTP1Only"
    assert _listeners(view, svc.uid)[443]["AlpnPolicy"] == ["HTTP2Preferred"]

    # The annotations removed: back to lbprov's default policy and no ALPN.
    del svc.annotations[ANN + "alpn-policy"], svc.annotations[ANN + "ssl-negotiation-policy"]
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert kinds(plan) == [("update", "listener")]
    tls = _listeners(view, svc.uid)[443]
    assert tls["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert tls.get("AlpnPolicy") in (None, [], ["None"])


def test_success_codes_on_http_health_checks(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    svc = Svc(
        annotations={ANN + "healthcheck-protocol": "HTTP", ANN + "healthcheck-success-codes": "200,202"}
    )
    converge(provider, intent_of(provider, svc, nodes))
    [tg] = view.tgs(svc.uid)
    assert tg["HealthCheckProtocol"] == "HTTP" and tg["Matcher"]["HttpCode"] == "200,202"

    svc.annotations[ANN + "healthcheck-success-codes"] = "200-299"
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert kinds(plan) == [("update", "target-group")]
    assert view.tgs(svc.uid)[0]["Matcher"]["HttpCode"] == "200-299"

    # Without the annotation an HTTP check has AWS's NLB default, 200-399.
    del svc.annotations[ANN + "healthcheck-success-codes"]
    converge(provider, intent_of(provider, svc, nodes))
    assert view.tgs(svc.uid)[0]["Matcher"]["HttpCode"] == "200-399"


def test_success_codes_on_the_local_policy_http_check(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(
        annotations={ANN + "healthcheck-success-codes": "200"},
        spec={"externalTrafficPolicy": "Local", "healthCheckNodePort": 32000},
    )
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    [tg] = view.tgs(svc.uid)
    assert (tg["HealthCheckProtocol"], tg["Matcher"]["HttpCode"]) == ("HTTP", "200")


@pytest.mark.parametrize(
    ("annotations", "key", "says"),
    [
        ({"healthcheck-success-codes": "200"}, "healthcheck-success-codes", "TCP"),
        (
            {"healthcheck-success-codes": "200", "healthcheck-protocol": "TCP"},
            "healthcheck-success-codes",
            "TCP",
        ),
        (
            {"healthcheck-success-codes": "100-199", "healthcheck-protocol": "HTTP"},
            "healthcheck-success-codes",
            "200-599",
        ),
        (
            {"healthcheck-success-codes": "200-", "healthcheck-protocol": "HTTP"},
            "healthcheck-success-codes",
            "200-599",
        ),
        ({"healthcheck-success-codes": "200", "type": "classic"}, "healthcheck-success-codes", "classic"),
        ({"alpn-policy": "HTTP2Preferred"}, "alpn-policy", "ssl-cert"),
        ({"alpn-policy": "h2", "ssl-cert": "CERT"}, "alpn-policy", "HTTP2Preferred"),
        (
            {"ssl-negotiation-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06"},
            "ssl-negotiation-policy",
            "ssl-cert",
        ),
        ({"ssl-negotiation-policy": "my policy", "ssl-cert": "CERT"}, "ssl-negotiation-policy", "predefined"),
    ],
)
def test_bad_tls_and_success_code_input_is_refused_naming_the_key(
    provider: AWSProvider, cloud: SandboxCloud, annotations: dict[str, str], key: str, says: str
) -> None:
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    full = {ANN + k: (cert if v == "CERT" else v) for k, v in annotations.items()}
    with pytest.raises(InvalidService) as err:
        intent_of(provider, Svc(ports=TLS_PORTS, annotations=full), node_objects(cloud))
    assert ANN + key in str(err.value) and says in str(err.value)


def test_an_unknown_tls_policy_is_refused_by_the_cloud(provider: AWSProvider, cloud: SandboxCloud) -> None:
    """The name passes the syntax check but AWS has no such policy: the strict layer answers
    SSLPolicyNotFound, as DescribeSSLPolicies-less AWS does, and nothing half-made is claimed."""
    from botocore.exceptions import ClientError

    cert = cloud.extra["create_certificate"]()
    svc = Svc(
        ports=TLS_PORTS,
        annotations={ANN + "ssl-cert": cert, ANN + "ssl-negotiation-policy": "ELBSecurityPolicy-Nope-2099"},
    )
    intent = intent_of(provider, svc, node_objects(cloud))
    with pytest.raises(ClientError, match="SSLPolicyNotFound"):
        provider.apply(provider.plan(intent))
