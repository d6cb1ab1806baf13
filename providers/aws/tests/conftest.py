"""Fixtures for the AWS provider tests: one moto server for the whole session, reset and re-seeded per test.

Everything goes through the real boto3 against a real (moto) HTTP server; helpers live in
``lbprov_aws.testing``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.sandbox import MotoSandbox
from lbprov_aws.testing import CLUSTER, AwsView, fast_settings

from lbprov.provider import SandboxCloud


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoSandbox]:
    box = MotoSandbox()
    yield box
    box.stop()


@pytest.fixture
def cloud(moto_server: MotoSandbox) -> SandboxCloud:
    moto_server.reset()
    return moto_server.seed(["node-a", "node-b", "node-c"], cluster=CLUSTER)


@pytest.fixture
def provider(cloud: SandboxCloud) -> AWSProvider:
    return AWSProvider.from_settings(fast_settings(cloud))


@pytest.fixture
def view(cloud: SandboxCloud) -> AwsView:
    return AwsView(cloud)
