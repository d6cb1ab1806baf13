"""Fixtures every test under tests/ gets."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _keep_root_logging() -> Iterator[None]:
    """``lbprov run`` and ``lbprov demo`` configure the root logger of the process (a handler on the
    test's captured stderr; the demo sets the level to ERROR). Put it back after each test: later
    tests in the same worker must not log into a closed stream, nor lose their warnings (a CLI test
    found no warning at all after the demo's test had run in its pytest-xdist worker)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
