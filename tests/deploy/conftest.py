"""Makes ``tests/deploy/testlib.py`` importable as ``deploy_testlib`` for the tests beside it.

The suite runs with ``--import-mode=importlib``, under which test modules cannot import siblings.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).with_name("testlib.py")
if "deploy_testlib" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("deploy_testlib", _PATH)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["deploy_testlib"] = _module
    _spec.loader.exec_module(_module)
