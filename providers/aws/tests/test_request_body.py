"""The query-protocol form body is encoded once per request (request_body.py), and the bytes sent
are botocore's own encoding: a client without the handler sends the same body."""

from __future__ import annotations

from typing import Any

import botocore.awsrequest
import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import fast_settings

from lbprov.provider import SandboxCloud

FILTERS = [
    {"Name": "group-name", "Values": ["a b&c=d", "ü/+%"]},
    {"Name": "vpc-id", "Values": ["vpc-1"]},
]


def _sent(client: Any, out: list[bytes]) -> None:
    def capture(request: Any, **_: Any) -> None:
        body = request.body or b""
        out.append(body.encode() if isinstance(body, str) else bytes(body))

    client.meta.events.register("before-send.*.*", capture)


def test_the_body_is_encoded_once_and_is_botocore_s_own(
    cloud: SandboxCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    encodings: list[int] = []
    real = botocore.awsrequest.urlencode

    def counting(*args: Any, **kwargs: Any) -> str:
        encodings.append(1)
        return str(real(*args, **kwargs))

    monkeypatch.setattr(botocore.awsrequest, "urlencode", counting)
    provider = AWSProvider.from_settings(fast_settings(cloud))
    ours: list[bytes] = []
    _sent(provider.clients.clients["ec2"], ours)
    provider.clients.call("ec2:DescribeSecurityGroups", Filters=FILTERS)
    assert len(encodings) == 1  # botocore alone: once to sign, once to send

    plain = cloud.extra["sandbox"].client("ec2")
    theirs: list[bytes] = []
    _sent(plain, theirs)
    encodings.clear()
    plain.describe_security_groups(Filters=FILTERS)
    assert len(encodings) == 2
    assert ours == theirs and b"a+b%26c%3Dd" in ours[0]
