"""The query-protocol form body is encoded once per request (request_body.py), and the bytes sent
are botocore's encoding: a client without the handler sends the same body, and ``form_body`` gives
``_prepare_body``'s text for any strings."""

from __future__ import annotations

import random
from typing import Any

import botocore.awsrequest
import pytest
from lbprov_aws import AWSProvider, request_body
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
    assert len(encodings) == 0  # request_body.form_body, once; botocore alone: once to sign, once to send

    plain = cloud.extra["sandbox"].client("ec2")
    theirs: list[bytes] = []
    _sent(plain, theirs)
    encodings.clear()
    plain.describe_security_groups(Filters=FILTERS)
    assert len(encodings) == 2
    assert ours == theirs and b"a+b%26c%3Dd" in ours[0]


_ALPHABET = "aZ09 -_.~*'()!&=+%/?#;:,@$[]\"\u00fc\u00e9\u4e2d\U0001f600\t\n"


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 12)))


@pytest.mark.parametrize("cache_size", [request_body.QUOTED_MAX, 3])
def test_form_body_is_botocore_s_encoding(cache_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random keys and values (reserved characters, spaces, non-ASCII, empty), and again with a
    cache small enough to be emptied many times: the text ``_prepare_body`` gives."""
    monkeypatch.setattr(request_body, "QUOTED_MAX", cache_size)
    monkeypatch.setattr(request_body, "_QUOTED", {})
    rng = random.Random(1130)
    preparer = botocore.awsrequest.AWSRequestPreparer()
    for _ in range(500):
        data = {_text(rng): _text(rng) for _ in range(rng.randrange(0, 8))}
        data["Action"] = "DescribeSecurityGroups"
        data["Port"] = rng.choice([0, 80, 30080, -1, 10**12])  # botocore passes integers as they are
        expected = preparer._prepare_body(
            botocore.awsrequest.AWSRequest(method="POST", url="http://x/", data=data)
        )
        assert request_body.form_body(data) == expected
        assert request_body.form_body(data) == expected  # from the cache
    assert 0 < len(request_body._QUOTED) <= cache_size


def test_a_body_with_other_than_strings_is_left_to_botocore() -> None:
    assert request_body.form_body({"A": "1", "B": 2.5}) is None
    assert request_body.form_body({"A": "1", "B": True}) is None
    assert request_body.form_body({"A": "1", "B": [1, 2]}) is None
    assert request_body.form_body({b"A": "1"}) is None
    assert request_body.form_body({}) == ""
