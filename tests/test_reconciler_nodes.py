"""Node sync: only target-relevant node changes re-enqueue, debounced into one batch."""

from __future__ import annotations

import copy
import threading
from typing import Any

from lbprov.controller.nodes import NodeSync
from lbprov.intent import EXCLUDE_LABEL, TO_BE_DELETED_TAINT
from lbprov.testing import wait_for


def node(name: str, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": name, "labels": {}, "resourceVersion": "1"},
        "spec": {"providerID": f"aws:///us-east-1a/i-{name}"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    obj.update(extra)
    return obj


class Recorder:
    def __init__(self) -> None:
        self.calls = 0
        self.fired = threading.Event()

    def __call__(self) -> int:
        self.calls += 1
        self.fired.set()
        return 3


def armed_sync(debounce: float = 0.1) -> tuple[NodeSync, Recorder]:
    rec = Recorder()
    sync = NodeSync(rec, debounce=debounce)
    sync.armed = True
    return sync, rec


def test_initial_list_before_sync_is_ignored() -> None:
    rec = Recorder()
    sync = NodeSync(rec, debounce=0.01)
    sync.on_add(node("a"))
    assert sync._timer is None, "no timer armed: no handler can run later"  # not a wait it could outlast
    assert rec.calls == 0


def test_heartbeat_and_readiness_updates_do_not_resync() -> None:
    sync, rec = armed_sync(0.01)
    old = node("a")
    new = copy.deepcopy(old)
    new["metadata"]["resourceVersion"] = "2"
    new["status"]["conditions"][0]["status"] = "False"  # readiness is not a predicate (KEP-3458)
    sync.on_update(old, new)
    assert sync._timer is None, "no timer armed: no handler can run later"  # not a wait it could outlast
    assert rec.calls == 0


def test_eligibility_and_provider_id_changes_resync() -> None:
    for mutate in (
        lambda n: n["metadata"]["labels"].__setitem__(EXCLUDE_LABEL, "true"),
        lambda n: n["spec"].__setitem__("taints", [{"key": TO_BE_DELETED_TAINT, "effect": "NoSchedule"}]),
        lambda n: n["spec"].__setitem__("providerID", "aws:///us-east-1b/i-other"),
        lambda n: n["metadata"].__setitem__("deletionTimestamp", "2026-01-01T00:00:00Z"),
    ):
        sync, rec = armed_sync(0.01)
        old = node("a")
        new = copy.deepcopy(old)
        mutate(new)
        sync.on_update(old, new)
        assert rec.fired.wait(60)  # bounds a hang only: it fires after 0.01 s
        sync.stop()


def test_a_burst_of_node_changes_is_debounced_into_one_enqueue() -> None:
    sync, rec = armed_sync(0.2)
    # The burst must land inside the window whatever the machine's load: holding the handler's
    # lock keeps a timer that fires mid-burst pending (it waits for the lock before it clears
    # the timer), so the later changes still ride along, as on a machine fast enough for 0.2 s.
    with sync._running:
        for i in range(20):
            sync.on_add(node(f"n{i}"))
        sync.on_delete(node("n0"))
    # triggers is counted after the handler returned: wait for it, not for the handler's start
    wait_for(lambda: sync.triggers == 1, 60, "the debounced node change handled")
    # every change came before that handler ran: a second handler would need a second timer, armed
    # by now (a fixed wait for it to fire instead was one a loaded machine could outlast)
    with sync._lock:
        assert sync._timer is None, "a second handler is pending"
    assert rec.calls == 1 and sync.triggers == 1


def test_stop_cancels_a_pending_enqueue() -> None:
    # a window far longer than the test, so that stop() surely comes while the timer is pending
    # (with 0.1 s, a loaded machine could fire it before stop); the cancelled timer's thread ends
    # at once without calling the handler, and the test waits for exactly that
    sync, rec = armed_sync(600)
    sync.on_add(node("a"))
    timer = sync._timer
    assert timer is not None, "the change started the debounce timer"
    sync.stop()
    timer.join(60)
    assert not timer.is_alive(), "stop() cancelled the pending timer"
    assert rec.calls == 0 and sync.triggers == 0
