"""``aws-load-balancer-internal`` with cloud-provider-aws's exact semantics (issue 10, item 2).

Upstream: ``false`` or an empty value is internet-facing, any other value is internal. A migration
from upstream must not flip any Service's scheme, so every value of the table is pinned here, and
the two that used to be wrong are checked on the sandbox through boto3.
"""

from __future__ import annotations

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, intent_of, node_objects

from lbprov.provider import SandboxCloud

TABLE = [
    ("false", "external"),
    ("", "external"),
    ("true", "internal"),
    ("0.0.0.0/0", "internal"),  # the long-documented legacy value
    ("False", "internal"),  # upstream compares with "false" exactly
    ("FALSE", "internal"),
    ("0", "internal"),
    ("no", "internal"),
    (" false", "internal"),  # no trimming upstream either
    ("yes", "internal"),
    ("1", "internal"),
]


@pytest.mark.parametrize(("value", "scheme"), TABLE)
def test_internal_annotation_value_gives_upstreams_scheme(
    provider: AWSProvider, cloud: SandboxCloud, value: str, scheme: str
) -> None:
    svc = Svc(annotations={ANN + "internal": value})
    intent = intent_of(provider, svc, node_objects(cloud))
    assert intent.scheme == scheme


@pytest.mark.parametrize(("value", "scheme"), [("", "internet-facing"), ("0.0.0.0/0", "internal")])
def test_internal_annotation_on_the_cloud(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, value: str, scheme: str
) -> None:
    svc = Svc(annotations={ANN + "internal": value})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    (lb,) = view.nlbs(svc.uid)
    assert lb["Scheme"] == scheme
