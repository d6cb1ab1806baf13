"""Fixtures for the AWS provider tests: one moto server for the whole session, reset and re-seeded per test.

Everything goes through the real boto3 against a real (moto) HTTP server; helpers live in
``lbprov_aws.testing``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
def provider(request: pytest.FixtureRequest, cloud: SandboxCloud) -> AWSProvider:
    """The provider with the test module's ``PROVIDER_SETTINGS`` (e.g. ``NODE_RULE_MODEL`` for the
    modules that pin NLBs created without security groups), else the default settings."""
    extra: dict[str, Any] = getattr(request.module, "PROVIDER_SETTINGS", {})
    return AWSProvider.from_settings(fast_settings(cloud, **extra))


@pytest.fixture
def view(cloud: SandboxCloud) -> AwsView:
    return AwsView(cloud)
