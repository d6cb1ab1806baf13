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
from lbprov_gcp.operations import OPERATIONS

from lbprov.provider import SandboxCloud

NODES = ["node-1", "node-2", "node-3", "node-4"]


@pytest.fixture
def sandbox() -> Iterator[SandboxCloud]:
    with GCPProvider.sandbox(NODES) as cloud:
        yield cloud


@pytest.fixture
def provider(sandbox: SandboxCloud) -> Iterator[GCPProvider]:
    """The provider; afterwards, every operation it sent must be listed in ``operations.py``."""
    provider = provider_for(sandbox)
    seen: set[str] = set()
    provider.calls.listeners.append(lambda event: seen.add(event.operation))
    yield provider
    unknown = seen - set(OPERATIONS)
    assert not unknown, f"operations missing from lbprov_gcp/operations.py: {sorted(unknown)}"


@pytest.fixture
def server(sandbox: SandboxCloud) -> Any:
    return sandbox.extra["server"]
