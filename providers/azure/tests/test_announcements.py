"""An apply that fails before it hands an announcement to its writer withdraws it.

An announcement tells a shared LB's batch leader to wait (up to ``coalesce_max_wait_seconds``) for an
apply that is on its way; one left pending for good makes every later batch of that LB wait the
whole time. Found by the session 9 review: the announcement was taken out of the apply's list
before the side pool's submit, which can raise (no thread could be started), so neither the writer
nor the apply's ``finally`` withdrew it.
"""

from __future__ import annotations

import concurrent.futures

import pytest


def _pending(provider, plan) -> set[int]:
    lbn = str(next(c.data["lb"] for c in plan.changes if c.data.get("lb")))
    return set(provider.applier.writer(lbn)._expected)


def test_a_side_pool_that_cannot_start_the_lb_write_leaves_no_announcement_pending(
    provider, intent_for, make_service, monkeypatch
):
    intent = intent_for(make_service("lost", ports=[("TCP", 80)]))
    plan = provider.plan(intent)
    assert plan.changes[0].kind == "public-ip"  # a new Service: its LB write goes on the side pool

    def cannot_start(self, fn, *args, **kwargs):
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as m:
        # no emulator can refuse a thread: the executor's submit is made to raise, as it does at a
        # pids limit
        m.setattr(concurrent.futures.ThreadPoolExecutor, "submit", cannot_start)
        with pytest.raises(RuntimeError, match="start new thread"):
            provider.apply(plan)
    assert _pending(provider, plan) == set()
    # and the Service converges on the next try
    provider.apply(provider.plan(intent))
    assert provider.plan(intent).changes == ()
