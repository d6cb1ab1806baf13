"""AWS's crash cases at every write (``aws_write_kills.py``): SIGKILL right after each write of an
NLB create and delete with security groups, and of the delete of the cluster's last classic ELB;
a restarted provider must converge with nothing leaked.

``make test`` walks every write of both deletes and the first writes of the create (the backend
group, the frontend group and their rules); ``LBPROV_CRASH_FULL=1`` walks every write of the create.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aws_write_kills import run_scenario

FULL = os.environ.get("LBPROV_CRASH_FULL") == "1"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def box() -> Iterator[Any]:
    from lbprov_aws.sandbox import MotoSandbox

    sandbox = MotoSandbox()
    yield sandbox
    sandbox.stop()


@pytest.mark.parametrize("scenario", ["classic-delete", "nlb-delete", "nlb-create"])
def test_a_kill_after_any_write_leaves_nothing_after_a_restart(scenario: str, box: Any) -> None:
    limit = None if (FULL or scenario != "nlb-create") else 4
    figures = run_scenario(scenario, box, ["node-a", "node-b"], limit=limit)
    print(json.dumps(asdict(figures)))
    assert figures.kills >= (limit or 1)
    assert figures.dirty_before_recovery > 0  # the check sees what a kill leaves behind
    assert figures.unconverged == []
    assert figures.leaks == []
