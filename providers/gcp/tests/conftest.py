"""Fixtures: a fresh emulator per test (it starts in milliseconds) and a provider pointed at it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gcp_helpers import provider_for
from lbprov_gcp import GCPProvider

from lbprov.provider import SandboxCloud

NODES = ["node-1", "node-2", "node-3", "node-4"]


@pytest.fixture
def sandbox() -> Iterator[SandboxCloud]:
    with GCPProvider.sandbox(NODES) as cloud:
        yield cloud


@pytest.fixture
def provider(sandbox: SandboxCloud) -> GCPProvider:
    return provider_for(sandbox)


@pytest.fixture
def server(sandbox: SandboxCloud) -> Any:
    return sandbox.extra["server"]
