"""Requests AWS would reject that the provider used to send (issue 10, item 8): each is now
validated up front (an error naming the annotation) or derived valid; the requests go to the
sandbox through boto3 and what arrives is checked against AWS's documented rules."""

from __future__ import annotations

import re

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, intent_of, node_objects

from lbprov.model import InvalidService
from lbprov.provider import SandboxCloud

#: ELB / EC2 tag values: letters, digits, spaces and _.:/=+-@ (ELBv2 AddTags, EC2 CreateTags).
TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$")
#: EC2 security group descriptions (CreateSecurityGroup, VPC): a-zA-Z0-9, spaces and ._-:/()#,@[]+=&;{}!$*.
SG_DESCRIPTION = re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}$")


def test_tag_values_use_only_characters_aws_allows(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    many = [f"10.{i // 250}.{i % 250}.0/24" for i in range(30)]  # longer than a tag value holds
    svc = Svc(
        annotations={ANN + "additional-resource-tags": "team=web,cost-center=42,env=prod"},
        spec={"loadBalancerSourceRanges": many},
    )
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    (lb,) = view.nlbs(svc.uid)
    tagged = [lb["Tags"], *(tg["Tags"] for tg in view.tgs(svc.uid))]
    for tags in tagged:
        for key, value in tags.items():
            assert TAG_VALUE.match(value), (key, value)


def test_shared_classic_backend_group_description_is_valid(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(annotations={ANN + "type": "classic"})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    for sg in view.security_groups():
        assert SG_DESCRIPTION.match(sg["Description"]), sg["Description"]


@pytest.mark.parametrize(("key", "value"), [("healthcheck-interval", "5"), ("healthcheck-timeout", "60")])
def test_nlb_health_timeout_never_exceeds_the_interval(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, key: str, value: str
) -> None:
    svc = Svc(annotations={ANN + key: value})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    (tg,) = view.tgs(svc.uid)
    assert tg["HealthCheckTimeoutSeconds"] <= tg["HealthCheckIntervalSeconds"]


@pytest.mark.parametrize(("key", "value"), [("healthcheck-interval", "5"), ("healthcheck-timeout", "30")])
def test_classic_health_timeout_stays_below_the_interval(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, key: str, value: str
) -> None:
    svc = Svc(annotations={ANN + "type": "classic", ANN + key: value})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    (lb,) = view.classics(svc.uid)
    assert lb["HealthCheck"]["Timeout"] < lb["HealthCheck"]["Interval"]


@pytest.mark.parametrize(
    ("annotations", "field"),
    [
        (
            {
                ANN + "type": "classic",
                ANN + "healthcheck-protocol": "HTTP",
                ANN + "healthcheck-path": "/" + "a" * 1020,
            },
            "healthcheck-path",
        ),
        ({ANN + "healthcheck-interval": "10", ANN + "healthcheck-timeout": "20"}, "healthcheck-timeout"),
        (
            {ANN + "type": "classic", ANN + "additional-resource-tags": "a=1,b=2,c=3,d=4"},
            "additional-resource-tags",
        ),
        ({ANN + "additional-resource-tags": "my key=1"}, "additional-resource-tags"),
    ],
)
def test_requests_aws_would_reject_are_refused_up_front(
    provider: AWSProvider, cloud: SandboxCloud, annotations: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidService, match=ANN + field):
        intent_of(provider, Svc(annotations=annotations), node_objects(cloud))


def test_a_classic_elb_with_three_additional_tags_fits(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(annotations={ANN + "type": "classic", ANN + "additional-resource-tags": "a=1,b=2,c=3"})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    (lb,) = view.classics(svc.uid)
    assert len(lb["Tags"]) <= 10
