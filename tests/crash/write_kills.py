"""What every cloud's write-kill harness shares (``aws_write_kills.py``, ``azure_write_kills.py``):
the child run that a SIGKILL ends after its k-th write, the Service reference of a job, the
convergence a fresh provider must reach afterwards, and the figures of a scenario."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figures:
    """One scenario's walk over its kill points."""

    scenario: str
    writes: int = 0
    runs: int = 0
    kills: int = 0
    leaks: list[str] = field(default_factory=list)
    unconverged: list[str] = field(default_factory=list)
    #: Kill points whose state, before the restart's recovery, held something a leak check
    #: reports (so the check can fail: it sees what a kill leaves).
    dirty_before_recovery: int = 0


def ref_of(job: dict[str, Any]) -> Any:
    from lbprov.model import ServiceRef

    meta = job["service"]["metadata"]
    return ServiceRef(meta["namespace"], meta["name"], meta["uid"])


def run_child(script: Path, job: dict[str, Any]) -> tuple[bool, int]:
    """(killed, writes) of one run of ``script --child job`` (without the caller's LBPROV_ settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LBPROV_")}
    proc = subprocess.run(
        [sys.executable, str(script), "--child", json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if proc.returncode == -signal.SIGKILL:
        return True, job["kill_after"]
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return False, int(json.loads(proc.stdout.strip().splitlines()[-1])["writes"])


def converge(provider: Any, plan_of: Callable[[], Any], rounds: int = 4) -> bool:
    """Apply ``plan_of()`` until it is empty (at most ``rounds`` applies); whether it got there."""
    for _ in range(rounds):
        plan = plan_of()
        if plan.empty:
            return True
        provider.apply(plan)
    return plan_of().empty
