"""Makes ``tests/cli/clilib.py`` importable as ``cli_testlib`` and offers the in-memory provider.

The suite runs with ``--import-mode=importlib``, under which test modules cannot import siblings.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

for _name, _file in (("cli_testlib", "clilib.py"), ("sandbox_support", "sandbox_support.py")):
    if _name not in sys.modules:
        _spec = importlib.util.spec_from_file_location(_name, Path(__file__).with_name(_file))
        assert _spec is not None and _spec.loader is not None
        _module = importlib.util.module_from_spec(_spec)
        sys.modules[_name] = _module
        _spec.loader.exec_module(_module)

import cli_testlib  # noqa: E402


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Register the in-memory provider ``fake`` in the entry-point registry; fresh worlds."""
    yield from cli_testlib.registered_fake(monkeypatch)


#: The providers whose sandboxes the end-to-end CLI tests run against.
SANDBOX_PROVIDERS = ("aws", "gcp", "azure")


@pytest.fixture(scope="session", params=SANDBOX_PROVIDERS)
def sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A sandbox Kubernetes API and one provider's emulator, shared by the CLI sandbox tests."""
    import sandbox_support

    yield from sandbox_support.start_env(request.param, tmp_path_factory.mktemp(f"cli-{request.param}"))


@pytest.fixture
def env(sandbox: Any) -> Any:
    """A fresh namespace (and settings file) in the shared sandbox."""
    return sandbox.fresh()
