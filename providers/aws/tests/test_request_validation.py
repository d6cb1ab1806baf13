"""botocore's parameter validation (settings ``validate_requests``): off in the controller, on in
the tests. Off, what it would refuse of lbprov's inputs is refused by the plan first (options.py's
ranges, with the annotation named), and an invalid request still never changes anything: AWS (here
the strict sandbox) refuses it. On, a request is checked before it is sent."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, Svc, fast_settings, intent_of, node_objects

from lbprov.model import InvalidService
from lbprov.provider import SandboxCloud

#: A target group request botocore's model refuses (HealthCheckIntervalSeconds: min 5).
BAD_TARGET_GROUP: dict[str, Any] = {
    "Name": "k8s-bad-interval",
    "Protocol": "TCP",
    "Port": 30080,
    "VpcId": "vpc-unknown",
    "HealthCheckIntervalSeconds": 1,
}


def test_with_validation_a_bad_request_is_refused_before_it_is_sent(cloud: SandboxCloud) -> None:
    provider = AWSProvider.from_settings(fast_settings(cloud))
    cloud.extra["sandbox"].recorder.clear()
    with pytest.raises(ParamValidationError, match="HealthCheckIntervalSeconds"):
        provider.clients.call("elbv2:CreateTargetGroup", **BAD_TARGET_GROUP)
    assert provider.calls.stats.writes == 0
    assert cloud.mutating_requests() == []


def test_by_default_a_bad_request_is_sent_unchecked_and_refused_by_aws(cloud: SandboxCloud) -> None:
    provider = AWSProvider.from_settings(cloud.settings)  # (validate_requests not set)
    with pytest.raises(ClientError):
        provider.clients.call("elbv2:CreateTargetGroup", **BAD_TARGET_GROUP)
    assert provider.calls.stats.writes == 1


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("healthcheck-interval", "1"),  # HealthCheckIntervalSeconds: min 5
        ("healthcheck-timeout", "1"),  # HealthCheckTimeoutSeconds: min 2
        ("healthcheck-healthy-threshold", "1"),  # HealthyThresholdCount: min 2
        ("healthcheck-unhealthy-threshold", "1"),  # UnhealthyThresholdCount: min 2
    ],
)
def test_without_validation_the_plan_refuses_what_it_would_refuse(
    cloud: SandboxCloud, key: str, value: str
) -> None:
    provider = AWSProvider.from_settings(cloud.settings)
    svc = Svc(annotations={ANN + key: value})
    with pytest.raises(InvalidService, match=ANN + key):
        provider.plan(intent_of(provider, svc, node_objects(cloud)))
    assert provider.calls.stats.writes == 0
